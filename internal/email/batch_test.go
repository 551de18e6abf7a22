package email

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/tasks"
)

// overdueItems are n overdue alerts for n recipients, keys <prefix>/<i>.
func overdueItems(t *testing.T, prefix string, n int) []Item {
	t.Helper()
	data := sample(t, TemplateOverdueAlert)
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{To: fmt.Sprintf("user-%d@example.com", i), Key: fmt.Sprintf("%s/%d", prefix, i), Data: data}
	}
	return items
}

// batchWorld is a Sender behind a real Asynq worker, on a fresh database,
// pointed at fake (nil: the outbox).
func batchWorld(t *testing.T, fake *resendtest.Server, rdb redis.UniversalClient, mods ...func(*Options)) (*worker, *postgres.Store, *Sender) {
	t.Helper()
	s, store := newTestSender(t, fake, rdb, mods...)
	return startWorker(t, s), store, s
}

func statuses(t *testing.T, store *postgres.Store, prefix string) map[string]int {
	t.Helper()
	var rows []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	require.NoError(t, store.DB.Select(&rows, `SELECT status, count(*) AS n FROM email_deliveries WHERE idempotency_key LIKE $1 || '/%' GROUP BY status`, prefix))
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out
}

func waitStatuses(t *testing.T, store *postgres.Store, prefix string, want map[string]int) {
	t.Helper()
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, statuses(t, store, prefix)) },
		20*time.Second, 20*time.Millisecond, "want %v", want)
}

// 250 emails go out in three requests of at most 100, each email once, with
// its own row, key and Resend id; staging them again sends nothing.
func TestBatchSendsAFanOutInRequestsOfAHundred(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	w, store, _ := batchWorld(t, fake, nil)
	ctx := context.Background()
	items := overdueItems(t, "overdue", 250)

	r, err := w.svc.SendBatch(ctx, TemplateOverdueAlert, items)
	require.NoError(t, err)
	assert.Equal(t, BatchResult{Batches: 3}, r)
	waitStatuses(t, store, "overdue", map[string]int{postgres.EmailSent: 250})

	reqs := fake.Requests()
	require.Len(t, reqs, 3)
	var sizes []int
	for _, req := range reqs {
		assert.True(t, req.Batch)
		assert.Equal(t, resendtest.Permissive, req.BatchValidation)
		assert.LessOrEqual(t, len(req.IdempotencyKey), 256)
		sizes = append(sizes, len(req.Emails))
	}
	assert.ElementsMatch(t, []int{100, 100, 50}, sizes)
	byID := map[string]string{}
	for _, e := range fake.Delivered() {
		byID[e.ID] = e.To[0]
	}
	require.Len(t, byID, 250)
	for i, it := range items {
		if i%50 != 0 {
			continue
		}
		d := delivery(t, store, it.Key)
		assert.Equal(t, it.To, byID[d.ProviderMessageID.String], "row %s has the id Resend gave its own email", it.Key)
		assert.Equal(t, 1, d.Attempts)
	}

	r, err = w.svc.SendBatch(ctx, TemplateOverdueAlert, items)
	require.NoError(t, err)
	assert.Zero(t, r.Batches, "every key is staged already")
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, 3, fake.RequestCount())
}

// A batch answered 500 is retried under the same Idempotency-Key with the
// same body, and every member goes out once.
func TestBatchRetriedAfterA500ReusesItsKeyAndBody(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.ReplyNext(resendtest.Reply{Status: http.StatusInternalServerError})
	w, store, _ := batchWorld(t, fake, nil)
	_, err := w.svc.SendBatch(context.Background(), TemplateOverdueAlert, overdueItems(t, "retry", 5))
	require.NoError(t, err)
	waitStatuses(t, store, "retry", map[string]int{postgres.EmailSent: 5})

	reqs := fake.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, 500, reqs[0].Status)
	assert.Equal(t, 200, reqs[1].Status)
	assert.Equal(t, reqs[0].IdempotencyKey, reqs[1].IdempotencyKey)
	assert.JSONEq(t, string(reqs[0].Raw), string(reqs[1].Raw))
	assert.Equal(t, 5, fake.DeliveredCount())
	d := delivery(t, store, "retry/0")
	assert.Equal(t, 2, d.Attempts)
}

