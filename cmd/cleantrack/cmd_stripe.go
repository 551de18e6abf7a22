package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/tasks"
)

func newStripeCmd(e *env) *cobra.Command {
	return group("stripe", "Send signed test events, replay, dismiss and list recorded events, catch up and reconcile with Stripe, check the Stripe account",
		newStripeTriggerCmd(e), newStripeReplayCmd(e), newStripeEventsCmd(e), newStripeDismissCmd(e), newStripeCheckCmd(e),
		newStripeSyncCmd(e), newStripeReconcileCmd(e))
}

// stripeTriggerOptions are the flags of "stripe trigger".
type stripeTriggerOptions struct {
	account, shape, url, price, status string
	expand, asJSON                     bool
}

func newStripeTriggerCmd(e *env) *cobra.Command {
	var o stripeTriggerOptions
	c := &cobra.Command{
		Use:   "trigger <event-type> --account <slug>",
		Short: "Sign a realistic Stripe event for an account and POST it to the web process",
		Long: "Sign a realistic Stripe event for an account and POST it to the web process.\n\n" +
			"Event types: " + strings.Join(tasks.StripeEventTypes, ", ") + ".",
		Args:              exactArgs(1, "stripe trigger takes one event type: "+strings.Join(tasks.StripeEventTypes, ", ")),
		ValidArgsFunction: completeArgs(tasks.StripeEventTypes),
		RunE:              e.action(func(ctx context.Context, args []string) error { return runStripeTrigger(ctx, e, args[0], o) }),
	}
	f := c.Flags()
	f.StringVar(&o.account, "account", "", "slug of the account the event is about (required)")
	f.StringVar(&o.shape, "shape", stripetest.Shape2025, "API shape: 2023 (2023-10-16) or 2025 (2025-03-31.basil)")
	f.StringVar(&o.url, "url", "", "webhook URL (default http://127.0.0.1:$PORT/billing/webhooks/stripe/)")
	f.StringVar(&o.price, "price", "", "price id of the subscription (default: the price of the account's plan)")
	f.StringVar(&o.status, "status", "", "subscription status (default active; canceled for deleted)")
	f.BoolVar(&o.expand, "expand", false, "send customer and subscription as expanded objects rather than ids")
	f.BoolVar(&o.asJSON, "json", false, "print the event sent and the answer as JSON")
	completeFlag(c, "shape", stripetest.Shape2023, stripetest.Shape2025)
	completeFlag(c, "status", billing.StatusActive, billing.StatusPastDue, billing.StatusUnpaid, billing.StatusIncomplete, billing.StatusCanceled)
	return c
}

func newStripeReplayCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "replay <evt_id>",
		Short: "Re-enqueue a recorded Stripe event (deleting its archived task first, clearing failed_at or a dismissal)",
		Args:  exactArgs(1, "stripe replay takes one event id (evt_...); \"cleantrack stripe events --failed\" lists candidates"),
		RunE:  e.action(func(ctx context.Context, args []string) error { return runStripeReplay(ctx, e, args[0], asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print what was done as JSON")
	return c
}

// stripeEventsOptions are the flags of "stripe events".
type stripeEventsOptions struct {
	failed, unmatched, asJSON bool
	since                     string
	limit                     int
}

func newStripeEventsCmd(e *env) *cobra.Command {
	var o stripeEventsOptions
	c := &cobra.Command{
		Use:   "events",
		Short: "List recorded Stripe events, newest first: status, attempts, last error or note",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runStripeEvents(ctx, e, o) }),
	}
	f := c.Flags()
	f.BoolVar(&o.failed, "failed", false, "only events that failed (archived) and wait for a replay")
	f.BoolVar(&o.unmatched, "unmatched", false, "only events whose customer no account has, waiting for one to be linked")
	f.StringVar(&o.since, "since", "", "only events received in the last duration (90m, 24h, 7d) or since an RFC 3339 time")
	f.IntVar(&o.limit, "limit", 50, "at most this many events")
	f.BoolVar(&o.asJSON, "json", false, "print JSON instead of a table")
	return c
}

