package web_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/tasks"
)

// syncBuffer is a log destination tests read while handlers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (f *fixture) captureLog() *syncBuffer {
	buf := &syncBuffer{}
	f.server.Log = slog.New(slog.NewJSONHandler(buf, nil))
	return buf
}

// Issue 12.1: the tolerance was checked against the first t=, while the
// HMAC was computed with the last, so an old signature could be replayed
// behind a fresh timestamp.
func TestStripeOldSignatureCannotBeReplayed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := eventJSON("evt_replay", "customer.subscription.updated")
	old := time.Now().Add(-30 * 24 * time.Hour)
	now := time.Now()
	oldSig := hex.EncodeToString(webhook.ComputeSignature(old, body, secret))
	freshT := fmt.Sprintf("t=%d", now.Unix())
	oldT := fmt.Sprintf("t=%d", old.Unix())

	cases := []struct {
		name, header, reason string
	}{
		{"fresh t= then the old t=", freshT + "," + oldT + ",v1=" + oldSig, "more than one t= timestamp"},
		{"old t= then a fresh t=", oldT + "," + freshT + ",v1=" + oldSig, "more than one t= timestamp"},
		{"the old signature under a fresh t=", freshT + ",v1=" + oldSig, "no valid signature"},
		{"the old signature under its own t=", oldT + ",v1=" + oldSig, "older than the tolerance"},
		{"no t=", "v1=" + oldSig, "no t= timestamp"},
		{"no v1=", freshT + ",v0=" + oldSig, "no v1= signature"},
	}
	for _, tc := range cases {
		status, out := post(t, f.url, body, tc.header)
		assert.Equal(t, http.StatusBadRequest, status, tc.name)
		assert.Contains(t, out["error"], tc.reason, tc.name)
	}
	assert.Equal(t, 0, countEvents(t, f.store), "nothing replayed was recorded")
	assert.Empty(t, pendingTasks(t, f.inspector))
}

// Issue 13: the answer says what is missing, and a refused webhook logs the
// same sentence.
func TestStripeIntakeSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	logs := f.captureLog()
	now := time.Now().Unix()
	cases := []struct {
		name, body, reason string
	}{
		{"no type, empty data", `{"id":"evt_1","data":{}}`, "not a Stripe event: missing type"},
		{"id is a number", `{"id":5,"type":"customer.created","created":1}`, "not a Stripe event: id is a number, not a string"},
		{"not an object", `[1,2]`, "not a Stripe event: the body is JSON but not an object"},
		{"no created", `{"id":"evt_2","type":"customer.created","data":{"object":{"id":"cus_1"}}}`, "not a Stripe event: missing created"},
		{"another object", `{"id":"ch_1","object":"charge","type":"x","created":1}`, `not a Stripe event: object is "charge", not "event" or "v2.core.event"`},
		{"signed, but no data.object", fmt.Sprintf(`{"id":"evt_3","object":"event","type":"customer.subscription.updated","created":%d,"data":{}}`, now),
			"event evt_3 (customer.subscription.updated) has no data.object"},
		{"data.object null", fmt.Sprintf(`{"id":"evt_4","type":"invoice.payment_failed","created":%d,"data":{"object":null}}`, now),
			"event evt_4 (invoice.payment_failed) has no data.object"},
	}
	for _, tc := range cases {
		status, out := post(t, f.url, []byte(tc.body), sign([]byte(tc.body), secret, time.Now()))
		assert.Equal(t, http.StatusBadRequest, status, tc.name)
		assert.Equal(t, tc.reason, out["error"], tc.name)
		assert.Contains(t, logs.String(), fmt.Sprintf(`"reason":%q`, tc.reason), "%s: the log has the caller's reason", tc.name)
	}
	// A bad signature is logged with its reason too (issue 12.9).
	body := eventJSON("evt_5", "customer.created")
	status, _ := post(t, f.url, body, sign(body, "whsec_wrong", time.Now()))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, logs.String(), `"reason":"no valid signature for any configured secret"`)
	assert.Contains(t, logs.String(), `"outcome":"rejected"`)
	assert.Equal(t, 0, countEvents(t, f.store), "no malformed event reaches the inbox")
}

// Issue 12.5: a 500 KB event id is refused with 400 (Stripe's ids are at
// most 255 characters), and the log line does not carry it whole.
func TestStripeOverlongEventIDIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	logs := f.captureLog()
	longID := "evt_" + strings.Repeat("x", 500_000)
	body := eventJSON(longID, "customer.subscription.updated")
	status, out := post(t, f.url, body, sign(body, secret, time.Now()))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "event id is 500004 characters long; Stripe's are at most 255", out["error"])
	assert.Equal(t, 0, countEvents(t, f.store))

	// 255 is still fine.
	okID := "evt_" + strings.Repeat("y", 251)
	body = eventJSON(okID, "customer.subscription.updated")
	status, _ = post(t, f.url, body, sign(body, secret, time.Now()))
	assert.Equal(t, http.StatusOK, status)

	// A thin event's snapshot_event is held to the same bound.
	thin := stripetest.MustBuildThinEvent(stripetest.ThinEventOptions{Type: "customer.subscription.updated", SnapshotEvent: "evt_" + strings.Repeat("z", 300)})
	status, out = post(t, f.url, thin, sign(thin, secret, time.Now()))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, out["error"], "snapshot_event is 304 characters long")

	// An over-long type in an ignored event is cut in the log line too.
	longType := strings.Repeat("t", 100_000)
	body = eventJSON("evt_longtype", longType)
	status, _ = post(t, f.url, body, sign(body, secret, time.Now()))
	assert.Equal(t, http.StatusOK, status)
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		assert.Less(t, len(line), 2000, "log line of %d bytes", len(line))
	}
}

