package stripetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ThinObject is the "object" of a thin event.
const ThinObject = "v2.core.event"

// ThinEventOptions describes a thin event for BuildThinEvent: the envelope
// Stripe sends to an event destination of thin events, which names the
// changed object instead of carrying it.
type ThinEventOptions struct {
	// Type is the snapshot type ("customer.subscription.updated") or the
	// thin one ("v1.customer.subscription.updated"); required.
	Type     string
	ID       string    // a random evt_test_... when empty
	Created  time.Time // now when zero; written as RFC 3339 with milliseconds
	Livemode bool

	// ObjectID is related_object.id; a random id of the type's object when
	// empty.
	ObjectID string
	// ObjectType is related_object.type; the type's object (customer,
	// subscription or invoice) when empty.
	ObjectType string
	// URL is related_object.url; the object's own path when empty. NoURL
	// leaves it out.
	URL   string
	NoURL bool
	// NoRelatedObject leaves related_object out altogether.
	NoRelatedObject bool
	// SnapshotEvent names the snapshot twin (snapshot_event), sent while an
	// account has destinations of both kinds.
	SnapshotEvent string
}

// ThinType is the thin name of a snapshot event type: "v1." in front.
func ThinType(snapshotType string) string {
	if strings.HasPrefix(snapshotType, "v1.") {
		return snapshotType
	}
	return "v1." + snapshotType
}

// objectOf is the object a snapshot event type is about, and its id prefix.
func objectOf(snapshotType string) (kind, prefix, plural string) {
	switch {
	case snapshotType == typeCustomerCreated:
		return "customer", "cus_", "customers"
	case strings.HasPrefix(snapshotType, "customer.subscription."):
		return "subscription", "sub_", "subscriptions"
	case strings.HasPrefix(snapshotType, "invoice."):
		return "invoice", "in_", "invoices"
	}
	return "", "", ""
}

// BuildThinEvent returns the JSON of a thin event as Stripe sends it: object
// "v2.core.event", created an RFC 3339 string, the changed object in
// related_object (id, type, url) and, for an account sending both kinds,
// snapshot_event.
func BuildThinEvent(o ThinEventOptions) ([]byte, error) {
	snapshotType := strings.TrimPrefix(o.Type, "v1.")
	if !slices.Contains(eventTypes, snapshotType) {
		return nil, fmt.Errorf("build thin event: unsupported type %q (supported: v1. and one of %s)", o.Type, strings.Join(eventTypes, ", "))
	}
	kind, prefix, plural := objectOf(snapshotType)
	if o.ID == "" {
		o.ID = NewID("evt_test_")
	}
	if o.Created.IsZero() {
		o.Created = time.Now()
	}
	if o.ObjectID == "" {
		o.ObjectID = NewID(prefix)
	}
	if o.ObjectType == "" {
		o.ObjectType = kind
	}
	if o.URL == "" {
		o.URL = "/v1/" + plural + "/" + o.ObjectID
	}
	ev := map[string]any{
		"id":       o.ID,
		"object":   ThinObject,
		"type":     ThinType(snapshotType),
		"created":  o.Created.UTC().Format("2006-01-02T15:04:05.000Z"),
		"livemode": o.Livemode,
		"context":  nil,
		"reason":   map[string]any{"type": "request", "request": map[string]any{"id": NewID("req_"), "idempotency_key": NewID("")}},
	}
	if !o.NoRelatedObject {
		related := map[string]any{"id": o.ObjectID, "type": o.ObjectType}
		if !o.NoURL {
			related["url"] = o.URL
		}
		ev["related_object"] = related
	}
	if o.SnapshotEvent != "" {
		ev["snapshot_event"] = o.SnapshotEvent
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("build thin event: %w", err)
	}
	return b, nil
}

// MustBuildThinEvent is BuildThinEvent for options fixed in code; it panics
// on an unsupported type.
func MustBuildThinEvent(o ThinEventOptions) []byte {
	b, err := BuildThinEvent(o)
	if err != nil {
		panic(err)
	}
	return b
}