func runStripeTrigger(ctx context.Context, e *env, eventType string, o stripeTriggerOptions) error {
	if !slices.Contains(tasks.StripeEventTypes, eventType) {
		return usagef("event type %q is not one of %s", eventType, strings.Join(tasks.StripeEventTypes, ", "))
	}
	if o.account == "" {
		return usagef("--account is required (the demo account is demo-hospital)")
	}
	if o.shape != stripetest.Shape2023 && o.shape != stripetest.Shape2025 {
		return usagef("--shape %q is not 2023 or 2025", o.shape)
	}
	if err := e.cfg.RequireWebhookSecret(); err != nil {
		return err
	}
	url := o.url
	if url == "" {
		url = fmt.Sprintf("http://127.0.0.1:%d/billing/webhooks/stripe/", e.cfg.Port)
	}

	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	acct, err := s.AccountBySlug(ctx, o.account)
	if errors.Is(err, postgres.ErrNotFound) {
		return usagef("--account: no account has slug %q (cleantrack seed demo creates demo-hospital)", o.account)
	}
	if err != nil {
		return err
	}
	opts := stripetest.EventOptions{
		Type:           eventType,
		Shape:          o.shape,
		Expand:         o.expand,
		CustomerID:     acct.StripeCustomerID,
		AccountID:      acct.ID,
		Name:           acct.Name,
		SubscriptionID: acct.StripeSubscriptionID,
		PriceID:        o.price,
		Status:         o.status,
	}
	if opts.PriceID == "" {
		if plan, err := s.PlanByCode(ctx, acct.Plan); err == nil {
			opts.PriceID = plan.StripePriceID
		}
	}
	if opts.CustomerID == "" {
		// The same id every time, so that a customer.created triggered
		// afterwards links the customer the earlier events named.
		opts.CustomerID = fmt.Sprintf("cus_cli_account_%d", acct.ID)
		if eventType != tasks.EventCustomerCreated {
			fmt.Fprintf(e.stderr, "note: account %s has no Stripe customer, so the worker will wait a few minutes for one, then park this event "+
				"as unmatched until one is linked; run \"cleantrack stripe trigger customer.created --account %s\" to link it\n", acct.Slug, acct.Slug)
		}
	}
	payload, err := stripetest.BuildEvent(opts)
	if err != nil {
		return err
	}
	ev, err := billing.DecodeEvent(payload)
	if err != nil {
		return err
	}
	req, err := stripetest.SignedRequest(ctx, url, payload, e.cfg.StripeWebhookSecrets[0], time.Now())
	if err != nil {
		return usagef("--url: %v", err)
	}
	if !o.asJSON {
		fmt.Fprintf(e.stdout, "sending %s %s for account %s (customer %s, API %s) to %s\n",
			ev.Type, ev.ID, acct.Slug, opts.CustomerID, ev.APIVersion, url)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the web process at %s: %w (is it running? start it with \"go run ./cmd/web\" or \"make dev\", or pass --url)", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if o.asJSON {
		answer := payloadValue(bytes.TrimSpace(body))
		if err := printJSON(e.stdout, map[string]any{
			"event_id": ev.ID, "type": ev.Type, "account": acct.Slug, "customer": opts.CustomerID,
			"api_version": ev.APIVersion, "url": url, "http_status": resp.StatusCode, "answer": answer,
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "HTTP %s\n%s\n", resp.Status, strings.TrimSpace(string(body)))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the web process answered %s", resp.Status)
	}
	if o.asJSON {
		return nil
	}
	fmt.Fprintf(e.stdout, "follow it with: cleantrack stripe events --since 10m\n")
	return nil
}

// replayResult is what "stripe replay" did, in order; --json prints it.
type replayResult struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"` // before the replay
	Attempts int    `json:"attempts"`
	// Outcome: enqueued, moved_to_run_now, already_<state> (a task holds
	// the id and will run), or duplicate (one appeared meanwhile).
	Outcome string   `json:"outcome"`
	Steps   []string `json:"steps"`
}

func runStripeReplay(ctx context.Context, e *env, id string, asJSON bool) error {
	res, err := replayStripeEvent(ctx, e, id)
	if asJSON && res.ID != "" && err == nil {
		return printJSON(e.stdout, res)
	}
	if !asJSON {
		for _, s := range res.Steps {
			fmt.Fprintln(e.stdout, s)
		}
	}
	return err
}

func replayStripeEvent(ctx context.Context, e *env, id string) (replayResult, error) {
	var res replayResult
	say := func(format string, args ...any) { res.Steps = append(res.Steps, fmt.Sprintf(format, args...)) }
	s, err := e.Store(ctx)
	if err != nil {
		return res, err
	}
	ev, err := s.StripeEventByID(ctx, id)
	if errors.Is(err, postgres.ErrNotFound) {
		return res, fmt.Errorf("no Stripe event %s in the inbox; \"cleantrack stripe events\" lists the recorded ones", id)
	}
	if err != nil {
		return res, err
	}
	insp, err := e.Inspector()
	if err != nil {
		return res, err
	}
	client, err := e.Client()
	if err != nil {
		return res, err
	}
	res.ID, res.Type, res.Status, res.Attempts = ev.ID, ev.Type, ev.Status(), ev.Attempts
	say("event %s (%s): %s, %s", ev.ID, ev.Type, ev.Status(), countNoun(ev.Attempts, "attempt"))
	if ev.ProcessedAt != nil {
		say("it is already processed: the worker will not apply it again, only repeat its notifications")
	}

	if ev.DismissedAt != nil {
		if err := s.ClearStripeEventDismissal(ctx, ev.ID); err != nil {
			return res, err
		}
		say("cleared the dismissal by %s (%s)", ev.DismissedBy, ev.DismissedReason)
	}
	if ev.FailedAt != nil {
		if err := s.ClearStripeEventFailure(ctx, ev.ID); err != nil {
			return res, err
		}
		say("cleared failed_at (last error: %s)", dashIfEmpty(ev.LastError))
	}

	info, err := insp.GetTaskInfo(tasks.QueueCritical, ev.ID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		// Nothing in Redis holds the id.
	case err != nil:
		return res, fmt.Errorf("look up task %s: %w", ev.ID, redisHint(err))
	case info.State == asynq.TaskStateArchived || info.State == asynq.TaskStateCompleted:
		// An archived or retained task keeps its TaskID taken: delete it so
		// the id can be enqueued again.
		if err := insp.DeleteTask(tasks.QueueCritical, ev.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return res, fmt.Errorf("delete %s task %s: %w", info.State, ev.ID, redisHint(err))
		}
		say("deleted the %s task %s from queue %s", info.State, ev.ID, tasks.QueueCritical)
	case info.State == asynq.TaskStateRetry || info.State == asynq.TaskStateScheduled:
		if err := insp.RunTask(tasks.QueueCritical, ev.ID); err != nil {
			return res, fmt.Errorf("run task %s now: %w", ev.ID, redisHint(err))
		}
		res.Outcome = "moved_to_run_now"
		say("task %s was waiting (%s, %s so far); moved it to run now", ev.ID, info.State, countNoun(info.Retried, "retry"))
		return res, nil
	default:
		res.Outcome = "already_" + info.State.String()
		say("task %s is already %s in queue %s; nothing to re-enqueue", ev.ID, info.State, tasks.QueueCritical)
		return res, nil
	}

	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: ev.ID, Type: ev.Type})
	if err != nil {
		return res, err
	}
	_, dup, err := queue.Enqueue(ctx, client, task)
	if err != nil {
		return res, redisHint(err)
	}
	if dup {
		res.Outcome = "duplicate"
		say("task %s appeared in queue %s meanwhile; not enqueued twice", ev.ID, tasks.QueueCritical)
		return res, nil
	}
	res.Outcome = "enqueued"
	say("enqueued %s %s in queue %s", tasks.TypeStripeEvent, ev.ID, tasks.QueueCritical)
	return res, nil
}

