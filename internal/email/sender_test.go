package email

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/tasks"
)

const testFrom = "CleanTrack <notifications@cleantrack.example>"

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestSender builds a Sender against fake (nil: outbox mode) on a fresh
// database.
func newTestSender(t *testing.T, fake *fakeResend, rdb redis.UniversalClient, mods ...func(*Options)) (*Sender, *postgres.Store) {
	t.Helper()
	store, _ := pgtest.NewStore(t)
	return newSenderOn(t, store, fake, rdb, mods...), store
}

// newSenderOn builds a Sender on an existing store.
func newSenderOn(t *testing.T, store *postgres.Store, fake *fakeResend, rdb redis.UniversalClient, mods ...func(*Options)) *Sender {
	t.Helper()
	cfg := Options{From: testFrom, OutboxDir: t.TempDir(), RatePerSecond: 100}
	if fake != nil {
		cfg.APIKey, cfg.BaseURL = "re_test_key", fake.URL()
	}
	for _, m := range mods {
		m(&cfg)
	}
	s, err := New(store, rdb, discardLog(), cfg)
	require.NoError(t, err)
	return s
}

func welcomePayload(t *testing.T, key, to string) tasks.EmailSendPayload {
	t.Helper()
	raw, err := json.Marshal(sample(t, TemplateWelcome))
	require.NoError(t, err)
	return tasks.EmailSendPayload{Key: key, Template: TemplateWelcome, To: to, Data: raw}
}

func delivery(t *testing.T, store *postgres.Store, key string) postgres.EmailDelivery {
	t.Helper()
	d, err := store.EmailDeliveryByKey(context.Background(), key)
	require.NoError(t, err)
	return d
}

func TestDeliverSendsOnce(t *testing.T) {
	ctx := context.Background()
	fake := newFakeResend(t)
	s, store := newTestSender(t, fake, nil)
	p := welcomePayload(t, "welcome/sub_1", "owner@example.com")

	res, err := s.Deliver(ctx, p, false)
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailSent, res.Status)
	assert.Equal(t, "msg_1", res.MessageID)

	// The same task run again (a redelivery after a crash) sends nothing.
	res, err = s.Deliver(ctx, p, false)
	require.NoError(t, err)
	assert.True(t, res.AlreadyDone)
	require.Equal(t, 1, fake.Count())

	req := fake.Requests()[0]
	assert.Equal(t, "POST /emails", req.Path)
	assert.Equal(t, "welcome/sub_1", req.IdempotencyKey)
	assert.Equal(t, "Bearer re_test_key", req.Authorization)
	assert.Equal(t, testFrom, req.Body.From)
	assert.Equal(t, []string{"owner@example.com"}, req.Body.To)
	assert.Contains(t, req.Body.Subject, "Welcome to CleanTrack")
	assert.Contains(t, req.Body.Html, "Demo Hospital")
	assert.Contains(t, req.Body.Text, "John Doe")

	d := delivery(t, store, "welcome/sub_1")
	assert.Equal(t, postgres.EmailSent, d.Status)
	assert.Equal(t, "msg_1", d.ProviderMessageID.String)
	assert.Equal(t, 1, d.Attempts)
	assert.Equal(t, req.Body.Subject, d.Subject)
	assert.True(t, d.SentAt.Valid)
}

func TestDeliverBaseURLWithPathPrefix(t *testing.T) {
	fake := newFakeResend(t)
	s, _ := newTestSender(t, fake, nil, func(c *Options) { c.BaseURL = fake.srv.URL + "/resend" })
	_, err := s.Deliver(context.Background(), welcomePayload(t, "welcome/sub_prefix", "a@example.com"), false)
	require.NoError(t, err)
	require.Equal(t, 1, fake.Count())
	assert.Equal(t, "POST /resend/emails", fake.Requests()[0].Path, "a base URL without its trailing slash keeps its path")
}

