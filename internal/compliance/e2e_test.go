package compliance_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/testfactory"
	"github.com/cleantrack/jobs/tasks"
)

// startWorker runs a real Asynq server with the compliance handlers and the
// email Sender (pointed at the Resend fake), as the worker process wires them.
func (w *world) startWorker(resendURL string) {
	w.t.Helper()
	opt, err := queue.RedisOpt(w.redisURL)
	require.NoError(w.t, err)
	rdb := queue.RedisClient(opt)
	w.t.Cleanup(func() { rdb.Close() })
	sender, err := email.New(w.store, rdb, discardLog(), email.Options{
		APIKey: "re_test", BaseURL: resendURL, From: "CleanTrack <alerts@example.com>", RatePerSecond: 100,
	})
	require.NoError(w.t, err)

	mux := asynq.NewServeMux()
	sender.Register(mux)
	compliance.New(w.store, email.NewService(w.client, w.store), discardLog(), compliance.Options{
		SiteURL: "https://app.example.com", ScanBatch: 3, AccountPage: 1,
	}).Register(mux)
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:     8,
		Queues:          queue.Weights,
		RetryDelayFunc:  func(int, error, *asynq.Task) time.Duration { return 200 * time.Millisecond },
		IsFailure:       queue.IsFailure,
		ShutdownTimeout: 2 * time.Second,
		Logger:          queue.Logger{L: discardLog()},
		LogLevel:        asynq.FatalLevel,
	})
	require.NoError(w.t, srv.Start(mux))
	w.t.Cleanup(srv.Shutdown)
}

// drained reports whether every queue is empty of pending, active, scheduled
// and retrying tasks.
func (w *world) drained() bool {
	for q := range queue.Weights {
		info, err := w.insp.GetQueueInfo(q)
		if err != nil {
			continue // not created yet
		}
		if info.Pending+info.Active+info.Scheduled+info.Retry > 0 {
			return false
		}
	}
	return true
}

// sent lists the emails the Resend fake delivered as "<idempotency key> <to>",
// sorted: the key is the delivery row's, found by the id Resend answered
// (a batch's members share the batch's Idempotency-Key).
func (w *world) sent(fake *resendtest.Server) []string {
	w.t.Helper()
	keyOf := map[string]string{}
	var rows []struct {
		Key string `db:"idempotency_key"`
		ID  string `db:"provider_message_id"`
	}
	require.NoError(w.t, w.store.DB.SelectContext(w.ctx, &rows,
		`SELECT idempotency_key, provider_message_id FROM email_deliveries WHERE provider_message_id IS NOT NULL`))
	for _, r := range rows {
		keyOf[r.ID] = r.Key
	}
	var out []string
	for _, e := range fake.Delivered() {
		for _, to := range e.To {
			out = append(out, keyOf[e.ID]+" "+to)
		}
	}
	sort.Strings(out)
	return out
}

func (w *world) enqueue(task *asynq.Task, err error) {
	w.t.Helper()
	require.NoError(w.t, err)
	_, _, err = queue.Enqueue(w.ctx, w.client, task)
	require.NoError(w.t, err)
}

