// Package billing turns recorded Stripe events into account billing state:
// it decodes events of every API shape CleanTrack receives, applies them to
// accounts exactly once and in order (the stripe:event handler), re-drives
// inbox rows a lost Redis dropped (the stripe:inbox_redrive handler), and
// builds signed test events for the CLI and for tests.
package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/tasks"
)

// Event is the envelope of a Stripe event as stored in stripe_events.payload,
// snapshot or thin. Data.Object stays raw: decode it with Customer,
// Subscription or Invoice. A thin event carries no object: the handler
// fetches the one RelatedObject names into Data.Object and sets FetchedAt.
type Event struct {
	ID         string `json:"id"`
	Type       string `json:"type"` // as Stripe sent it: v1.... for a thin event
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Livemode   bool   `json:"livemode"`
	Data       struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`

	// Kind is postgres.KindSnapshot or postgres.KindThin.
	Kind string `json:"-"`
	// RelatedObject is the object a thin event is about.
	RelatedObject RelatedObject `json:"-"`
	// SnapshotEvent is a thin event's snapshot twin, when it names one.
	SnapshotEvent string `json:"-"`
	// FetchedAt is when Data.Object was fetched from the Stripe API (a
	// thin event, a reconcile): the state as of then. Zero for an object
	// the event carried.
	FetchedAt time.Time `json:"-"`

	created time.Time // a thin event's RFC 3339 created, to the millisecond
}

// RelatedObject is a thin event's related_object.
type RelatedObject struct {
	ID   string `json:"id"`
	Type string `json:"type"` // customer, subscription, invoice ...
	URL  string `json:"url"`  // the object's API path, /v1/subscriptions/sub_...
}

// CreatedAt is Stripe's event.created as a time.
func (e Event) CreatedAt() time.Time {
	if !e.created.IsZero() {
		return e.created.UTC()
	}
	return time.Unix(e.Created, 0).UTC()
}

// SnapshotType is the snapshot type of the event, "v1." removed from a thin
// event's: the type the inbox row records and the handler applies.
func (e Event) SnapshotType() string {
	if e.Kind == postgres.KindThin {
		return strings.TrimPrefix(e.Type, tasks.ThinEventPrefix)
	}
	return e.Type
}

// ErrMalformed marks an event that can never be applied, however often it is
// retried: bad JSON, a missing object, a missing required id.
var ErrMalformed = errors.New("malformed event")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// thinObject is the "object" of a thin event.
const thinObject = "v2.core.event"

// DecodeEvent reads the event envelope, snapshot or thin (object
// "v2.core.event": created in RFC 3339, related_object instead of
// data.object). Errors wrap ErrMalformed.
func DecodeEvent(raw []byte) (Event, error) {
	var head struct {
		Object json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return Event{}, malformed("event is not valid JSON: %v", err)
	}
	if bytes.Equal(bytes.TrimSpace(head.Object), []byte(`"`+thinObject+`"`)) {
		return decodeThin(raw)
	}
	var e Event
	if err := json.Unmarshal(raw, &e); err != nil {
		return Event{}, malformed("event is not valid JSON: %v", err)
	}
	e.Kind = postgres.KindSnapshot
	if e.ID == "" || e.Type == "" {
		return Event{}, malformed("event has no id or type")
	}
	if len(bytes.TrimSpace(e.Data.Object)) == 0 || bytes.Equal(bytes.TrimSpace(e.Data.Object), []byte("null")) {
		return Event{}, malformed("event %s has no data.object", e.ID)
	}
	return e, nil
}

func decodeThin(raw []byte) (Event, error) {
	var t struct {
		ID            string        `json:"id"`
		Type          string        `json:"type"`
		Created       string        `json:"created"`
		Livemode      bool          `json:"livemode"`
		RelatedObject RelatedObject `json:"related_object"`
		SnapshotEvent string        `json:"snapshot_event"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return Event{}, malformed("thin event is not valid JSON: %v", err)
	}
	if t.ID == "" || t.Type == "" {
		return Event{}, malformed("event has no id or type")
	}
	created, err := time.Parse(time.RFC3339Nano, t.Created)
	if err != nil {
		return Event{}, malformed("thin event %s: created %q is not an RFC 3339 time", t.ID, t.Created)
	}
	if t.RelatedObject.ID == "" || t.RelatedObject.Type == "" {
		return Event{}, malformed("thin event %s has no related_object with an id and a type", t.ID)
	}
	return Event{
		ID: t.ID, Type: t.Type, Created: created.Unix(), Livemode: t.Livemode,
		Kind: postgres.KindThin, RelatedObject: t.RelatedObject, SnapshotEvent: t.SnapshotEvent, created: created,
	}, nil
}

// ExpandableID is a Stripe reference that arrives either as an id string
// ("cus_123") or, when expanded, as an object with an "id" field.
type ExpandableID string

// UnmarshalJSON accepts null, a string, or an object with "id".
func (x *ExpandableID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*x = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*x = ExpandableID(s)
		return nil
	case len(b) > 0 && b[0] == '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*x = ExpandableID(o.ID)
		return nil
	}
	return fmt.Errorf("expected an id string or an object with an id, got %.40s", b)
}

// Customer is the part of a Stripe customer object CleanTrack reads.
type Customer struct {
	ID       string            `json:"id"`
	Email    string            `json:"email"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata"`
}

