package email

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/tasks"
)

// worker runs a real Asynq server with the Sender on a private Redis
// database, configured like cmd/worker but with short delays.
type worker struct {
	client    *asynq.Client
	inspector *asynq.Inspector
	svc       *Service
}

func startWorker(t *testing.T, s *Sender) *worker {
	t.Helper()
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	return startWorkerOn(t, s, opt)
}

// startWorkerOn is startWorker on the Redis of opt.
func startWorkerOn(t *testing.T, s *Sender, opt asynq.RedisConnOpt) *worker {
	t.Helper()
	mux := asynq.NewServeMux()
	s.Register(mux)
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: 4,
		Queues:      queue.Weights,
		// Rate limits keep their Retry-After; other retries come back fast.
		RetryDelayFunc: func(n int, err error, task *asynq.Task) time.Duration {
			var ra *queue.RetryAfterError
			if errors.As(err, &ra) {
				return ra.Delay
			}
			return 50 * time.Millisecond
		},
		IsFailure:                queue.IsFailure,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		TaskCheckInterval:        20 * time.Millisecond,
		Logger:                   queue.Logger{L: discardLog()},
		LogLevel:                 asynq.FatalLevel,
	})
	require.NoError(t, srv.Start(mux))
	client := asynq.NewClient(opt)
	inspector := asynq.NewInspector(opt)
	t.Cleanup(func() {
		srv.Shutdown()
		inspector.Close()
		client.Close()
	})
	return &worker{client: client, inspector: inspector, svc: NewService(client, s.store)}
}

// waitStatus waits until the delivery row of key has status.
func waitStatus(t *testing.T, store *postgres.Store, key, status string) postgres.EmailDelivery {
	t.Helper()
	var d postgres.EmailDelivery
	require.Eventually(t, func() bool {
		var err error
		d, err = store.EmailDeliveryByKey(context.Background(), key)
		return err == nil && d.Status == status
	}, 30*time.Second, 20*time.Millisecond, "delivery %s never reached %s (last: %+v)", key, status, d)
	return d
}

func (w *worker) taskInfo(t *testing.T, key string, state asynq.TaskState) *asynq.TaskInfo {
	t.Helper()
	var info *asynq.TaskInfo
	require.Eventually(t, func() bool {
		var err error
		info, err = w.inspector.GetTaskInfo(tasks.QueueDefault, key)
		return err == nil && info.State == state
	}, 30*time.Second, 20*time.Millisecond, "task %s never reached state %v", key, state)
	return info
}

func TestWorkerRetryReusesIdempotencyKey(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.ReplyNext(resendtest.Reply{Status: 500, Message: "boom"}, resendtest.Reply{Status: 503, Message: "busy"})
	s, store := newTestSender(t, fake, nil)
	w := startWorker(t, s)

	id, err := w.svc.SendWelcomeEmail(context.Background(), "owner@example.com", sample(t, TemplateWelcome).(WelcomeData), "welcome/sub_retry")
	require.NoError(t, err)
	assert.Equal(t, "welcome/sub_retry", id)

	d := waitStatus(t, store, "welcome/sub_retry", postgres.EmailSent)
	reqs := fake.Requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		assert.Equal(t, "welcome/sub_retry", r.IdempotencyKey)
		assert.Equal(t, reqs[0].Raw, r.Raw, "a retry sends the identical body, or Resend answers 409")
	}
	assert.Equal(t, 3, d.Attempts)
	delivered := fake.Delivered()
	require.Len(t, delivered, 1, "the two failed attempts delivered nothing")
	assert.Equal(t, delivered[0].ID, d.ProviderMessageID.String)
}

func TestWorkerRateLimitDoesNotBurnRetries(t *testing.T) {
	t.Parallel()
	// Three 429s against a budget of one retry: were they counted, the task
	// would be archived at the second.
	r429 := resendtest.Reply{Status: 429, RetryAfter: "0.1", Name: "rate_limit_exceeded", Message: "Too many requests"}
	fake := resendtest.New(t)
	fake.ReplyNext(r429, r429, r429)
	s, store := newTestSender(t, fake, nil)
	w := startWorker(t, s)

	task, err := tasks.NewEmailSend(welcomePayload(t, "welcome/sub_429", "owner@example.com"))
	require.NoError(t, err)
	_, _, err = queue.Enqueue(context.Background(), w.client, task, asynq.MaxRetry(1))
	require.NoError(t, err)

	waitStatus(t, store, "welcome/sub_429", postgres.EmailSent)
	assert.Equal(t, 4, fake.RequestCount())
	info := w.taskInfo(t, "welcome/sub_429", asynq.TaskStateCompleted)
	assert.Zero(t, info.Retried, "rate-limited attempts are not counted as retries")
}