func TestDeliverSuppressedSkipsCall(t *testing.T) {
	ctx := context.Background()
	fake := newFakeResend(t)
	s, store := newTestSender(t, fake, nil)
	require.NoError(t, store.SuppressEmail(ctx, "Bounced@Example.com", "bounce: Permanent"))

	res, err := s.Deliver(ctx, welcomePayload(t, "welcome/sub_2", "bounced@example.com"), false)
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailSuppressed, res.Status)
	assert.Zero(t, fake.Count(), "no API call for a suppressed address")
	d := delivery(t, store, "welcome/sub_2")
	assert.Equal(t, postgres.EmailSuppressed, d.Status)
	assert.Contains(t, d.LastError.String, "bounce: Permanent")

	// Unsuppressing does not resend an email already settled as suppressed.
	removed, err := store.UnsuppressEmail(ctx, "bounced@example.com")
	require.NoError(t, err)
	assert.True(t, removed)
	res, err = s.Deliver(ctx, welcomePayload(t, "welcome/sub_2", "bounced@example.com"), false)
	require.NoError(t, err)
	assert.True(t, res.AlreadyDone)
	assert.Zero(t, fake.Count())
}

func TestDeliverOutbox(t *testing.T) {
	ctx := context.Background()
	s, store := newTestSender(t, nil, nil)
	require.True(t, s.Outbox())

	res, err := s.Deliver(ctx, welcomePayload(t, "welcome/sub_3", "owner@example.com"), false)
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailOutbox, res.Status)
	require.NotEmpty(t, res.OutboxPath)
	assert.True(t, strings.HasSuffix(res.OutboxPath, "_welcome_sub_3.html"), res.OutboxPath)

	html, err := os.ReadFile(res.OutboxPath)
	require.NoError(t, err)
	assert.Contains(t, string(html), "<!DOCTYPE html>")
	assert.Contains(t, string(html), "Demo Hospital")
	text, err := os.ReadFile(strings.TrimSuffix(res.OutboxPath, ".html") + ".txt")
	require.NoError(t, err)
	assert.Contains(t, string(text), "To: owner@example.com\n")
	assert.Contains(t, string(text), "Subject: Welcome to CleanTrack, Demo Hospital\n")
	assert.Contains(t, string(text), "Idempotency-Key: welcome/sub_3\n")

	assert.Equal(t, postgres.EmailOutbox, delivery(t, store, "welcome/sub_3").Status)

	// A second run writes nothing more.
	_, err = s.Deliver(ctx, welcomePayload(t, "welcome/sub_3", "owner@example.com"), false)
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(filepath.Dir(res.OutboxPath), "*"))
	require.NoError(t, err)
	assert.Len(t, files, 2)
}

func TestDeliverFailureClasses(t *testing.T) {
	tests := []struct {
		name       string
		reply      fakeReply
		final      bool
		skipRetry  bool
		isFailure  bool
		minDelay   time.Duration // for rate limits, the delay asked of RetryDelay
		wantStatus string
		wantError  string
	}{
		{name: "429 retry after", reply: fakeReply{status: 429, retryAfter: "3", name: "rate_limit_exceeded", message: "Too many requests"},
			isFailure: false, minDelay: 3 * time.Second, wantStatus: postgres.EmailQueued, wantError: "429"},
		{name: "429 daily quota", reply: fakeReply{status: 429, retryAfter: "1", name: "daily_quota_exceeded", message: "You have reached your daily email sending quota."},
			isFailure: false, minDelay: time.Hour, wantStatus: postgres.EmailQueued, wantError: "daily"},
		{name: "429 monthly quota", reply: fakeReply{status: 429, name: "monthly_quota_exceeded", message: "You have reached your monthly email sending quota."},
			isFailure: false, minDelay: 6 * time.Hour, wantStatus: postgres.EmailQueued, wantError: "monthly"},
		{name: "500", reply: fakeReply{status: 500, name: "internal_server_error", message: "boom"},
			isFailure: true, wantStatus: postgres.EmailQueued, wantError: "resend answered 500 internal_server_error: boom"},
		{name: "503", reply: fakeReply{status: 503, message: "unavailable"},
			isFailure: true, wantStatus: postgres.EmailQueued, wantError: "503"},
		{name: "409 concurrent", reply: fakeReply{status: 409, name: "concurrent_idempotent_requests", message: "Same idempotency key used while original request is still in progress."},
			isFailure: true, wantStatus: postgres.EmailQueued, wantError: "concurrent_idempotent_requests"},
		{name: "409 invalid idempotent", reply: fakeReply{status: 409, name: "invalid_idempotent_request", message: "Same idempotency key used with a different request payload."},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "invalid_idempotent_request"},
		{name: "422 validation", reply: fakeReply{status: 422, name: "validation_error", message: "Invalid `to` field."},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "422 validation_error: Invalid `to` field."},
		{name: "400", reply: fakeReply{status: 400, name: "validation_error", message: "bad"},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "400"},
		{name: "401", reply: fakeReply{status: 401, name: "missing_api_key", message: "Missing API key"},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "401"},
		{name: "403 unverified domain", reply: fakeReply{status: 403, name: "validation_error", message: "The cleantrack.example domain is not verified."},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "not verified"},
		{name: "500 on the last retry", reply: fakeReply{status: 500, message: "boom"}, final: true,
			isFailure: true, wantStatus: postgres.EmailFailed, wantError: "500"},
	}
	store, _ := pgtest.NewStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeResend(t, tt.reply)
			s := newSenderOn(t, store, fake, nil)
			_, err := s.Deliver(context.Background(), welcomePayload(t, "k/"+tt.name, "owner@example.com"), tt.final)
			require.Error(t, err)
			assert.Equal(t, tt.skipRetry, errors.Is(err, asynq.SkipRetry), "SkipRetry")
			assert.Equal(t, tt.isFailure, queue.IsFailure(err), "IsFailure")
			if tt.minDelay > 0 {
				assert.GreaterOrEqual(t, queue.RetryDelay(0, err, nil), tt.minDelay)
			}
			assert.Equal(t, 1, fake.Count())
			d := delivery(t, store, "k/"+tt.name)
			assert.Equal(t, tt.wantStatus, d.Status)
			assert.Equal(t, 1, d.Attempts)
			assert.Contains(t, d.LastError.String, tt.wantError)
		})
	}
}

