package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/postgres"
)

// stripeDismissOptions are the flags of "stripe dismiss".
type stripeDismissOptions struct {
	reason, by string
	asJSON     bool
}

func newStripeDismissCmd(e *env) *cobra.Command {
	var o stripeDismissOptions
	c := &cobra.Command{
		Use:   "dismiss <evt_id> --reason <text>",
		Short: "Mark a failed or unmatched Stripe event dismissed: kept, with who and why, and never applied",
		Long: "Mark a failed or unmatched Stripe event dismissed: kept in the inbox with who dismissed it and why,\n" +
			"out of \"stripe events --failed\" and \"--unmatched\", and never applied by the worker or the re-drive sweep.\n" +
			"\"stripe replay\" takes the dismissal off again.\n\n" +
			"Who is --by, or else the USER or LOGNAME of the environment.",
		Args: exactArgs(1, "stripe dismiss takes one event id (evt_...); \"cleantrack stripe events --failed\" lists candidates"),
		RunE: e.action(func(ctx context.Context, args []string) error { return runStripeDismiss(ctx, e, args[0], o) }),
	}
	f := c.Flags()
	f.StringVar(&o.reason, "reason", "", "why the event is not to be applied (required)")
	f.StringVar(&o.by, "by", "", "who dismisses it (default: $USER, else $LOGNAME)")
	f.BoolVar(&o.asJSON, "json", false, "print the event as JSON instead of a sentence")
	return c
}

func runStripeDismiss(ctx context.Context, e *env, id string, o stripeDismissOptions) error {
	reason := strings.TrimSpace(o.reason)
	if reason == "" {
		return usagef("--reason is required: say why %s is not to be applied", id)
	}
	by := strings.TrimSpace(o.by)
	for _, name := range []string{"USER", "LOGNAME"} {
		if by == "" {
			by = strings.TrimSpace(e.getenv(name))
		}
	}
	if by == "" {
		return usagef("--by is required: neither USER nor LOGNAME is set, so who dismisses the event is unknown")
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	ev, changed, err := s.DismissStripeEvent(ctx, id, by, reason)
	switch {
	case errors.Is(err, postgres.ErrNotFound):
		return fmt.Errorf("no Stripe event %s in the inbox; \"cleantrack stripe events --failed\" lists the failed ones", id)
	case errors.Is(err, postgres.ErrNotDismissable):
		return fmt.Errorf("event %s is %s; only a failed or unmatched event can be dismissed (\"cleantrack stripe events --failed\" and \"--unmatched\" list them)", id, ev.Status())
	case err != nil:
		return err
	}
	if o.asJSON {
		return printJSON(e.stdout, newStripeEventView(ev))
	}
	at := rfc3339(*ev.DismissedAt)
	if !changed {
		fmt.Fprintf(e.stdout, "event %s was already dismissed by %s at %s: %s; nothing changed\n", ev.ID, ev.DismissedBy, at, ev.DismissedReason)
		return nil
	}
	fmt.Fprintf(e.stdout, "dismissed event %s (%s, %s, last error: %s) by %s at %s: %s\n",
		ev.ID, ev.Type, countNoun(ev.Attempts, "attempt"), dashIfEmpty(foldLine(ev.LastError, 100)), ev.DismissedBy, at, ev.DismissedReason)
	fmt.Fprintf(e.stdout, "it stays in the inbox (\"cleantrack stripe events\" shows it as dismissed); \"cleantrack stripe replay %s\" undoes this\n", ev.ID)
	return nil
}
