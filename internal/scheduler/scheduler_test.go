package scheduler_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/scheduler"
	"github.com/cleantrack/jobs/tasks"
)

func newQueue(t *testing.T) (*asynq.Client, *asynq.Inspector) {
	t.Helper()
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	c := asynq.NewClient(opt)
	i := asynq.NewInspector(opt)
	t.Cleanup(func() { c.Close(); i.Close() })
	return c, i
}

// defaultSpecs are the specs of the configuration's defaults.
func defaultSpecs() scheduler.Specs {
	return scheduler.Specs{
		InboxRedrive:  config.DefaultRedriveCron,
		OverdueScan:   config.DefaultOverdueScanCron,
		WeeklySummary: config.DefaultWeeklyCron,
	}
}

func allTasks(t *testing.T, insp *asynq.Inspector, q string) []*asynq.TaskInfo {
	t.Helper()
	list, err := insp.ListPendingTasks(q, asynq.PageSize(1000))
	if err != nil && strings.Contains(err.Error(), "not found") {
		return nil
	}
	require.NoError(t, err)
	return list
}

func TestPrevSlot(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	cases := []struct {
		spec string
		now  time.Time
		want time.Time
	}{
		{"*/15 * * * *", time.Date(2026, 11, 26, 10, 7, 3, 0, time.UTC), time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC), time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)},
		{"0 6 * * MON", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)},
		{"0 6 * * MON", time.Date(2026, 11, 23, 5, 59, 59, 0, time.UTC), time.Date(2026, 11, 16, 6, 0, 0, 0, time.UTC)},
		{"0 6 * * MON", time.Date(2026, 11, 23, 6, 30, 0, 0, berlin), time.Date(2026, 11, 23, 6, 0, 0, 0, berlin)},
		{"0 0 1 1 *", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.spec+"@"+tc.now.String(), func(t *testing.T) {
			s, err := cron.ParseStandard(tc.spec)
			require.NoError(t, err)
			assert.True(t, tc.want.Equal(scheduler.PrevSlot(s, tc.now)), "got %v", scheduler.PrevSlot(s, tc.now))
		})
	}
}

func TestBadSpecNamesTheVariable(t *testing.T) {
	cfg := defaultSpecs()
	cfg.WeeklySummary = "every monday"
	client, _ := newQueue(t)
	s := &scheduler.Scheduler{Entries: scheduler.Entries(cfg), Queue: client, Log: slog.Default()}
	err := s.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WEEKLY_SUMMARY_CRON")
}

// Two schedulers starting together, then both firing the same slots, enqueue
// each slot once.
func TestTwoSchedulersEnqueueEachSlotOnce(t *testing.T) {
	cfg := defaultSpecs()
	client, insp := newQueue(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&logs, &mu}, nil))
	now := time.Date(2026, 11, 23, 6, 0, 30, 0, time.UTC) // just after Monday 06:00
	mk := func() *scheduler.Scheduler {
		return &scheduler.Scheduler{Entries: scheduler.Entries(cfg), Queue: client, Log: log, Now: func() time.Time { return now }}
	}
	a, b := mk(), mk()
	var wg sync.WaitGroup
	for _, s := range []*scheduler.Scheduler{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); require.NoError(t, s.Start(context.Background())) }()
	}
	wg.Wait()
	a.Stop()
	b.Stop()

	// The catch-up enqueued the latest slot of each entry exactly once.
	critical := allTasks(t, insp, tasks.QueueCritical)
	require.Len(t, critical, 1)
	assert.Equal(t, "stripe:inbox_redrive:2026-11-23T06:00:00Z", critical[0].ID)
	low := allTasks(t, insp, tasks.QueueLow)
	ids := []string{}
	for _, ti := range low {
		ids = append(ids, ti.ID)
	}
	assert.ElementsMatch(t, []string{
		"cleaning:overdue_scan:2026-11-23T06:00:00Z",
		"report:weekly_summary:2026-11-23T06:00:00Z",
	}, ids)

	// Both fire the next overdue slot concurrently: one enqueue, one "already".
	entries, err := scheduler.Parse(scheduler.Entries(cfg))
	require.NoError(t, err)
	slot := time.Date(2026, 11, 23, 6, 15, 0, 0, time.UTC)
	outcomes := make([]string, 2)
	for i, s := range []*scheduler.Scheduler{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); outcomes[i] = s.Fire(context.Background(), entries[1], slot) }()
	}
	wg.Wait()
	assert.ElementsMatch(t, []string{scheduler.Enqueued, scheduler.AlreadyEnqueued}, outcomes)
	assert.Len(t, allTasks(t, insp, tasks.QueueLow), 3)

	info, err := insp.GetTaskInfo(tasks.QueueLow, "report:weekly_summary:2026-11-23T06:00:00Z")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, info.Retention, 14*24*time.Hour, "a weekly slot stays taken for two intervals")

	mu.Lock()
	out := logs.String()
	mu.Unlock()
	assert.Contains(t, out, `"next_run"`)
	assert.Contains(t, out, `"outcome":"already_enqueued"`)
	assert.Contains(t, out, `"task_id":"cleaning:overdue_scan:2026-11-23T06:15:00Z"`)
}

// A scheduler that was down across a slot catches it up once at start; a
// restart afterwards does not enqueue it again.
func TestMissedSlotCaughtUpOnce(t *testing.T) {
	cfg := defaultSpecs()
	client, insp := newQueue(t)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) // Tuesday: Monday 06:00 was missed
	start := func() {
		s := &scheduler.Scheduler{Entries: scheduler.Entries(cfg), Queue: client, Log: slog.Default(), Now: func() time.Time { return now }}
		require.NoError(t, s.Start(context.Background()))
		s.Stop()
	}
	start()
	start()
	var weekly []string
	for _, ti := range allTasks(t, insp, tasks.QueueLow) {
		if ti.Type == tasks.TypeWeeklySummary {
			weekly = append(weekly, ti.ID)
		}
	}
	assert.Equal(t, []string{"report:weekly_summary:2026-11-23T06:00:00Z"}, weekly)
}

// Against the real clock, Start enqueues the current minute's slot of an
// every-minute entry under its slot TaskID.
func TestStartEnqueuesCurrentSlot(t *testing.T) {
	client, insp := newQueue(t)
	fired := make(chan time.Time, 10)
	e := scheduler.Entry{Name: "probe", Env: "PROBE_CRON", Spec: "* * * * *", Task: func(slot time.Time) (*asynq.Task, error) {
		fired <- slot
		return asynq.NewTask("probe", nil, asynq.TaskID(tasks.SlotTaskID("probe", slot))), nil
	}}
	s := &scheduler.Scheduler{Entries: []scheduler.Entry{e}, Queue: client, Log: slog.Default()}
	require.NoError(t, s.Start(context.Background()))
	defer s.Stop()
	// The catch-up firing happens during Start.
	select {
	case slot := <-fired:
		assert.Equal(t, 0, slot.Second())
		assert.False(t, slot.After(time.Now()))
	case <-time.After(5 * time.Second):
		t.Fatal("catch-up did not fire")
	}
	info, err := insp.GetTaskInfo(tasks.QueueDefault, tasks.SlotTaskID("probe", time.Now().Truncate(time.Minute)))
	if err != nil {
		// The minute may have turned between Start and this check.
		info, err = insp.GetTaskInfo(tasks.QueueDefault, tasks.SlotTaskID("probe", time.Now().Add(-time.Minute).Truncate(time.Minute)))
	}
	require.NoError(t, err)
	assert.Equal(t, "probe", info.Type)
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
