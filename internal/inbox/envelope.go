package inbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/tasks"
)

// MaxEventIDLength is the longest event id accepted: Stripe's ids are at
// most 255 characters.
const MaxEventIDLength = 255

// ThinObject is the "object" of a thin event; a snapshot event's is "event".
const ThinObject = "v2.core.event"

// Envelope is what the intake reads of an event body. The body itself is
// stored whole.
type Envelope struct {
	ID         string
	Type       string // as Stripe sent it: "v1.customer.subscription.updated" for a thin event
	Kind       string // postgres.KindSnapshot or postgres.KindThin
	Created    time.Time
	APIVersion string
	Livemode   bool
	// SnapshotEvent is a thin event's snapshot twin, when it names one.
	SnapshotEvent string
	// RelatedObject is the object a thin event is about.
	RelatedObject RelatedObject
}

// RelatedObject is a thin event's related_object.
type RelatedObject struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	URL  string `json:"url"`
}

// SnapshotType is the type the inbox records and the worker applies: the
// snapshot type, also for a thin event ("v1." removed).
func (e Envelope) SnapshotType() string {
	if e.Kind == postgres.KindThin {
		return strings.TrimPrefix(e.Type, tasks.ThinEventPrefix)
	}
	return e.Type
}

// Supported reports whether the worker applies events of e's type and kind.
func (e Envelope) Supported() bool {
	if e.Kind == postgres.KindThin {
		return slices.Contains(tasks.StripeThinEventTypes, e.Type)
	}
	return slices.Contains(tasks.StripeEventTypes, e.Type)
}

// Refusal is an event the intake will not record, with a sentence for
// whoever sent it (the webhook's 400, a line of "stripe sync").
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refuse(format string, args ...any) *Refusal {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// Decode reads the envelope of a Stripe event, snapshot or thin, and checks
// what the worker will need of it: an id (at most MaxEventIDLength
// characters), a type, a created time (a Unix time, or RFC 3339 for a thin
// event) and, for a type the worker applies, data.object (snapshot) or
// related_object with an id and a type (thin). The error is a *Refusal
// saying what is missing or wrong; the envelope is then as far as it was
// read (for the log).
func Decode(body []byte) (Envelope, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		if json.Valid(body) {
			return Envelope{}, refuse("not a Stripe event: the body is JSON but not an object")
		}
		return Envelope{}, refuse("not a Stripe event: the body is not valid JSON")
	}
	var e Envelope
	var missing []string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"id", &e.ID}, {"type", &e.Type}} {
		ok, err := stringField(top, f.name, f.dst)
		if err != nil {
			return Envelope{}, err
		}
		if !ok || *f.dst == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return e, refuse("not a Stripe event: missing %s", strings.Join(missing, " and "))
	}
	if len(e.ID) > MaxEventIDLength {
		return e, refuse("event id is %d characters long; Stripe's are at most %d", len(e.ID), MaxEventIDLength)
	}
	var object string
	if _, err := stringField(top, "object", &object); err != nil {
		return e, err
	}
	switch object {
	case "", "event":
		e.Kind = postgres.KindSnapshot
	case ThinObject:
		e.Kind = postgres.KindThin
	default:
		return e, refuse("not a Stripe event: object is %q, not \"event\" or %q", clip(object, 60), ThinObject)
	}
	if _, err := stringField(top, "api_version", &e.APIVersion); err != nil {
		return e, err
	}
	if raw, ok := top["livemode"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &e.Livemode); err != nil {
			return e, refuse("event %s: livemode is %s, not true or false", e.ID, jsonKind(raw))
		}
	}
	if err := e.readCreated(top); err != nil {
		return e, err
	}
	if e.Kind == postgres.KindThin {
		return e, e.readThin(top)
	}
	if e.Supported() {
		if raw := top["data"]; len(raw) == 0 || !hasObject(raw) {
			return e, refuse("event %s (%s) has no data.object", e.ID, e.Type)
		}
	}
	return e, nil
}

func (e *Envelope) readCreated(top map[string]json.RawMessage) error {
	raw, ok := top["created"]
	if !ok || isNull(raw) {
		return refuse("not a Stripe event: missing created")
	}
	if e.Kind == postgres.KindThin {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return refuse("thin event %s: created is %s, not an RFC 3339 time", e.ID, jsonKind(raw))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return refuse("thin event %s: created %q is not an RFC 3339 time", e.ID, clip(s, 60))
		}
		e.Created = t
		return nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return refuse("event %s: created is %s, not a Unix time in seconds", e.ID, clip(string(raw), 60))
	}
	e.Created = time.Unix(n, 0)
	return nil
}

func (e *Envelope) readThin(top map[string]json.RawMessage) error {
	if _, err := stringField(top, "snapshot_event", &e.SnapshotEvent); err != nil {
		return err
	}
	if len(e.SnapshotEvent) > MaxEventIDLength {
		return refuse("thin event %s: snapshot_event is %d characters long; Stripe's ids are at most %d", e.ID, len(e.SnapshotEvent), MaxEventIDLength)
	}
	raw, ok := top["related_object"]
	if !ok || isNull(raw) {
		if e.Supported() {
			return refuse("thin event %s (%s) has no related_object", e.ID, e.Type)
		}
		return nil
	}
	if err := json.Unmarshal(raw, &e.RelatedObject); err != nil {
		return refuse("thin event %s: related_object is %s, not an object with an id, a type and a url", e.ID, jsonKind(raw))
	}
	if e.Supported() && (e.RelatedObject.ID == "" || e.RelatedObject.Type == "") {
		return refuse("thin event %s (%s): related_object has no id or no type", e.ID, e.Type)
	}
	return nil
}

// stringField reads top[name] into dst when it is a string. It reports
// false for an absent or null field, and a refusal for another JSON type.
func stringField(top map[string]json.RawMessage, name string, dst *string) (bool, error) {
	raw, ok := top[name]
	if !ok || isNull(raw) {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, refuse("not a Stripe event: %s is %s, not a string", name, jsonKind(raw))
	}
	return true, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// hasObject reports whether data (the event's "data") holds an object under
// "object".
func hasObject(data json.RawMessage) bool {
	var d struct {
		Object json.RawMessage `json:"object"`
	}
	if json.Unmarshal(data, &d) != nil {
		return false
	}
	o := bytes.TrimSpace(d.Object)
	return len(o) > 0 && o[0] == '{'
}

// jsonKind names the JSON type of raw: "a number", "an object" ...
func jsonKind(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return "empty"
	}
	switch b[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// clip shortens s to at most n bytes for a message, saying how long it was.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", strings.ToValidUTF8(s[:n], ""), len(s))
}