// stripeEventView is one inbox row as "stripe events --json" prints it.
type stripeEventView struct {
	ID              string     `json:"id"`
	Type            string     `json:"type"`
	Status          string     `json:"status"`
	APIVersion      string     `json:"api_version"`
	StripeCreatedAt time.Time  `json:"stripe_created_at"`
	ReceivedAt      time.Time  `json:"received_at"`
	ProcessedAt     *time.Time `json:"processed_at"`
	FailedAt        *time.Time `json:"failed_at"`
	Attempts        int        `json:"attempts"`
	LastError       string     `json:"last_error"`
	Note            string     `json:"note"`
	// Unmatched: waiting for an account to be linked to the customer.
	UnmatchedAt       *time.Time `json:"unmatched_at"`
	UnmatchedCustomer string     `json:"unmatched_customer"`
	// Dismissed: who decided it is not to be applied, and why.
	DismissedAt     *time.Time `json:"dismissed_at"`
	DismissedBy     string     `json:"dismissed_by"`
	DismissedReason string     `json:"dismissed_reason"`
	Source          string     `json:"source"` // webhook, sync or reconcile
	Kind            string     `json:"kind"`   // snapshot or thin
	SnapshotEvent   string     `json:"snapshot_event,omitempty"`
	TwinOf          string     `json:"twin_of,omitempty"`
}

