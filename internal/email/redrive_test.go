package email

import (
	"context"
	"strconv"
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

// enqueuerOn returns an Asynq client and inspector on the Redis of url, with
// no worker yet: tasks wait there until the test starts one.
func enqueuerOn(t *testing.T, url string) (*asynq.Client, *asynq.Inspector) {
	t.Helper()
	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	client, inspector := asynq.NewClient(opt), asynq.NewInspector(opt)
	t.Cleanup(func() {
		inspector.Close()
		client.Close()
	})
	return client, inspector
}

// SendTemplateEmail records the row before the task exists, with what the
// task needs; a second call keeps the row as it is.
func TestSendTemplateEmailRecordsTheRowFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := newTestStoreOnly(t)
	url := redistest.NewURL(t)
	client, inspector := enqueuerOn(t, url)
	svc := NewService(client, store)
	data := sample(t, TemplateWelcome).(WelcomeData)

	_, err := svc.SendWelcomeEmail(ctx, "owner@example.com", data, "welcome/sub_row")
	require.NoError(t, err)
	d, err := store.EmailDeliveryByKey(ctx, "welcome/sub_row")
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailQueued, d.Status)
	assert.Equal(t, TemplateWelcome, d.Template)
	assert.Equal(t, "owner@example.com", d.ToEmail)
	_, err = inspector.GetTaskInfo(tasks.QueueDefault, "welcome/sub_row")
	require.NoError(t, err, "the task is enqueued after the row")

	// A row already sent stays sent when the same email is asked for again.
	require.NoError(t, store.MarkEmailSent(ctx, d.ID, "Welcome", "msg_1"))
	_, err = svc.SendWelcomeEmail(ctx, "owner@example.com", data, "welcome/sub_row")
	require.NoError(t, err)
	d, err = store.EmailDeliveryByKey(ctx, "welcome/sub_row")
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailSent, d.Status)
}

// Redis loses a welcome email's task before any worker runs it: the
// re-drive enqueues it again from its row, and it is sent exactly once. A
// re-drive after that finds the row sent and enqueues nothing.
func TestRedriveEmailsSendsATaskRedisLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	url := redistest.NewURL(t)
	client, _ := enqueuerOn(t, url)
	svc := NewService(client, store)
	data := sample(t, TemplateWelcome).(WelcomeData)

	_, err := svc.SendWelcomeEmail(ctx, "owner@example.com", data, "welcome/sub_lost")
	require.NoError(t, err)
	redistest.Flush(t, url)
	assert.Empty(t, redistest.Keys(t, url), "the flush leaves no task")

	// A fresh row is not re-driven yet: its task may simply be waiting.
	r, err := svc.RedriveEmails(ctx, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, RedriveResult{}, r)

	r, err = svc.RedriveEmails(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, RedriveResult{Enqueued: 1}, r)

	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	startWorkerOn(t, s, opt)
	d := waitStatus(t, store, "welcome/sub_lost", postgres.EmailSent)

	r, err = svc.RedriveEmails(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, RedriveResult{}, r, "a sent row is never re-driven")

	// Even with the completed task gone from Redis too, the sent row is
	// left alone.
	redistest.Flush(t, url)
	r, err = svc.RedriveEmails(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, RedriveResult{}, r)

	assert.Equal(t, 1, fake.RequestCount(), "one call to Resend")
	sent := fake.Delivered()
	require.Len(t, sent, 1, "sent exactly once")
	assert.Equal(t, "welcome/sub_lost", sent[0].Key)
	assert.Equal(t, []string{"owner@example.com"}, sent[0].To)
	assert.Equal(t, d.ProviderMessageID.String, sent[0].ID)
}

// A re-drive while the task is still in Redis adds nothing: the TaskID
// conflict counts it present, and the email goes out once.
func TestRedriveEmailsLeavesATaskStillQueued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	url := redistest.NewURL(t)
	client, inspector := enqueuerOn(t, url)
	svc := NewService(client, store)
	data := sample(t, TemplateWelcome).(WelcomeData)

	_, err := svc.SendWelcomeEmail(ctx, "owner@example.com", data, "welcome/sub_present")
	require.NoError(t, err)
	for range 2 {
		r, err := svc.RedriveEmails(ctx, 0)
		require.NoError(t, err)
		assert.Equal(t, RedriveResult{Present: 1}, r)
	}
	pending, err := inspector.ListPendingTasks(tasks.QueueDefault)
	require.NoError(t, err)
	assert.Len(t, pending, 1, "one task, not two")

	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	w := startWorkerOn(t, s, opt)
	waitStatus(t, store, "welcome/sub_present", postgres.EmailSent)
	w.taskInfo(t, "welcome/sub_present", asynq.TaskStateCompleted)
	assert.Equal(t, 1, fake.RequestCount())
	assert.Equal(t, 1, fake.DeliveredCount())
}

// Only single emails still queued are re-driven: not a failed one, not one
// staged in a batch (RedriveBatches owns those), and not a row recorded
// before rows kept their data, which is counted and left as it is.
func TestRedriveEmailsOnlyQueuedSingleEmailsWithData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := newTestStoreOnly(t)
	url := redistest.NewURL(t)
	client, _ := enqueuerOn(t, url)
	svc := NewService(client, store)

	// A row without data, as the worker wrote it before the service
	// recorded rows first.
	_, err := store.StartEmailDelivery(ctx, "welcome/sub_legacy", TemplateWelcome, "legacy@example.com")
	require.NoError(t, err)
	// An address the service refuses: its row is failed at once.
	_, err = svc.SendWelcomeEmail(ctx, "not an address", WelcomeData{}, "welcome/sub_refused")
	require.ErrorIs(t, err, ErrUndeliverable)
	// A fan-out's email, staged in a batch.
	_, err = svc.SendBatch(ctx, TemplateOverdueAlert, []Item{{
		To: "tech@example.com", Key: "overdue/1/1", Data: sample(t, TemplateOverdueAlert),
	}})
	require.NoError(t, err)
	redistest.Flush(t, url)

	r, err := svc.RedriveEmails(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, RedriveResult{Legacy: 1}, r)
	assert.Empty(t, redistest.Keys(t, url), "nothing enqueued")
	d, err := store.EmailDeliveryByKey(ctx, "welcome/sub_legacy")
	require.NoError(t, err)
	assert.Equal(t, postgres.EmailQueued, d.Status, "the legacy row is left as it is")
}

// The re-drive pages by id: more queued emails than one page are all
// enqueued again in one call.
func TestRedriveEmailsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := newTestStoreOnly(t)
	url := redistest.NewURL(t)
	client, _ := enqueuerOn(t, url)
	svc := NewService(client, store)
	data := sample(t, TemplatePaymentFailed)

	n := emailRedrivePage + 3
	for i := range n {
		_, err := svc.SendTemplateEmail(ctx, "billing@example.com", TemplatePaymentFailed, data, "payment_failed/in_"+strconv.Itoa(i)+"/1/billing@example.com")
		require.NoError(t, err)
	}
	redistest.Flush(t, url)
	r, err := svc.RedriveEmails(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, RedriveResult{Enqueued: n}, r)
	r, err = svc.RedriveEmails(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, RedriveResult{Present: n}, r)
}