// When the first answer is lost after Resend took the batch, the retry gets
// the first answer back: nothing is sent twice.
func TestBatchRetriedAfterALostAnswerSendsNothingTwice(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.SetDelay(500 * time.Millisecond)
	_, store, s := batchWorld(t, fake, nil, func(o *Options) { o.HTTPTimeout = 100 * time.Millisecond })
	ctx := context.Background()
	refs, err := store.StageEmails(ctx, TemplateOverdueAlert, stagedOf(t, overdueItems(t, "lost", 3)), MaxBatch)
	require.NoError(t, err)
	require.Len(t, refs, 1)

	_, err = s.DeliverBatch(ctx, refs[0].ID, false)
	require.Error(t, err, "the client gave up before the answer")
	require.Eventually(t, func() bool { return fake.DeliveredCount() == 3 && fake.InFlight() == 0 }, 5*time.Second, 10*time.Millisecond)
	fake.SetDelay(0)
	rep, err := s.DeliverBatch(ctx, refs[0].ID, false)
	require.NoError(t, err)
	assert.Equal(t, 3, rep.Sent)
	assert.Equal(t, 3, fake.DeliveredCount(), "the retry was answered from the key")
	assert.True(t, fake.Requests()[1].Replayed)
	assert.Equal(t, map[string]int{postgres.EmailSent: 3}, statuses(t, store, "lost"))
}

func stagedOf(t *testing.T, items []Item) []postgres.StagedEmail {
	t.Helper()
	out := make([]postgres.StagedEmail, len(items))
	for i, it := range items {
		raw, err := json.Marshal(it.Data)
		require.NoError(t, err)
		out[i] = postgres.StagedEmail{Key: it.Key, To: it.To, Data: raw}
	}
	return out
}

// A suppressed address never joins a batch; the others are sent. An email
// already sent never joins one either.
func TestBatchLeavesOutSuppressedAndSentEmails(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	w, store, s := batchWorld(t, fake, nil)
	ctx := context.Background()
	items := overdueItems(t, "sup", 4)
	require.NoError(t, store.SuppressEmail(ctx, items[1].To, "bounce: Permanent"))
	raw, err := json.Marshal(items[2].Data)
	require.NoError(t, err)
	_, err = s.Deliver(ctx, payloadOf(items[2], raw), false) // sent on its own first
	require.NoError(t, err)
	require.Equal(t, 1, fake.RequestCount())

	_, err = w.svc.SendBatch(ctx, TemplateOverdueAlert, items)
	require.NoError(t, err)
	waitStatuses(t, store, "sup", map[string]int{postgres.EmailSent: 3, postgres.EmailSuppressed: 1})
	reqs := fake.Requests()
	require.Len(t, reqs, 2)
	var to []string
	for _, e := range reqs[1].Emails {
		to = append(to, e.To...)
	}
	assert.ElementsMatch(t, []string{items[0].To, items[3].To}, to)
	assert.Contains(t, delivery(t, store, items[1].Key).LastError.String, "bounce: Permanent")
}

// With permissive validation, an email Resend refuses fails only its own row,
// with Resend's message; the others are sent.
func TestBatchValidationErrorFailsOneRow(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	items := overdueItems(t, "val", 3)
	fake.RefuseRecipient(items[1].To, "The `to` address is on Resend's block list.")
	w, store, _ := batchWorld(t, fake, nil)
	_, err := w.svc.SendBatch(context.Background(), TemplateOverdueAlert, items)
	require.NoError(t, err)
	waitStatuses(t, store, "val", map[string]int{postgres.EmailSent: 2, postgres.EmailFailed: 1})
	assert.Contains(t, delivery(t, store, items[1].Key).LastError.String, "block list")
	assert.Equal(t, 1, fake.RequestCount())
	assert.Equal(t, 2, fake.DeliveredCount())
	for _, e := range fake.Delivered() {
		assert.NotEqual(t, items[1].To, e.To[0])
	}
}

// An address that cannot be sent to gets its own failed row when it is
// staged; the batch goes out without it.
func TestBatchRefusesAnInvalidAddressAlone(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	w, store, _ := batchWorld(t, fake, nil)
	items := overdueItems(t, "bad", 3)
	items[0].To = "user-0@example.com\r\nBcc: attacker@example.com"
	r, err := w.svc.SendBatch(context.Background(), TemplateOverdueAlert, items)
	require.NoError(t, err)
	assert.Equal(t, BatchResult{Batches: 1, Refused: 1}, r)
	waitStatuses(t, store, "bad", map[string]int{postgres.EmailSent: 2, postgres.EmailFailed: 1})
	assert.Contains(t, delivery(t, store, "bad/0").LastError.String, "control character")
}

