package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// ErrInvalidPayload is returned when PostgreSQL refuses a JSON payload that Go
// accepted, such as one holding a \u0000 escape, which jsonb cannot store.
var ErrInvalidPayload = errors.New("payload is not storable JSON")

// Inbox row sources: how an event reached the inbox.
const (
	SourceWebhook   = "webhook"   // POST /billing/webhooks/stripe/
	SourceSync      = "sync"      // "stripe sync", catching up from the List Events API
	SourceReconcile = "reconcile" // "stripe reconcile --fix", the API's state applied
)

// Inbox row kinds: a snapshot event carries its object, a thin event names it.
const (
	KindSnapshot = "snapshot"
	KindThin     = "thin"
)

// StripeEvent is a verified Stripe event as the intake records it in the
// stripe_events inbox.
type StripeEvent struct {
	ID string
	// Type is the snapshot type (customer.subscription.updated), for thin
	// events too.
	Type       string
	APIVersion string
	Livemode   bool
	CreatedAt  time.Time // Stripe's event.created
	Payload    []byte    // the whole event, as received
	Source     string    // SourceWebhook when empty
	Kind       string    // KindSnapshot when empty
	// SnapshotEvent is a thin event's snapshot twin, when it names one.
	SnapshotEvent string
}

// InsertStripeEvent records e in the inbox. A second delivery of the same event
// id is not an error: it reports duplicate=true and leaves the first row as it
// was. When it returns nil the event is durable, and only then may the web
// process answer 200.
func (s *Store) InsertStripeEvent(ctx context.Context, e StripeEvent) (duplicate bool, err error) {
	const q = `
		INSERT INTO stripe_events (id, type, api_version, livemode, stripe_created_at, payload, source, kind, snapshot_event)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, ''))
		ON CONFLICT (id) DO NOTHING`
	source, kind := cmp.Or(e.Source, SourceWebhook), cmp.Or(e.Kind, KindSnapshot)
	res, err := s.DB.ExecContext(ctx, q, e.ID, e.Type, e.APIVersion, e.Livemode, e.CreatedAt.UTC(), string(e.Payload),
		source, kind, e.SnapshotEvent)
	if isInvalidJSON(err) {
		return false, fmt.Errorf("record stripe event %s: %w", e.ID, ErrInvalidPayload)
	}
	if err != nil {
		return false, fmt.Errorf("record stripe event %s: %w", e.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record stripe event %s: %w", e.ID, err)
	}
	return n == 0, nil
}

// isInvalidJSON reports PostgreSQL's refusal of a value Go accepted from the
// event: invalid text representation (22P02), an untranslatable character
// (22P05), bytes that are not UTF-8, a NUL among them (22021), or a created
// time beyond timestamptz's range (22008).
func isInvalidJSON(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == "22P02" || pqErr.Code == "22P05" || pqErr.Code == "22021" || pqErr.Code == "22008")
}

// KnownStripeEvents returns which of ids are already in the inbox.
func (s *Store) KnownStripeEvents(ctx context.Context, ids []string) (map[string]bool, error) {
	const q = `SELECT id FROM stripe_events WHERE id = ANY($1)`
	var found []string
	if err := s.DB.SelectContext(ctx, &found, q, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("look up %d stripe events: %w", len(ids), err)
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// SaveFetchedObject keeps on the inbox row the object a thin event named, as
// fetched from the Stripe API at at: what was applied, and what a repeated
// notification reads.
func (s *Store) SaveFetchedObject(ctx context.Context, id string, object []byte, at time.Time) error {
	const q = `UPDATE stripe_events SET fetched_object = $2, fetched_at = $3 WHERE id = $1`
	res, err := s.DB.ExecContext(ctx, q, id, string(object), at.UTC())
	if isInvalidJSON(err) {
		return fmt.Errorf("keep fetched object of stripe event %s: %w", id, ErrInvalidPayload)
	}
	if err != nil {
		return fmt.Errorf("keep fetched object of stripe event %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("keep fetched object of stripe event %s: %w", id, ErrNotFound)
	}
	return nil
}

// StripeSyncReached returns how far the catch-up named name got: every event
// created before the time has been listed. ErrNotFound before the first
// complete run.
func (s *Store) StripeSyncReached(ctx context.Context, name string) (time.Time, error) {
	const q = `SELECT reached_at FROM stripe_sync_state WHERE name = $1`
	var t time.Time
	if err := s.DB.GetContext(ctx, &t, q, name); err != nil {
		return time.Time{}, fmt.Errorf("stripe sync state %q: %w", name, notFound(err))
	}
	return t, nil
}

// SetStripeSyncReached records that the catch-up named name listed every
// event created before reached. The mark only moves forward.
func (s *Store) SetStripeSyncReached(ctx context.Context, name string, reached time.Time) error {
	const q = `
		INSERT INTO stripe_sync_state (name, reached_at) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE
		SET reached_at = GREATEST(stripe_sync_state.reached_at, EXCLUDED.reached_at), updated_at = now()`
	if _, err := s.DB.ExecContext(ctx, q, name, reached.UTC()); err != nil {
		return fmt.Errorf("record stripe sync state %q: %w", name, err)
	}
	return nil
}
