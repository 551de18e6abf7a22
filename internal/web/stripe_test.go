package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/web"
	"github.com/cleantrack/jobs/tasks"
)

const secret = "whsec_test_primary"

type fixture struct {
	store     *postgres.Store
	inspector *asynq.Inspector
	server    *web.Server
	url       string
}

func newFixture(t *testing.T, secrets ...string) *fixture {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{secret}
	}
	store, _ := pgtest.NewStore(t)
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	srv := &web.Server{
		Store:           store,
		Queue:           client,
		StripeSecrets:   secrets,
		StripeTolerance: 300 * time.Second,
		Log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &fixture{store: store, inspector: insp, server: srv, url: ts.URL + "/billing/webhooks/stripe/"}
}

func eventJSON(id, typ string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"api_version":"2025-03-31.basil","created":%d,"livemode":false,"data":{"object":{"id":"sub_1","object":"subscription","customer":"cus_1"}}}`,
		id, typ, time.Now().Unix()))
}

func sign(body []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
}

func post(t *testing.T, url string, body []byte, header string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	require.NoError(t, err)
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func countEvents(t *testing.T, s *postgres.Store) int {
	t.Helper()
	var n int
	require.NoError(t, s.DB.Get(&n, "SELECT count(*) FROM stripe_events"))
	return n
}

func pendingTasks(t *testing.T, insp *asynq.Inspector) []*asynq.TaskInfo {
	t.Helper()
	list, err := insp.ListPendingTasks(tasks.QueueCritical)
	if err != nil && strings.Contains(err.Error(), "not found") {
		return nil
	}
	require.NoError(t, err)
	return list
}

func TestStripeWebhookSignatures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "whsec_old", secret)
	body := eventJSON("evt_sig", "customer.subscription.updated")
	now := time.Now()
	rotated := sign(body, "whsec_old", now) + ",v1=" + strings.Split(sign(body, secret, now), "v1=")[1]

	cases := []struct {
		name   string
		body   []byte
		header string
		status int
		errMsg string
	}{
		{"missing header", body, "", 400, "missing Stripe-Signature header"},
		{"malformed header", body, "garbage", 400, "malformed Stripe-Signature header"},
		{"wrong secret", body, sign(body, "whsec_wrong", now), 400, "no valid signature for any configured secret"},
		{"tampered body", []byte(strings.Replace(string(body), "cus_1", "cus_2", 1)), sign(body, secret, now), 400, "no valid signature"},
		{"too old", body, sign(body, secret, now.Add(-301*time.Second)), 400, "older than the tolerance"},
		{"too far in the future", body, sign(body, secret, now.Add(301*time.Second)), 400, "in the future"},
		{"not an event", []byte(`{"hello":"world"}`), sign([]byte(`{"hello":"world"}`), secret, now), 400, "not a Stripe event: missing id and type"},
		{"not JSON", []byte(`not json`), sign([]byte(`not json`), secret, now), 400, "not a Stripe event: the body is not valid JSON"},
		{"valid, current secret", body, sign(body, secret, now), 200, ""},
		{"valid, old secret during rotation", body, sign(body, "whsec_old", now), 200, ""},
		{"valid, both signatures", body, rotated, 200, ""},
		{"slightly in the future is fine", body, sign(body, secret, now.Add(60*time.Second)), 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, f.url, tc.body, tc.header)
			assert.Equal(t, tc.status, status)
			if tc.errMsg != "" {
				assert.Contains(t, out["error"], tc.errMsg)
			} else {
				assert.Equal(t, true, out["received"])
			}
		})
	}
	// Only the valid deliveries were recorded, once, and queued once.
	assert.Equal(t, 1, countEvents(t, f.store))
	assert.Len(t, pendingTasks(t, f.inspector), 1)
}

func TestStripeWebhookRecordsAndEnqueues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := eventJSON("evt_rec", "invoice.payment_failed")
	status, out := post(t, f.url, body, sign(body, secret, time.Now()))
	require.Equal(t, 200, status)
	assert.Equal(t, map[string]any{"received": true, "duplicate": false}, out)

	var row struct {
		Type       string     `db:"type"`
		APIVersion string     `db:"api_version"`
		Processed  *time.Time `db:"processed_at"`
	}
	require.NoError(t, f.store.DB.Get(&row, "SELECT type, api_version, processed_at FROM stripe_events WHERE id = 'evt_rec'"))
	assert.Equal(t, "invoice.payment_failed", row.Type)
	assert.Equal(t, "2025-03-31.basil", row.APIVersion)
	assert.Nil(t, row.Processed)

	info, err := f.inspector.GetTaskInfo(tasks.QueueCritical, "evt_rec")
	require.NoError(t, err)
	assert.Equal(t, tasks.TypeStripeEvent, info.Type)
	assert.GreaterOrEqual(t, info.Retention, 72*time.Hour, "retention must cover Stripe's 3-day retry window")

	// A redelivery is acknowledged as a duplicate and neither stored nor queued twice.
	status, out = post(t, f.url, body, sign(body, secret, time.Now()))
	require.Equal(t, 200, status)
	assert.Equal(t, true, out["duplicate"])
	assert.Equal(t, 1, countEvents(t, f.store))
	assert.Len(t, pendingTasks(t, f.inspector), 1)
}

func TestStripeWebhookConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := eventJSON("evt_storm", "customer.subscription.updated")
	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = post(t, f.url, body, sign(body, secret, time.Now()))
		}()
	}
	wg.Wait()
	for _, s := range statuses {
		assert.Equal(t, 200, s)
	}
	assert.Equal(t, 1, countEvents(t, f.store))
	assert.Len(t, pendingTasks(t, f.inspector), 1)
}

func TestStripeWebhookIgnoresUnsupportedTypes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := eventJSON("evt_other", "charge.refunded")
	status, out := post(t, f.url, body, sign(body, secret, time.Now()))
	assert.Equal(t, 200, status)
	assert.Equal(t, true, out["ignored"])
	assert.Equal(t, 0, countEvents(t, f.store))
	assert.Empty(t, pendingTasks(t, f.inspector))
}

func TestStripeWebhookLimitsAndMethods(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	big := []byte(`{"id":"evt_big","type":"customer.created","pad":"` + strings.Repeat("x", web.MaxWebhookBody) + `"}`)
	status, _ := post(t, f.url, big, sign(big, secret, time.Now()))
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)

	resp, err := http.Get(f.url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// Without the final slash too.
	body := eventJSON("evt_noslash", "customer.created")
	status, _ = post(t, strings.TrimSuffix(f.url, "/"), body, sign(body, secret, time.Now()))
	assert.Equal(t, 200, status)

	// A NUL escape is valid JSON for Go but not storable as jsonb: a 400, not a 5xx.
	nul := []byte(`{"id":"evt_nul","type":"customer.created","created":1,"data":{"object":{"name":"a\u0000b"}}}`)
	status, out := post(t, f.url, nul, sign(nul, secret, time.Now()))
	assert.Equal(t, 400, status)
	assert.Contains(t, out["error"], "cannot be stored")
}

func TestStripeWebhookUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("postgresql down", func(t *testing.T) {
		f := newFixture(t)
		require.NoError(t, f.store.DB.Close())
		body := eventJSON("evt_pgdown", "customer.created")
		status, out := post(t, f.url, body, sign(body, secret, time.Now()))
		assert.Equal(t, 503, status)
		assert.Contains(t, out["error"], "could not record")
		assert.Empty(t, pendingTasks(t, f.inspector), "nothing may be queued for an event that is not recorded")
	})
	t.Run("redis down", func(t *testing.T) {
		f := newFixture(t)
		// Nothing listens on port 1.
		dead := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { dead.Close() })
		f.server.Queue = dead
		body := eventJSON("evt_redisdown", "customer.created")
		status, out := post(t, f.url, body, sign(body, secret, time.Now()))
		assert.Equal(t, 503, status)
		assert.Contains(t, out["error"], "could not queue")
		// The row stays in the inbox for the sweep and for Stripe's retry.
		assert.Equal(t, 1, countEvents(t, f.store))
	})
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	calls := 0
	f.server.Ready = func(ctx context.Context) error {
		calls++
		if calls > 1 {
			return fmt.Errorf("redis: connection refused")
		}
		return nil
	}
	ts := httptest.NewServer(f.server.Handler())
	defer ts.Close()
	for _, tc := range []struct {
		path   string
		status int
	}{{"/healthz", 200}, {"/readyz", 200}, {"/readyz", 503}} {
		resp, err := http.Get(ts.URL + tc.path)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, tc.status, resp.StatusCode, "%s: %s", tc.path, b)
	}
}