func TestScanAndWeeklySummaryEndToEnd(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := time.Now().UTC()
	north, northOwner := w.account("north", "UTC", "active")
	admin1 := w.member(north, "admin1", "admin")
	admin2 := w.member(north, "admin2", "admin")
	manager := w.member(north, "manager", "manager")
	tech := w.member(north, "tech", "technician")
	ward := w.location(north, "Ward")
	unassigned := w.equipment(north, ward, equip{name: "monitor", interval: 24, created: now.Add(-72 * time.Hour)})
	assigned := w.equipment(north, ward, equip{name: "pump", interval: 24, created: now.Add(-72 * time.Hour), assignee: tech})
	w.equipment(north, ward, equip{name: "fresh", interval: 24, created: now.Add(-72 * time.Hour), cleanings: []time.Time{now.Add(-time.Hour)}})
	south, southOwner := w.account("south", "Europe/Berlin", "trialing")
	w.account("gone", "UTC", "canceled")
	fake := resendtest.New(t)
	w.startWorker(fake.URL())

	// Two manual scans and two manual fan-outs (fresh task ids each): every
	// email still goes out once.
	for range 2 {
		w.enqueue(tasks.NewOverdueScan(tasks.OverdueScanPayload{}))
		w.enqueue(tasks.NewWeeklySummary(tasks.WeeklySummaryPayload{Week: "2026-W47"}))
	}
	require.Eventually(t, func() bool { return fake.DeliveredCount() >= 9 && w.drained() }, 30*time.Second, 50*time.Millisecond,
		"got %v", w.sent(fake))

	alerts := w.activeAlerts(north)
	want := []string{
		fmt.Sprintf("overdue/%d/%d %s", alerts[unassigned], northOwner, "north-owner@example.com"),
		fmt.Sprintf("overdue/%d/%d %s", alerts[unassigned], admin1, "admin1@example.com"),
		fmt.Sprintf("overdue/%d/%d %s", alerts[unassigned], admin2, "admin2@example.com"),
		fmt.Sprintf("overdue/%d/%d %s", alerts[unassigned], manager, "manager@example.com"),
		fmt.Sprintf("overdue/%d/%d %s", alerts[assigned], tech, "tech@example.com"),
		fmt.Sprintf("weekly/%d/2026-W47/%d %s", north, northOwner, "north-owner@example.com"),
		fmt.Sprintf("weekly/%d/2026-W47/%d %s", north, admin1, "admin1@example.com"),
		fmt.Sprintf("weekly/%d/2026-W47/%d %s", north, admin2, "admin2@example.com"),
		fmt.Sprintf("weekly/%d/2026-W47/%d %s", south, southOwner, "south-owner@example.com"),
	}
	sort.Strings(want)
	assert.Equal(t, want, w.sent(fake))
	// Fan-outs go through the batch API: the scan's one page is one batch,
	// each account's page another, and no batch was requested twice.
	for _, r := range fake.Requests() {
		assert.True(t, r.Batch, "request %d is a batch", r.N)
		assert.Equal(t, 200, r.Status)
	}
	assert.Equal(t, 3, fake.RequestCount())
	assert.Len(t, fake.Keys(), 3)

	for _, acc := range []int64{north, south} {
		rep, err := w.store.WeeklyReport(w.ctx, acc, "2026-W47")
		require.NoError(t, err)
		assert.True(t, rep.SentAt.Valid, "report of account %d marked sent", acc)
	}
	var sentRows int
	require.NoError(t, w.store.DB.GetContext(w.ctx, &sentRows, `SELECT count(*) FROM email_deliveries WHERE status = 'sent'`))
	assert.Equal(t, 9, sentRows)

	// Once the task ids have expired, a report marked sent still is not sent
	// again: the per-account task finds sent_at and stops.
	n, err := w.service(now, 0).SendWeeklyReport(w.ctx, north, "2026-W47")
	require.NoError(t, err)
	assert.Zero(t, n)
}

// A user whose stored address does not parse (a CR/LF in it, from before
// addresses were checked) used to fail every scan: its healthy alerts stayed
// unnotified and were enqueued again by every later scan. Now the bad
// recipient gets a failed row with the reason, the others are sent, the scan
// succeeds and its alerts are notified.
func TestScanWithABadStoredAddressSendsTheOthers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := time.Now().UTC()
	acc, owner := w.account("clinic", "UTC", "active")
	admin := w.member(acc, "admin", "admin")
	broken := w.member(acc, "broken", "manager")
	testfactory.LegacyAddress(t, w.store, broken, "broken@example.com\r\nBcc: attacker@example.com")
	ward := w.location(acc, "Ward")
	monitor := w.equipment(acc, ward, equip{name: "monitor", interval: 24, created: now.Add(-72 * time.Hour)})
	fake := resendtest.New(t)
	w.startWorker(fake.URL())

	w.enqueue(tasks.NewOverdueScan(tasks.OverdueScanPayload{}))
	require.Eventually(t, func() bool { return fake.DeliveredCount() >= 2 && w.drained() }, 30*time.Second, 50*time.Millisecond,
		"got %v", w.sent(fake))
	alert := w.activeAlerts(acc)[monitor]
	assert.ElementsMatch(t, []string{
		fmt.Sprintf("overdue/%d/%d admin@example.com", alert, admin),
		fmt.Sprintf("overdue/%d/%d clinic-owner@example.com", alert, owner),
	}, w.sent(fake))
	for _, r := range fake.Requests() {
		assert.NotContains(t, string(r.Raw), "attacker@example.com")
	}

	bad, err := w.store.EmailDeliveryByKey(w.ctx, compliance.OverdueKey(alert, broken))
	require.NoError(t, err)
	assert.Equal(t, "failed", bad.Status)
	assert.Contains(t, bad.LastError.String, "control character")

	// The scan succeeded (nothing retried or archived) and its alert is
	// notified, so the next scan stages nothing.
	for _, q := range []string{tasks.QueueLow, tasks.QueueDefault} {
		info, err := w.insp.GetQueueInfo(q)
		require.NoError(t, err)
		assert.Zero(t, info.Retry+info.Archived, "queue %s", q)
	}
	alerts, err := w.store.AccountAlerts(w.ctx, acc)
	require.NoError(t, err)
	require.Len(t, alerts, 1)
	assert.True(t, alerts[0].NotifiedAt.Valid)
	r, err := w.service(now.Add(time.Minute), 0).Scan(w.ctx, 0)
	require.NoError(t, err)
	assert.Zero(t, r.Emails)
}