func newStripeEventView(r postgres.InboxEvent) stripeEventView {
	return stripeEventView{
		ID: r.ID, Type: r.Type, Status: r.Status(), APIVersion: r.APIVersion,
		StripeCreatedAt: r.CreatedAt.UTC(), ReceivedAt: r.ReceivedAt.UTC(),
		ProcessedAt: utc(r.ProcessedAt), FailedAt: utc(r.FailedAt),
		Attempts: r.Attempts, LastError: r.LastError, Note: r.Note,
		UnmatchedAt: utc(r.UnmatchedAt), UnmatchedCustomer: r.UnmatchedCustomer,
		DismissedAt: utc(r.DismissedAt), DismissedBy: r.DismissedBy, DismissedReason: r.DismissedReason,
		Source: r.Source, Kind: r.Kind, SnapshotEvent: r.SnapshotEvent, TwinOf: r.TwinOf,
	}
}

// utc is t in UTC, nil for nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func runStripeEvents(ctx context.Context, e *env, o stripeEventsOptions) error {
	if o.limit < 1 {
		return usagef("--limit must be at least 1")
	}
	if o.failed && o.unmatched {
		return usagef("--failed and --unmatched exclude each other: an event is one or the other")
	}
	filter := postgres.InboxFilter{FailedOnly: o.failed, UnmatchedOnly: o.unmatched, Limit: o.limit}
	if o.since != "" {
		t, err := parseSince(o.since, time.Now())
		if err != nil {
			return err
		}
		filter.Since = t
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	rows, err := s.ListStripeEvents(ctx, filter)
	if err != nil {
		return err
	}
	if o.asJSON {
		out := make([]stripeEventView, 0, len(rows))
		for _, r := range rows {
			out = append(out, newStripeEventView(r))
		}
		return printJSON(e.stdout, out)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "no Stripe events match")
		return nil
	}
	tw := e.table("ID", "TYPE", "KIND", "SOURCE", "RECEIVED", "STATUS", "ATTEMPTS", "LAST ERROR / NOTE")
	for _, r := range rows {
		detail := r.LastError
		switch r.Status() {
		case postgres.InboxProcessed:
			detail = r.Note
		case postgres.InboxDismissed:
			detail = fmt.Sprintf("dismissed by %s: %s", r.DismissedBy, r.DismissedReason)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Type, r.Kind, r.Source, showTime(&r.ReceivedAt), r.Status(), r.Attempts, dashIfEmpty(foldLine(detail, 100)))
	}
	tw.Flush()
	fmt.Fprintln(e.stdout, countNoun(len(rows), "event"))
	return nil
}

// parseSince reads --since: a Go duration, a number of days ("7d"), or an
// RFC 3339 time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since %q is not a duration (90m, 24h, 7d) or an RFC 3339 time (2026-11-26T08:00:00Z)", v)
}
