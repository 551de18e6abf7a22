// Package inbox is the one way a Stripe event enters CleanTrack: it verifies
// a webhook's signature, reads the event's envelope (snapshot or thin),
// checks what the worker will need, records the event in the stripe_events
// inbox and enqueues its stripe:event task. The webhook handler
// (internal/web) and the catch-up from the List Events API ("stripe sync")
// both call it, so an event is checked, deduplicated and queued the same way
// however it arrives.
//
// It depends on the store, the queue and the task contract only, so the web
// process may import it without importing a domain.
package inbox

import (
	"context"
	"errors"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// Time limits for the two writes behind an acceptance: Stripe waits for the
// webhook's answer, and a stalled dependency must turn into "unavailable",
// not a hung request.
const (
	DefaultRecordTimeout  = 3 * time.Second
	DefaultEnqueueTimeout = 2 * time.Second
)

// Outcome says what the intake did with an event.
type Outcome string

// Outcomes of Receive and Accept.
const (
	// Accepted: recorded and enqueued.
	Accepted Outcome = "accepted"
	// Duplicate: already in the inbox; enqueued again (the TaskID keeps it
	// single) in case the first enqueue was lost.
	Duplicate Outcome = "duplicate"
	// Ignored: a verified event of a type the worker does not apply; not
	// recorded.
	Ignored Outcome = "ignored"
	// Refused: not recorded, for the reason given; sending it again changes
	// nothing.
	Refused Outcome = "refused"
	// Unavailable: PostgreSQL or Redis failed; try again later. When
	// Recorded is set the event is safe in the inbox and the re-drive sweep
	// will enqueue it.
	Unavailable Outcome = "unavailable"
)

// Result is what the intake did with one event.
type Result struct {
	Outcome Outcome
	// Event is the envelope, as far as it was read.
	Event Envelope
	// Recorded is set once the event is durable in the inbox.
	Recorded bool
	// Reason is the sentence for whoever sent the event, when Refused or
	// Unavailable.
	Reason string
	// Err is the cause behind Reason, for the log; nil when Reason says it
	// all.
	Err error
}

// Intake records Stripe events in the inbox and enqueues them.
type Intake struct {
	Store *postgres.Store
	Queue queue.Enqueuer
	// Verifier checks webhook signatures (Receive); Accept does not use it.
	Verifier
	// RecordTimeout and EnqueueTimeout bound the two writes; the defaults
	// when zero.
	RecordTimeout, EnqueueTimeout time.Duration
}

// Receive is the webhook's intake: it verifies the Stripe-Signature header
// against body (see Verifier.Verify), then accepts the event as
// postgres.SourceWebhook.
func (in *Intake) Receive(ctx context.Context, header string, body []byte) Result {
	if err := in.Verify(body, header); err != nil {
		return refused(Envelope{}, err)
	}
	return in.Accept(ctx, body, postgres.SourceWebhook)
}

// Accept reads, checks, records and enqueues one event body that is known
// to come from Stripe (a verified webhook, or the List Events API), noting
// source on the inbox row. An event of a type the worker does not apply is
// Ignored; a malformed one is Refused with the reason. A duplicate is
// enqueued again: the first delivery may have been recorded while Redis was
// down, and the event id as TaskID keeps a queued event single.
func (in *Intake) Accept(ctx context.Context, body []byte, source string) Result {
	ev, err := Decode(body)
	if err != nil {
		return refused(ev, err)
	}
	res := Result{Event: ev}
	if !ev.Supported() {
		res.Outcome = Ignored
		return res
	}

	rctx, cancel := context.WithTimeout(ctx, orDefault(in.RecordTimeout, DefaultRecordTimeout))
	dup, err := in.Store.InsertStripeEvent(rctx, postgres.StripeEvent{
		ID:            ev.ID,
		Type:          ev.SnapshotType(),
		APIVersion:    ev.APIVersion,
		Livemode:      ev.Livemode,
		CreatedAt:     ev.Created,
		Payload:       body,
		Source:        source,
		Kind:          ev.Kind,
		SnapshotEvent: ev.SnapshotEvent,
	})
	cancel()
	switch {
	case errors.Is(err, postgres.ErrInvalidPayload):
		res.Outcome, res.Reason, res.Err = Refused, "event body is JSON that cannot be stored", err
		return res
	case err != nil:
		res.Outcome, res.Reason, res.Err = Unavailable, "could not record the event; retry later", err
		return res
	}
	res.Recorded = true

	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: ev.ID, Type: ev.SnapshotType()})
	if err == nil {
		ectx, ecancel := context.WithTimeout(ctx, orDefault(in.EnqueueTimeout, DefaultEnqueueTimeout))
		_, _, err = queue.Enqueue(ectx, in.Queue, task)
		ecancel()
	}
	if err != nil {
		// The row is durable and the inbox sweep will re-drive it, but the
		// queue is down: the webhook answers 503 so that Stripe retries,
		// which re-enqueues sooner.
		res.Outcome, res.Reason, res.Err = Unavailable, "could not queue the event; retry later", err
		return res
	}
	res.Outcome = Accepted
	if dup {
		res.Outcome = Duplicate
	}
	return res
}

func refused(ev Envelope, err error) Result {
	return Result{Outcome: Refused, Event: ev, Reason: err.Error()}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
