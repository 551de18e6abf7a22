package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/stripeapi"
	"github.com/cleantrack/jobs/tasks"
)

// stripeAPI is the Stripe API client of a command, with waits on rate
// limits shown on stderr. It needs STRIPE_SECRET_KEY; why names what the
// command cannot do without it.
func (e *env) stripeAPI(why string, allowWebhookEndpoints bool) (*stripeapi.Client, error) {
	if e.cfg.StripeSecretKey == "" {
		return nil, fmt.Errorf("STRIPE_SECRET_KEY is not set: %s; give the account's secret key (sk_test_... or sk_live_...)", why)
	}
	return stripeapi.New(stripeapi.Config{
		Key:                   e.cfg.StripeSecretKey,
		BaseURL:               e.cfg.StripeAPIBase,
		AllowWebhookEndpoints: allowWebhookEndpoints,
		OnRetry: func(r stripeapi.Retry) {
			fmt.Fprintf(e.stderr, "Stripe answered %s to %s %s; waiting %s before attempt %d\n",
				r.Reason, r.Method, r.Path, r.Wait.Round(time.Millisecond), r.Attempt+1)
		},
	})
}

// stripeSyncOptions are the flags of "stripe sync".
type stripeSyncOptions struct {
	since          string
	dryRun, asJSON bool
}

func newStripeSyncCmd(e *env) *cobra.Command {
	var o stripeSyncOptions
	c := &cobra.Command{
		Use:   "sync",
		Short: "Catch up on Stripe events the webhook missed: list them from the Stripe API and record the missing ones",
		Long: "List GET /v1/events for the types CleanTrack applies (" + strings.Join(tasks.StripeEventTypes, ", ") + ") " +
			"created since --since, oldest first, through every page, and record each event the inbox does not have through " +
			"the webhook's own intake (same checks, same enqueue, same dedup), with source \"sync\". Progress goes to stderr; " +
			"the counts end it: listed, already in the inbox, recorded, refused (each with its reason).\n\n" +
			"Stripe keeps events for 30 days. Needs STRIPE_SECRET_KEY (STRIPE_API_BASE for stripe-mock).",
		Args: noArgs,
		RunE: e.action(func(ctx context.Context, _ []string) error { return runStripeSync(ctx, e, o) }),
	}
	f := c.Flags()
	f.StringVar(&o.since, "since", "72h", "list events created in the last duration (90m, 24h, 7d; at most 30d) or since an RFC 3339 time")
	f.BoolVar(&o.dryRun, "dry-run", false, "list and compare with the inbox, record nothing")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	return c
}