// Issue 12.7: labels take known values only.
func TestStripeUnknownTypesShareOneMetricSeries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.server.Handler()
	for i := range 10_000 {
		body := eventJSON(fmt.Sprintf("evt_kind_%d", i), fmt.Sprintf("unknown.kind_%d.%s", i, strings.Repeat("x", i%50)))
		req := httptest.NewRequest(http.MethodPost, "/billing/webhooks/stripe/", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", sign(body, secret, time.Now()))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
	}
	known := map[string]bool{"other": true, "unknown": true}
	for _, typ := range tasks.StripeEventTypes {
		known[typ], known["v1."+typ] = true, true
	}
	families, err := metrics.Registry.Gather()
	require.NoError(t, err)
	var others float64
	series := 0
	for _, mf := range families {
		if mf.GetName() != "cleantrack_webhooks_received_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := labelMap(m)
			if labels["provider"] != "stripe" {
				continue
			}
			series++
			assert.True(t, known[labels["type"]], "type label %.60q is not a known value", labels["type"])
			if labels["type"] == "other" && labels["outcome"] == "ignored" {
				others += m.GetCounter().GetValue()
			}
		}
	}
	assert.GreaterOrEqual(t, others, float64(10_000))
	assert.Less(t, series, 100, "a handful of series, not one per type")
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestStripeThinEventsAreRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	thin := stripetest.MustBuildThinEvent(stripetest.ThinEventOptions{
		Type: "v1.customer.subscription.updated", ID: "evt_test_thin1", ObjectID: "sub_9", SnapshotEvent: "evt_snap1",
		Created: time.Date(2026, 11, 30, 10, 0, 0, 250e6, time.UTC),
	})
	status, out := post(t, f.url, thin, sign(thin, secret, time.Now()))
	require.Equal(t, http.StatusOK, status, "%v", out)
	assert.Equal(t, map[string]any{"received": true, "duplicate": false}, out)

	var row struct {
		Type          string    `db:"type"`
		Kind          string    `db:"kind"`
		Source        string    `db:"source"`
		SnapshotEvent string    `db:"snapshot_event"`
		Created       time.Time `db:"stripe_created_at"`
	}
	require.NoError(t, f.store.DB.Get(&row, `SELECT type, kind, source, snapshot_event, stripe_created_at FROM stripe_events WHERE id = 'evt_test_thin1'`))
	assert.Equal(t, "customer.subscription.updated", row.Type, "the inbox keeps the snapshot type")
	assert.Equal(t, "thin", row.Kind)
	assert.Equal(t, "webhook", row.Source)
	assert.Equal(t, "evt_snap1", row.SnapshotEvent)
	assert.True(t, row.Created.Equal(time.Date(2026, 11, 30, 10, 0, 0, 250e6, time.UTC)), "created read from RFC 3339: %s", row.Created)
	info, err := f.inspector.GetTaskInfo(tasks.QueueCritical, "evt_test_thin1")
	require.NoError(t, err)
	assert.Equal(t, tasks.TypeStripeEvent, info.Type)

	// Other thin types are acknowledged and dropped, as snapshot ones are.
	other := []byte(fmt.Sprintf(`{"id":"evt_test_v2","object":"v2.core.event","type":"v2.core.account.updated","created":%q}`, time.Now().UTC().Format(time.RFC3339)))
	status, out = post(t, f.url, other, sign(other, secret, time.Now()))
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, out["ignored"])

	// A supported thin type must name its object, and created must be RFC 3339.
	bare := stripetest.MustBuildThinEvent(stripetest.ThinEventOptions{Type: "v1.invoice.payment_failed", ID: "evt_test_bare", NoRelatedObject: true})
	status, out = post(t, f.url, bare, sign(bare, secret, time.Now()))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "thin event evt_test_bare (v1.invoice.payment_failed) has no related_object", out["error"])
	unix := []byte(`{"id":"evt_test_unix","object":"v2.core.event","type":"v1.customer.created","created":1700000000,"related_object":{"id":"cus_1","type":"customer"}}`)
	status, out = post(t, f.url, unix, sign(unix, secret, time.Now()))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "thin event evt_test_unix: created is a number, not an RFC 3339 time", out["error"])
	assert.Equal(t, 1, countEvents(t, f.store))
}
