package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/web"
)

const fuzzSecret = "whsec_fuzz_secret"

// countingQueue passes enqueues to the real Asynq client and counts them.
type countingQueue struct {
	queue.Enqueuer
	n atomic.Int64
}

func (q *countingQueue) EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	q.n.Add(1)
	return q.Enqueuer.EnqueueContext(ctx, t, opts...)
}

// How a fuzz input's Stripe-Signature header is made.
const (
	fuzzHeaderAsGiven = iota // the fuzzed header itself
	fuzzSigned               // a valid signature of the body, now
	fuzzWrongSecret          // a signature with a secret the server does not have
	fuzzTooOld               // a valid signature from beyond the tolerance
	fuzzModes
)

// FuzzStripeWebhook throws arbitrary bodies and Stripe-Signature headers at
// the webhook handler, backed by real PostgreSQL and Redis. Whatever arrives:
// no panic; no 5xx (both dependencies are up, so a 5xx would blame bad input
// on them); without a valid signature a 4xx and nothing enqueued; with one,
// 200 or 400/413.
func FuzzStripeWebhook(f *testing.F) {
	now := time.Now()
	for _, seed := range []struct {
		body   string
		header string
		mode   uint8
	}{
		{`{"id":"evt_1","object":"event","type":"customer.subscription.updated","api_version":"2025-03-31.basil","created":1700000000,"data":{"object":{"id":"sub_1","customer":"cus_1"}}}`, "", fuzzSigned},
		{`{"id":"evt_2","type":"invoice.payment_failed","created":1700000000,"data":{"object":{"id":"in_1","customer":{"id":"cus_1"}}}}`, "", fuzzSigned},
		{`{"id":"evt_3","type":"charge.refunded","created":1}`, "", fuzzSigned},
		{`{"id":"evt_4","type":"customer.created","created":1,"data":{"object":"\u0000"}}`, "", fuzzSigned},
		{`{"id":"","type":""}`, "", fuzzSigned},
		{`[]`, "", fuzzSigned},
		{`not json`, "", fuzzSigned},
		{`{"id":"evt_5","type":"customer.created","created":-62135596801}`, "", fuzzSigned},
		{`{"id":"evt_6","type":"customer.created","created":1}`, "t=1,v1=00", fuzzHeaderAsGiven},
		{`{"id":"evt_7","type":"customer.created","created":1}`, "t=" + now.Format("20060102") + ",v1=abc,v0=def", fuzzHeaderAsGiven},
		{`{"id":"evt_8","type":"customer.created","created":1}`, "garbage", fuzzHeaderAsGiven},
		{`{"id":"evt_9","type":"customer.created","created":1}`, "", fuzzWrongSecret},
		{`{"id":"evt_10","type":"customer.created","created":1}`, "", fuzzTooOld},
		{`{"id":"evt_test_11","object":"v2.core.event","type":"v1.customer.subscription.updated","created":"2026-11-30T10:00:00.000Z","related_object":{"id":"sub_1","type":"subscription","url":"/v1/subscriptions/sub_1"},"snapshot_event":"evt_1"}`, "", fuzzSigned},
		{`{"id":"evt_test_12","object":"v2.core.event","type":"v1.invoice.payment_failed","created":1700000000}`, "", fuzzSigned},
		{`{"id":"evt_test_13","object":"v2.core.event","type":"v2.core.account.updated","created":"0000-01-01T00:00:00Z"}`, "", fuzzSigned},
		{`{"id":"evt_14","object":"charge","type":"customer.created","created":1,"data":{}}`, "", fuzzSigned},
		{`{"id":"evt_15","type":"customer.created","created":1}`, "t=1,t=2,v1=00", fuzzHeaderAsGiven},
	} {
		f.Add([]byte(seed.body), seed.header, seed.mode)
	}

	store, _ := pgtest.NewStore(f)
	opt, err := queue.RedisOpt(redistest.NewURL(f))
	require.NoError(f, err)
	client := asynq.NewClient(opt)
	f.Cleanup(func() { client.Close() })
	q := &countingQueue{Enqueuer: client}
	srv := &web.Server{
		Store:           store,
		Queue:           q,
		StripeSecrets:   []string{fuzzSecret},
		StripeTolerance: 300 * time.Second,
		Log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	h := srv.Handler()

	f.Fuzz(func(t *testing.T, body []byte, header string, mode uint8) {
		mode %= fuzzModes
		sign := func(secret string, at time.Time) string {
			return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
		}
		switch mode {
		case fuzzSigned:
			header = sign(fuzzSecret, time.Now())
		case fuzzWrongSecret:
			header = sign("whsec_not_ours", time.Now())
		case fuzzTooOld:
			header = sign(fuzzSecret, time.Now().Add(-time.Hour))
		}
		req := httptest.NewRequest(http.MethodPost, "/billing/webhooks/stripe/", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", header)
		rec := httptest.NewRecorder()
		before := q.n.Load()

		h.ServeHTTP(rec, req)

		status := rec.Code
		if status >= 500 {
			t.Fatalf("status %d for bad input (mode %d): %s", status, mode, rec.Body.String())
		}
		if mode != fuzzSigned {
			if status < 400 {
				t.Fatalf("status %d without a valid signature (mode %d): %s", status, mode, rec.Body.String())
			}
			if q.n.Load() != before {
				t.Fatalf("enqueued without a valid signature (mode %d)", mode)
			}
			return
		}
		switch status {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for a signed body: %s", status, rec.Body.String())
		}
		if status != http.StatusOK && q.n.Load() != before {
			t.Fatalf("enqueued although the answer was %d", status)
		}
	})
}