func TestDeliverNetworkErrorRetries(t *testing.T) {
	fake := newFakeResend(t)
	s, store := newTestSender(t, fake, nil)
	fake.srv.Close()
	_, err := s.Deliver(context.Background(), welcomePayload(t, "k/down", "owner@example.com"), false)
	require.Error(t, err)
	assert.False(t, errors.Is(err, asynq.SkipRetry))
	assert.True(t, queue.IsFailure(err))
	d := delivery(t, store, "k/down")
	assert.Equal(t, postgres.EmailQueued, d.Status)
	assert.Contains(t, d.LastError.String, "resend request failed")
}

func TestDeliverMissingFieldFailsWithoutCall(t *testing.T) {
	fake := newFakeResend(t)
	s, store := newTestSender(t, fake, nil)
	d := sample(t, TemplateWelcome).(WelcomeData)
	d.PlanName = ""
	raw, err := json.Marshal(d)
	require.NoError(t, err)

	_, err = s.Deliver(context.Background(), tasks.EmailSendPayload{Key: "welcome/bad", Template: TemplateWelcome, To: "a@example.com", Data: raw}, false)
	require.ErrorIs(t, err, asynq.SkipRetry)
	assert.Zero(t, fake.Count())
	row := delivery(t, store, "welcome/bad")
	assert.Equal(t, postgres.EmailFailed, row.Status)
	assert.Contains(t, row.LastError.String, "plan_name")
}

func TestDeliverKeyReusedForAnotherEmail(t *testing.T) {
	fake := newFakeResend(t)
	s, store := newTestSender(t, fake, nil)
	ctx := context.Background()
	_, err := s.Deliver(ctx, welcomePayload(t, "shared", "first@example.com"), false)
	require.NoError(t, err)
	_, err = s.Deliver(ctx, welcomePayload(t, "shared", "second@example.com"), false)
	require.ErrorIs(t, err, asynq.SkipRetry)
	assert.Equal(t, 1, fake.Count())
	assert.Equal(t, postgres.EmailSent, delivery(t, store, "shared").Status)
}