// Subscription is the part of a Stripe subscription object CleanTrack reads,
// in both API shapes: before 2025-03-31 current_period_end sits on the
// subscription, from then on on each item.
type Subscription struct {
	ID               string       `json:"id"`
	Customer         ExpandableID `json:"customer"`
	Status           string       `json:"status"`
	Created          int64        `json:"created"`
	CurrentPeriodEnd int64        `json:"current_period_end"` // 2023-10-16 shape
	EndedAt          int64        `json:"ended_at"`
	CanceledAt       int64        `json:"canceled_at"`
	Items            struct {
		Data []SubscriptionItem `json:"data"`
	} `json:"items"`
}

// SubscriptionItem is one priced line of a subscription.
type SubscriptionItem struct {
	Price            ExpandableID `json:"price"`
	CurrentPeriodEnd int64        `json:"current_period_end"` // 2025-03-31+ shape
}

// PeriodEnd is the end of the current billing period, read from the
// subscription (old shape) or else the latest of its items (new shape); zero
// when neither says.
func (s Subscription) PeriodEnd() time.Time {
	end := s.CurrentPeriodEnd
	if end == 0 {
		for _, it := range s.Items.Data {
			end = max(end, it.CurrentPeriodEnd)
		}
	}
	if end == 0 {
		return time.Time{}
	}
	return time.Unix(end, 0).UTC()
}

// PriceID is the price of the first item, which decides the plan; "" when the
// subscription has no items.
func (s Subscription) PriceID() string {
	if len(s.Items.Data) == 0 {
		return ""
	}
	return string(s.Items.Data[0].Price)
}

// EndedTime is when a deleted subscription ended: ended_at, else canceled_at,
// else zero.
func (s Subscription) EndedTime() time.Time {
	switch {
	case s.EndedAt != 0:
		return time.Unix(s.EndedAt, 0).UTC()
	case s.CanceledAt != 0:
		return time.Unix(s.CanceledAt, 0).UTC()
	}
	return time.Time{}
}

// Invoice is the part of a Stripe invoice object CleanTrack reads, in both API
// shapes: before 2025-03-31 the subscription is at "subscription", from then
// on at "parent.subscription_details.subscription".
type Invoice struct {
	ID           string       `json:"id"`
	Customer     ExpandableID `json:"customer"`
	Subscription ExpandableID `json:"subscription"` // 2023-10-16 shape
	Parent       *struct {
		SubscriptionDetails *struct {
			Subscription ExpandableID `json:"subscription"`
		} `json:"subscription_details"`
	} `json:"parent"` // 2025-03-31+ shape
	Status             string `json:"status"` // draft, open, paid, uncollectible, void
	AmountDue          int64  `json:"amount_due"`
	AmountPaid         int64  `json:"amount_paid"`
	Currency           string `json:"currency"`
	AttemptCount       int    `json:"attempt_count"`
	NextPaymentAttempt int64  `json:"next_payment_attempt"`
	HostedInvoiceURL   string `json:"hosted_invoice_url"`
	StatusTransitions  struct {
		PaidAt int64 `json:"paid_at"`
	} `json:"status_transitions"`
}

// SubscriptionID is the invoice's subscription in either shape; "" for an
// invoice that belongs to no subscription.
func (in Invoice) SubscriptionID() string {
	if in.Subscription != "" {
		return string(in.Subscription)
	}
	if in.Parent != nil && in.Parent.SubscriptionDetails != nil {
		return string(in.Parent.SubscriptionDetails.Subscription)
	}
	return ""
}

// NextAttempt is when Stripe retries the payment; nil when it will not.
func (in Invoice) NextAttempt() *time.Time {
	if in.NextPaymentAttempt == 0 {
		return nil
	}
	t := time.Unix(in.NextPaymentAttempt, 0).UTC()
	return &t
}

// DecodeCustomer reads a customer event's object. Errors wrap ErrMalformed.
func (e Event) DecodeCustomer() (Customer, error) {
	var c Customer
	if err := json.Unmarshal(e.Data.Object, &c); err != nil {
		return Customer{}, malformed("event %s: customer object does not decode: %v", e.ID, err)
	}
	if c.ID == "" {
		return Customer{}, malformed("event %s: customer object has no id", e.ID)
	}
	return c, nil
}

// DecodeSubscription reads a subscription event's object. Errors wrap
// ErrMalformed.
func (e Event) DecodeSubscription() (Subscription, error) {
	var s Subscription
	if err := json.Unmarshal(e.Data.Object, &s); err != nil {
		return Subscription{}, malformed("event %s: subscription object does not decode: %v", e.ID, err)
	}
	switch {
	case s.ID == "":
		return Subscription{}, malformed("event %s: subscription object has no id", e.ID)
	case s.Customer == "":
		return Subscription{}, malformed("event %s: subscription %s has no customer", e.ID, s.ID)
	case s.Status == "":
		return Subscription{}, malformed("event %s: subscription %s has no status", e.ID, s.ID)
	}
	return s, nil
}

// DecodeInvoice reads an invoice event's object. Errors wrap ErrMalformed.
func (e Event) DecodeInvoice() (Invoice, error) {
	var in Invoice
	if err := json.Unmarshal(e.Data.Object, &in); err != nil {
		return Invoice{}, malformed("event %s: invoice object does not decode: %v", e.ID, err)
	}
	switch {
	case in.ID == "":
		return Invoice{}, malformed("event %s: invoice object has no id", e.ID)
	case in.Customer == "":
		return Invoice{}, malformed("event %s: invoice %s has no customer", e.ID, in.ID)
	}
	return in, nil
}