// The shared rate limit counts requests, as Resend's does: 500 emails at 2
// requests a second are 5 batch requests, none refused with 429.
func TestBatchRateLimitCountsRequests(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.SetRateLimit(2)
	rdb, _ := redistest.NewClient(t)
	w, store, _ := batchWorld(t, fake, rdb, func(o *Options) { o.RatePerSecond = 2 })
	_, err := w.svc.SendBatch(context.Background(), TemplateOverdueAlert, overdueItems(t, "rate", 500))
	require.NoError(t, err)
	waitStatuses(t, store, "rate", map[string]int{postgres.EmailSent: 500})
	st := fake.Statuses()
	assert.Equal(t, 5, st[http.StatusOK], "one request per hundred emails")
	// The sender spaces its requests; a rare 429 comes only from the jitter
	// of requests on their way, and is retried.
	assert.LessOrEqual(t, st[http.StatusTooManyRequests], 1)
	assert.Equal(t, 500, fake.DeliveredCount())
}

// A 429 waits for Retry-After, then the same batch goes out once.
func TestBatch429WaitsForRetryAfter(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.ReplyNext(resendtest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "2"})
	w, store, _ := batchWorld(t, fake, nil)
	_, err := w.svc.SendBatch(context.Background(), TemplateOverdueAlert, overdueItems(t, "busy", 3))
	require.NoError(t, err)
	waitStatuses(t, store, "busy", map[string]int{postgres.EmailSent: 3})
	reqs := fake.Requests()
	require.Len(t, reqs, 2)
	// Asynq keeps retry times in whole seconds, so a wait of 2 s is at
	// least one.
	assert.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), time.Second, "waited for Retry-After")
	assert.Equal(t, reqs[0].IdempotencyKey, reqs[1].IdempotencyKey)
}

// Without an API key a batch's emails go to the outbox, each in its files.
func TestBatchToOutbox(t *testing.T) {
	t.Parallel()
	w, store, s := batchWorld(t, nil, nil)
	_, err := w.svc.SendBatch(context.Background(), TemplateOverdueAlert, overdueItems(t, "out", 3))
	require.NoError(t, err)
	waitStatuses(t, store, "out", map[string]int{postgres.EmailOutbox: 3})
	files, err := filepath.Glob(filepath.Join(s.opt.OutboxDir, "*.txt"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	text, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Contains(t, string(text), "Template: cleaning_overdue_alert")
}

// A permanent refusal of the whole batch (401, a bad key) fails every member
// with the reason and archives the task.
func TestBatchPermanentErrorFailsItsMembers(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.RequireAPIKey("re_other")
	w, store, _ := batchWorld(t, fake, nil)
	_, err := w.svc.SendBatch(context.Background(), TemplateOverdueAlert, overdueItems(t, "perm", 2))
	require.NoError(t, err)
	waitStatuses(t, store, "perm", map[string]int{postgres.EmailFailed: 2})
	assert.Contains(t, delivery(t, store, "perm/0").LastError.String, "403")
	assert.Equal(t, 1, fake.RequestCount(), "not retried")
}

func payloadOf(it Item, raw []byte) tasks.EmailSendPayload {
	return tasks.EmailSendPayload{Key: it.Key, Template: TemplateOverdueAlert, To: it.To, Data: raw}
}

// A batch whose task Redis lost stays queued in PostgreSQL; the re-drive
// enqueues it again, once, and it is sent.
func TestRedriveSendsABatchWhoseTaskWasLost(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close(); client.Close() })
	svc := NewService(client, store)
	ctx := context.Background()
	_, err = svc.SendBatch(ctx, TemplateOverdueAlert, overdueItems(t, "lost", 3))
	require.NoError(t, err)
	var key string
	require.NoError(t, store.DB.Get(&key, `SELECT task_key FROM email_batches`))
	require.NoError(t, insp.DeleteTask(tasks.QueueDefault, key), "Redis loses the task")

	n, err := svc.RedriveBatches(ctx, time.Hour)
	require.NoError(t, err)
	assert.Zero(t, n, "a batch younger than minAge waits")
	n, err = svc.RedriveBatches(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	n, err = svc.RedriveBatches(ctx, 0)
	require.NoError(t, err)
	assert.Zero(t, n, "its task is queued again: a duplicate")

	startWorkerOn(t, s, opt)
	waitStatuses(t, store, "lost", map[string]int{postgres.EmailSent: 3})
	assert.Equal(t, 1, fake.RequestCount())
	n, err = svc.RedriveBatches(ctx, 0)
	require.NoError(t, err)
	assert.Zero(t, n, "a sent batch is not re-driven")
}