func TestDeliverSharedRateLimit(t *testing.T) {
	rdb, _ := redistest.NewClient(t)
	fake := newFakeResend(t)
	slow := func(c *Options) { c.RatePerSecond, c.MaxRateWait = 1, time.Millisecond }
	// Two senders stand for two worker processes sharing one Redis.
	a, _ := newTestSender(t, fake, rdb, slow)
	b, store := newTestSender(t, fake, rdb, slow)
	ctx := context.Background()

	_, err := a.Deliver(ctx, welcomePayload(t, "k/first", "a@example.com"), false)
	require.NoError(t, err)
	_, err = b.Deliver(ctx, welcomePayload(t, "k/second", "b@example.com"), false)
	require.Error(t, err)
	assert.False(t, queue.IsFailure(err), "a local rate limit is not a failure")
	delay := queue.RetryDelay(0, err, nil)
	assert.Greater(t, delay, time.Duration(0))
	assert.LessOrEqual(t, delay, 2*time.Second)
	assert.Equal(t, 1, fake.Count(), "the limited send made no request")
	d := delivery(t, store, "k/second")
	assert.Equal(t, postgres.EmailQueued, d.Status)
	assert.Zero(t, d.Attempts, "no provider call, no attempt")
}

func TestDeliverWaitsBrieflyForItsTurn(t *testing.T) {
	rdb, _ := redistest.NewClient(t)
	fake := newFakeResend(t)
	s, _ := newTestSender(t, fake, rdb, func(c *Options) { c.RatePerSecond, c.MaxRateWait = 1, 5*time.Second })
	ctx := context.Background()
	for _, k := range []string{"k/1", "k/2"} {
		_, err := s.Deliver(ctx, welcomePayload(t, k, "a@example.com"), false)
		require.NoError(t, err, "within MaxRateWait the send waits instead of giving the task back")
	}
	assert.Equal(t, 2, fake.Count())
}

func TestProcessTaskMalformedPayload(t *testing.T) {
	s, _ := newTestSender(t, nil, nil)
	err := s.ProcessTask(context.Background(), asynq.NewTask(tasks.TypeEmailSend, []byte(`{"key":`)))
	assert.ErrorIs(t, err, asynq.SkipRetry)
}

func TestClassifyUnknownStatus(t *testing.T) {
	c, _ := classify(apiResponse{status: http.StatusNotFound}, errors.New("[ERROR]: not found"))
	assert.Equal(t, classPermanent, c)
	c, _ = classify(apiResponse{status: http.StatusRequestTimeout}, errors.New("[ERROR]: timeout"))
	assert.Equal(t, classRetry, c)
}

func newTestStoreOnly(t *testing.T) (*postgres.Store, string) {
	t.Helper()
	return pgtest.NewStore(t)
}

func TestDeliverCountsOutcomes(t *testing.T) {
	count := func(outcome string) float64 {
		var m dto.Metric
		require.NoError(t, metrics.EmailsTotal.WithLabelValues(TemplateWelcome, outcome).Write(&m))
		return m.GetCounter().GetValue()
	}
	ctx := context.Background()
	r429 := fakeReply{status: 429, retryAfter: "1", message: "Too many requests"}
	fake := newFakeResend(t, fakeReply{status: 500, message: "boom"}, r429, fakeReply{status: 422, message: "bad"})
	s, store := newTestSender(t, fake, nil)
	outbox := newSenderOn(t, store, nil, nil)
	require.NoError(t, store.SuppressEmail(ctx, "gone@example.com", "complaint"))

	steps := []struct {
		outcome string
		run     func() error
	}{
		{OutcomeRetried, func() error { _, err := s.Deliver(ctx, welcomePayload(t, "m/1", "a@example.com"), false); return err }},
		{OutcomeRateLimited, func() error { _, err := s.Deliver(ctx, welcomePayload(t, "m/1", "a@example.com"), false); return err }},
		{OutcomeFailed, func() error { _, err := s.Deliver(ctx, welcomePayload(t, "m/1", "a@example.com"), false); return err }},
		{OutcomeSent, func() error { _, err := s.Deliver(ctx, welcomePayload(t, "m/2", "a@example.com"), false); return err }},
		{OutcomeSuppressed, func() error {
			_, err := s.Deliver(ctx, welcomePayload(t, "m/3", "gone@example.com"), false)
			return err
		}},
		{OutcomeOutbox, func() error {
			_, err := outbox.Deliver(ctx, welcomePayload(t, "m/4", "a@example.com"), false)
			return err
		}},
	}
	for _, st := range steps {
		before := count(st.outcome)
		_ = st.run()
		assert.Equal(t, before+1, count(st.outcome), st.outcome)
	}
}
