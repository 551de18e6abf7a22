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
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/tasks"
)

const testFrom = "CleanTrack <notifications@cleantrack.example>"

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestSender builds a Sender against fake (nil: outbox mode) on a fresh
// database.
func newTestSender(t *testing.T, fake *resendtest.Server, rdb redis.UniversalClient, mods ...func(*Options)) (*Sender, *postgres.Store) {
	t.Helper()
	store, _ := pgtest.NewStore(t)
	return newSenderOn(t, store, fake, rdb, mods...), store
}

// newSenderOn builds a Sender on an existing store.
func newSenderOn(t *testing.T, store *postgres.Store, fake *resendtest.Server, rdb redis.UniversalClient, mods ...func(*Options)) *Sender {
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
	t.Parallel()
	ctx := context.Background()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	p := welcomePayload(t, "welcome/sub_1", "owner@example.com")

	res, err := s.Deliver(ctx, p, false)
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailSent, res.Status)
	delivered := fake.Delivered()
	require.Len(t, delivered, 1)
	assert.Equal(t, delivered[0].ID, res.MessageID)

	// The same task run again (a redelivery after a crash) sends nothing.
	res, err = s.Deliver(ctx, p, false)
	require.NoError(t, err)
	assert.True(t, res.AlreadyDone)
	require.Equal(t, 1, fake.RequestCount())

	req := fake.Requests()[0]
	assert.Equal(t, "POST /emails", req.Method+" "+req.Path)
	assert.Equal(t, "welcome/sub_1", req.IdempotencyKey)
	assert.Equal(t, "Bearer re_test_key", req.Header.Get("Authorization"))
	assert.Equal(t, testFrom, req.Email().From)
	assert.Equal(t, []string{"owner@example.com"}, req.Email().To)
	assert.Contains(t, req.Email().Subject, "Welcome to CleanTrack")
	assert.Contains(t, req.Email().Html, "Demo Hospital")
	assert.Contains(t, req.Email().Text, "John Doe")

	d := delivery(t, store, "welcome/sub_1")
	assert.Equal(t, postgres.EmailSent, d.Status)
	assert.Equal(t, delivered[0].ID, d.ProviderMessageID.String)
	assert.Equal(t, 1, d.Attempts)
	assert.Equal(t, req.Email().Subject, d.Subject)
	assert.True(t, d.SentAt.Valid)
}

func TestDeliverBaseURLWithPathPrefix(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, _ := newTestSender(t, fake, nil, func(c *Options) { c.BaseURL = strings.TrimSuffix(fake.URL(), "/") + "/resend" })
	_, err := s.Deliver(context.Background(), welcomePayload(t, "welcome/sub_prefix", "a@example.com"), false)
	require.NoError(t, err)
	require.Equal(t, 1, fake.RequestCount())
	req := fake.Requests()[0]
	assert.Equal(t, "POST /resend/emails", req.Method+" "+req.Path, "a base URL without its trailing slash keeps its path")
}

func TestDeliverSuppressedSkipsCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	require.NoError(t, store.SuppressEmail(ctx, "Bounced@Example.com", "bounce: Permanent"))

	res, err := s.Deliver(ctx, welcomePayload(t, "welcome/sub_2", "bounced@example.com"), false)
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailSuppressed, res.Status)
	assert.Zero(t, fake.RequestCount(), "no API call for a suppressed address")
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
	assert.Zero(t, fake.RequestCount())
}

func TestDeliverOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, store := newTestSender(t, nil, nil)
	require.True(t, s.Outbox())

	res, err := s.Deliver(ctx, welcomePayload(t, "welcome/sub_3", "owner@example.com"), false)
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailOutbox, res.Status)
	require.NotEmpty(t, res.OutboxPath)
	assert.Contains(t, filepath.Base(res.OutboxPath), "_welcome_sub_3_", res.OutboxPath)

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
	t.Parallel()
	tests := []struct {
		name       string
		reply      resendtest.Reply
		final      bool
		skipRetry  bool
		isFailure  bool
		minDelay   time.Duration // for rate limits, the delay asked of RetryDelay
		wantStatus string
		wantError  string
	}{
		{name: "429 retry after", reply: resendtest.Reply{Status: 429, RetryAfter: "3", Name: "rate_limit_exceeded", Message: "Too many requests"},
			isFailure: false, minDelay: 3 * time.Second, wantStatus: postgres.EmailQueued, wantError: "429"},
		{name: "429 daily quota", reply: resendtest.Reply{Status: 429, RetryAfter: "1", Name: "daily_quota_exceeded", Message: "You have reached your daily email sending quota."},
			isFailure: false, minDelay: time.Hour, wantStatus: postgres.EmailQueued, wantError: "daily"},
		{name: "429 monthly quota", reply: resendtest.Reply{Status: 429, Name: "monthly_quota_exceeded", Message: "You have reached your monthly email sending quota."},
			isFailure: false, minDelay: 6 * time.Hour, wantStatus: postgres.EmailQueued, wantError: "monthly"},
		{name: "500", reply: resendtest.Reply{Status: 500, Name: "internal_server_error", Message: "boom"},
			isFailure: true, wantStatus: postgres.EmailQueued, wantError: "resend answered 500 internal_server_error: boom"},
		{name: "503", reply: resendtest.Reply{Status: 503, Message: "unavailable"},
			isFailure: true, wantStatus: postgres.EmailQueued, wantError: "503"},
		{name: "409 concurrent", reply: resendtest.Reply{Status: 409, Name: "concurrent_idempotent_requests", Message: "Same idempotency key used while original request is still in progress."},
			isFailure: true, wantStatus: postgres.EmailQueued, wantError: "concurrent_idempotent_requests"},
		{name: "409 invalid idempotent", reply: resendtest.Reply{Status: 409, Name: "invalid_idempotent_request", Message: "Same idempotency key used with a different request payload."},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "invalid_idempotent_request"},
		{name: "422 validation", reply: resendtest.Reply{Status: 422, Name: "validation_error", Message: "Invalid `to` field."},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "422 validation_error: Invalid `to` field."},
		{name: "400", reply: resendtest.Reply{Status: 400, Name: "validation_error", Message: "bad"},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "400"},
		{name: "401", reply: resendtest.Reply{Status: 401, Name: "missing_api_key", Message: "Missing API key"},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "401"},
		{name: "403 unverified domain", reply: resendtest.Reply{Status: 403, Name: "validation_error", Message: "The cleantrack.example domain is not verified."},
			skipRetry: true, isFailure: true, wantStatus: postgres.EmailFailed, wantError: "not verified"},
		{name: "500 on the last retry", reply: resendtest.Reply{Status: 500, Message: "boom"}, final: true,
			isFailure: true, wantStatus: postgres.EmailFailed, wantError: "500"},
	}
	store, _ := pgtest.NewStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := resendtest.New(t)
			fake.ReplyNext(tt.reply)
			s := newSenderOn(t, store, fake, nil)
			_, err := s.Deliver(context.Background(), welcomePayload(t, "k/"+tt.name, "owner@example.com"), tt.final)
			require.Error(t, err)
			assert.Equal(t, tt.skipRetry, errors.Is(err, asynq.SkipRetry), "SkipRetry")
			assert.Equal(t, tt.isFailure, queue.IsFailure(err), "IsFailure")
			if tt.minDelay > 0 {
				assert.GreaterOrEqual(t, queue.RetryDelay(0, err, nil), tt.minDelay)
			}
			assert.Equal(t, 1, fake.RequestCount())
			d := delivery(t, store, "k/"+tt.name)
			assert.Equal(t, tt.wantStatus, d.Status)
			assert.Equal(t, 1, d.Attempts)
			assert.Contains(t, d.LastError.String, tt.wantError)
		})
	}
}

