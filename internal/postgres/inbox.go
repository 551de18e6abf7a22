package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// ErrInvalidPayload is returned when PostgreSQL refuses a JSON payload that Go
// accepted, such as one holding a \u0000 escape, which jsonb cannot store.
var ErrInvalidPayload = errors.New("payload is not storable JSON")

// StripeEvent is a verified Stripe event as the web process records it in the
// stripe_events inbox.
type StripeEvent struct {
	ID         string
	Type       string
	APIVersion string
	Livemode   bool
	CreatedAt  time.Time // Stripe's event.created
	Payload    []byte    // the whole event, as received
}

// InsertStripeEvent records e in the inbox. A second delivery of the same event
// id is not an error: it reports duplicate=true and leaves the first row as it
// was. When it returns nil the event is durable, and only then may the web
// process answer 200.
func (s *Store) InsertStripeEvent(ctx context.Context, e StripeEvent) (duplicate bool, err error) {
	const q = `
		INSERT INTO stripe_events (id, type, api_version, livemode, stripe_created_at, payload)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`
	res, err := s.DB.ExecContext(ctx, q, e.ID, e.Type, e.APIVersion, e.Livemode, e.CreatedAt.UTC(), string(e.Payload))
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