func TestWorker422ArchivesAtOnce(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.ReplyNext(resendtest.Reply{Status: 422, Name: "validation_error", Message: "Invalid `to` field."})
	s, store := newTestSender(t, fake, nil)
	w := startWorker(t, s)

	_, err := w.svc.SendWelcomeEmail(context.Background(), "owner@example.com", sample(t, TemplateWelcome).(WelcomeData), "welcome/sub_422")
	require.NoError(t, err)

	info := w.taskInfo(t, "welcome/sub_422", asynq.TaskStateArchived)
	assert.Zero(t, info.Retried)
	assert.Contains(t, info.LastErr, "validation_error")
	d := waitStatus(t, store, "welcome/sub_422", postgres.EmailFailed)
	assert.Contains(t, d.LastError.String, "Invalid `to` field.")
	assert.Equal(t, 1, fake.RequestCount())
}

func TestWorkerRetriesExhaustedMarksFailed(t *testing.T) {
	t.Parallel()
	boom := resendtest.Reply{Status: 500, Message: "boom"}
	fake := resendtest.New(t)
	fake.ReplyNext(boom, boom, boom)
	s, store := newTestSender(t, fake, nil)
	w := startWorker(t, s)

	task, err := tasks.NewEmailSend(welcomePayload(t, "welcome/sub_500", "owner@example.com"))
	require.NoError(t, err)
	_, _, err = queue.Enqueue(context.Background(), w.client, task, asynq.MaxRetry(1))
	require.NoError(t, err)

	w.taskInfo(t, "welcome/sub_500", asynq.TaskStateArchived)
	d := waitStatus(t, store, "welcome/sub_500", postgres.EmailFailed)
	assert.Equal(t, 2, d.Attempts)
	assert.Equal(t, 2, fake.RequestCount())
}

func TestWorkerEnqueuedTwiceSendsOnce(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	w := startWorker(t, s)
	ctx := context.Background()
	data := sample(t, TemplateWelcome).(WelcomeData)

	_, err := w.svc.SendWelcomeEmail(ctx, "owner@example.com", data, "welcome/sub_twice")
	require.NoError(t, err)
	waitStatus(t, store, "welcome/sub_twice", postgres.EmailSent)
	_, err = w.svc.SendWelcomeEmail(ctx, "owner@example.com", data, "welcome/sub_twice")
	require.NoError(t, err, "a duplicate key is not an error")

	// Past the TaskID's retention, a new task with the same key still finds
	// the row already sent.
	require.NoError(t, w.inspector.DeleteTask(tasks.QueueDefault, "welcome/sub_twice"))
	_, err = w.svc.SendWelcomeEmail(ctx, "owner@example.com", data, "welcome/sub_twice")
	require.NoError(t, err)
	w.taskInfo(t, "welcome/sub_twice", asynq.TaskStateCompleted)
	assert.Equal(t, 1, fake.RequestCount())
}

func TestServiceRejectsBadInput(t *testing.T) {
	t.Parallel()
	store, _ := newTestStoreOnly(t)
	svc := NewService(nil, store)
	ctx := context.Background()
	_, err := svc.SendTemplateEmail(ctx, "a@example.com", "nope", struct{}{}, "k")
	assert.ErrorIs(t, err, ErrUnknownTemplate)
	// An address that cannot be sent to is not the caller's failure: its
	// own row says why, and nothing is enqueued (the enqueuer is nil).
	_, err = svc.SendWelcomeEmail(ctx, "not an address", WelcomeData{}, "k")
	assert.ErrorIs(t, err, ErrUndeliverable)
	d, err := store.EmailDeliveryByKey(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailFailed, d.Status)
	assert.Contains(t, d.LastError.String, "invalid email address")
	_, err = svc.SendWelcomeEmail(ctx, "a@example.com", WelcomeData{}, "")
	assert.ErrorContains(t, err, "idempotency key is required")
}