func TestDeliverNetworkErrorRetries(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	fake.Close()
	_, err := s.Deliver(context.Background(), welcomePayload(t, "k/down", "owner@example.com"), false)
	require.Error(t, err)
	assert.False(t, errors.Is(err, asynq.SkipRetry))
	assert.True(t, queue.IsFailure(err))
	d := delivery(t, store, "k/down")
	assert.Equal(t, postgres.EmailQueued, d.Status)
	assert.Contains(t, d.LastError.String, "resend request failed")
}

func TestDeliverMissingFieldFailsWithoutCall(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	d := sample(t, TemplateWelcome).(WelcomeData)
	d.PlanName = ""
	raw, err := json.Marshal(d)
	require.NoError(t, err)

	_, err = s.Deliver(context.Background(), tasks.EmailSendPayload{Key: "welcome/bad", Template: TemplateWelcome, To: "a@example.com", Data: raw}, false)
	require.ErrorIs(t, err, asynq.SkipRetry)
	assert.Zero(t, fake.RequestCount())
	row := delivery(t, store, "welcome/bad")
	assert.Equal(t, postgres.EmailFailed, row.Status)
	assert.Contains(t, row.LastError.String, "plan_name")
}

func TestDeliverKeyReusedForAnotherEmail(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	ctx := context.Background()
	_, err := s.Deliver(ctx, welcomePayload(t, "shared", "first@example.com"), false)
	require.NoError(t, err)
	_, err = s.Deliver(ctx, welcomePayload(t, "shared", "second@example.com"), false)
	require.ErrorIs(t, err, asynq.SkipRetry)
	assert.Equal(t, 1, fake.RequestCount())
	assert.Equal(t, postgres.EmailSent, delivery(t, store, "shared").Status)
}

func TestDeliverSharedRateLimit(t *testing.T) {
	t.Parallel()
	rdb, _ := redistest.NewClient(t)
	fake := resendtest.New(t)
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
	assert.Equal(t, 1, fake.RequestCount(), "the limited send made no request")
	d := delivery(t, store, "k/second")
	assert.Equal(t, postgres.EmailQueued, d.Status)
	assert.Zero(t, d.Attempts, "no provider call, no attempt")
}

func TestDeliverWaitsBrieflyForItsTurn(t *testing.T) {
	t.Parallel()
	rdb, _ := redistest.NewClient(t)
	fake := resendtest.New(t)
	s, _ := newTestSender(t, fake, rdb, func(c *Options) { c.RatePerSecond, c.MaxRateWait = 1, 5*time.Second })
	ctx := context.Background()
	for _, k := range []string{"k/1", "k/2"} {
		_, err := s.Deliver(ctx, welcomePayload(t, k, "a@example.com"), false)
		require.NoError(t, err, "within MaxRateWait the send waits instead of giving the task back")
	}
	assert.Equal(t, 2, fake.RequestCount())
}

func TestProcessTaskMalformedPayload(t *testing.T) {
	t.Parallel()
	s, _ := newTestSender(t, nil, nil)
	err := s.ProcessTask(context.Background(), asynq.NewTask(tasks.TypeEmailSend, []byte(`{"key":`)))
	assert.ErrorIs(t, err, asynq.SkipRetry)
}

func TestClassifyUnknownStatus(t *testing.T) {
	t.Parallel()
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
	r429 := resendtest.Reply{Status: 429, RetryAfter: "1", Message: "Too many requests"}
	fake := resendtest.New(t)
	fake.ReplyNext(resendtest.Reply{Status: 500, Message: "boom"}, r429, resendtest.Reply{Status: 422, Message: "bad"})
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