func runStripeSync(ctx context.Context, e *env, o stripeSyncOptions) error {
	now := time.Now()
	since, err := parseSince(o.since, now)
	if err != nil {
		return err
	}
	if now.Sub(since) > billing.SyncMaxAge {
		return usagef("--since %s reaches back to %s: Stripe keeps events for 30 days only; give 30d or less",
			o.since, rfc3339(since))
	}
	api, err := e.stripeAPI("stripe sync reads Stripe's List Events API with it", false)
	if err != nil {
		return err
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	client, err := e.Client()
	if err != nil {
		return err
	}
	what := "recording"
	if o.dryRun {
		what = "dry run, recording nothing"
	}
	fmt.Fprintf(e.stderr, "listing Stripe events since %s, oldest first (%s)\n", since.UTC().Format(time.RFC3339), what)
	syncer := &billing.Syncer{API: api, Store: s, Queue: client}
	res, err := syncer.Run(ctx, billing.SyncOptions{
		Since:    since,
		DryRun:   o.dryRun,
		Progress: func(msg string) { fmt.Fprintln(e.stderr, msg) },
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "stopped after %s: %d already in the inbox, %d recorded, %d refused\n",
			countNoun(res.Listed, "event"), res.AlreadyInInbox, res.Recorded, len(res.Refused))
		return redisHint(err)
	}
	if o.asJSON {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "listed %s since %s: %d already in the inbox, ", countNoun(res.Listed, "event"), rfc3339(res.Since), res.AlreadyInInbox)
	if o.dryRun {
		fmt.Fprintf(e.stdout, "%d missing (not recorded: dry run), %d refused\n", res.Missing, len(res.Refused))
	} else {
		fmt.Fprintf(e.stdout, "%d recorded, %d refused\n", res.Recorded, len(res.Refused))
	}
	for _, r := range res.Refused {
		fmt.Fprintf(e.stdout, "refused %s (%s): %s\n", r.EventID, dashIfEmpty(r.Type), r.Reason)
	}
	if res.Recorded > 0 {
		fmt.Fprintf(e.stdout, "the worker applies them; follow with: cleantrack stripe events --since 10m\n")
	}
	return nil
}

// stripeReconcileOptions are the flags of "stripe reconcile".
type stripeReconcileOptions struct {
	account     string
	fix, asJSON bool
}

func newStripeReconcileCmd(e *env) *cobra.Command {
	var o stripeReconcileOptions
	c := &cobra.Command{
		Use:   "reconcile",
		Short: "Compare each account with its subscription at Stripe; --fix applies Stripe's state",
		Long: "For each account with a Stripe customer (or the one --account names), fetch its subscriptions from the Stripe " +
			"API and compare the current one with the account: subscription id, status, period end and plan. One line per " +
			"difference; exits 1 while differences remain.\n\n" +
			"--fix applies Stripe's state through the same store path as an event, recorded as an inbox row with source " +
			"\"reconcile\" and a note saying what changed. Needs STRIPE_SECRET_KEY (STRIPE_API_BASE for stripe-mock).",
		Args: noArgs,
		RunE: e.action(func(ctx context.Context, _ []string) error { return runStripeReconcile(ctx, e, o) }),
	}
	f := c.Flags()
	f.StringVar(&o.account, "account", "", "only the account with this slug")
	f.BoolVar(&o.fix, "fix", false, "apply Stripe's state to each account that differs")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	return c
}

func runStripeReconcile(ctx context.Context, e *env, o stripeReconcileOptions) error {
	api, err := e.stripeAPI("stripe reconcile reads the customers' subscriptions with it", false)
	if err != nil {
		return err
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	r := &billing.Reconciler{API: api, Store: s}
	rep, err := r.Run(ctx, billing.ReconcileOptions{
		AccountSlug: o.account,
		Fix:         o.fix,
		Progress:    func(msg string) { fmt.Fprintln(e.stderr, msg) },
	})
	switch {
	case errors.Is(err, postgres.ErrNotFound) && o.account != "":
		return usagef("--account: no account has slug %q", o.account)
	case errors.Is(err, billing.ErrNoStripeCustomer):
		return usagef("--account: %v; nothing to compare", err)
	case err != nil:
		return err
	}
	if o.asJSON {
		if err := printJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		for _, a := range rep.Accounts {
			for _, d := range a.Differences {
				fmt.Fprintf(e.stdout, "%s (%s): %s\n", a.Slug, a.CustomerID, d)
			}
			for _, n := range a.Notes {
				fmt.Fprintf(e.stdout, "%s (%s): note: %s\n", a.Slug, a.CustomerID, n)
			}
			if a.Fix != nil {
				fmt.Fprintf(e.stdout, "%s (%s): fix %s: inbox row %s (source reconcile)\n", a.Slug, a.CustomerID, a.Fix.Outcome, a.Fix.EventID)
				if a.Fix.Outcome != "applied" {
					fmt.Fprintf(e.stdout, "%s (%s): note: %s\n", a.Slug, a.CustomerID, a.Fix.Note)
				}
			}
		}
		fmt.Fprintf(e.stdout, "checked %s: %d differ", countNoun(rep.Checked, "account"), rep.Drifted)
		if o.fix {
			fmt.Fprintf(e.stdout, ", %d fixed", rep.Fixed)
		}
		fmt.Fprintf(e.stdout, ", %d still differ\n", rep.Remaining)
		if rep.Remaining > 0 && !o.fix {
			fmt.Fprintln(e.stdout, "run again with --fix to apply Stripe's state")
		}
	}
	switch {
	case rep.Remaining == 1:
		return errors.New("1 account still differs from Stripe")
	case rep.Remaining > 1:
		return fmt.Errorf("%d accounts still differ from Stripe", rep.Remaining)
	}
	return nil
}
