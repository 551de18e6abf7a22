package scheduler_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/scheduler"
	"github.com/cleantrack/jobs/tasks"
)

// rig is what schedulers share in a test: a Redis database of its own, a
// PostgreSQL database of its own, and one log.
type rig struct {
	client *asynq.Client
	insp   *asynq.Inspector
	rdb    *redis.Client
	store  *postgres.Store
	dbURL  string
	logs   *lockedBuffer
	log    *slog.Logger
}

func newRig(t *testing.T) *rig {
	t.Helper()
	rdb, url := redistest.NewClient(t)
	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	c := asynq.NewClient(opt)
	i := asynq.NewInspector(opt)
	t.Cleanup(func() { c.Close(); i.Close() })
	store, dbURL := pgtest.NewStore(t)
	logs := &lockedBuffer{}
	return &rig{client: c, insp: i, rdb: rdb, store: store, dbURL: dbURL, logs: logs, log: slog.New(slog.NewJSONHandler(logs, nil))}
}

// scheduler is a scheduler on the rig whose clock stands at now. Its
// heartbeat is long, so that sweeps happen only when the test calls Sweep.
func (r *rig) scheduler(entries []scheduler.Entry, now time.Time) *scheduler.Scheduler {
	return &scheduler.Scheduler{
		Entries: entries, Queue: r.client, Store: r.store, Log: r.log,
		Now: func() time.Time { return now }, Heartbeat: time.Hour,
	}
}

// queued lists the ids of the pending tasks of type typ.
func (r *rig) queued(t *testing.T, q, typ string) []string {
	t.Helper()
	// An asynq.Client names a queue in asynq:queues once in its life; after
	// a flush the inspector would not find a queue the same client fills
	// again, so name it here.
	require.NoError(t, r.rdb.SAdd(context.Background(), "asynq:queues", q).Err())
	list, err := r.insp.ListPendingTasks(q, asynq.PageSize(1000))
	if err != nil && strings.Contains(err.Error(), "not found") {
		return nil
	}
	require.NoError(t, err)
	var ids []string
	for _, ti := range list {
		if typ == "" || ti.Type == typ {
			ids = append(ids, ti.ID)
		}
	}
	return ids
}

// fired counts the "scheduler fired" log lines with outcome for taskID.
func (r *rig) fired(t *testing.T, outcome, taskID string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		var v struct {
			Msg     string `json:"msg"`
			Outcome string `json:"outcome"`
			TaskID  string `json:"task_id"`
			Entry   string `json:"entry"`
			Slot    string `json:"slot"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &v), line)
		if v.Msg == "scheduler fired" && v.Outcome == outcome && v.TaskID == taskID {
			require.NotEmpty(t, v.Entry)
			require.NotEmpty(t, v.Slot)
			n++
		}
	}
	return n
}

// defaultSpecs are the specs of the configuration's defaults.
func defaultSpecs() scheduler.Specs {
	return scheduler.Specs{
		InboxRedrive:  config.DefaultRedriveCron,
		OverdueScan:   config.DefaultOverdueScanCron,
		WeeklySummary: config.DefaultWeeklyCron,
	}
}

// monday0600 is just after Monday 06:00, when every default entry has a slot.
var monday0600 = time.Date(2026, 11, 23, 6, 0, 30, 0, time.UTC)

var mondaySlots = []struct{ queue, typ, id string }{
	{tasks.QueueCritical, tasks.TypeInboxRedrive, "stripe:inbox_redrive:2026-11-23T06:00:00Z"},
	{tasks.QueueLow, tasks.TypeOverdueScan, "cleaning:overdue_scan:2026-11-23T06:00:00Z"},
	{tasks.QueueLow, tasks.TypeWeeklySummary, "report:weekly_summary:2026-11-23T06:00:00Z"},
}

func TestPrevSlot(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	cfg := defaultSpecs()
	cfg.WeeklySummary = "every monday"
	s := &scheduler.Scheduler{Entries: scheduler.Entries(cfg), Log: slog.Default()}
	err := s.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WEEKLY_SUMMARY_CRON")
}

// Two schedulers starting together, then both firing the same slots, enqueue
// each slot once.
func TestTwoSchedulersEnqueueEachSlotOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	a, b := r.scheduler(scheduler.Entries(defaultSpecs()), monday0600), r.scheduler(scheduler.Entries(defaultSpecs()), monday0600)
	var wg sync.WaitGroup
	for _, s := range []*scheduler.Scheduler{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); assert.NoError(t, s.Start(context.Background())) }()
	}
	wg.Wait()
	defer a.Stop()
	defer b.Stop()

	// The catch-up enqueued the latest slot of each entry exactly once.
	assert.Equal(t, []string{mondaySlots[0].id}, r.queued(t, tasks.QueueCritical, ""))
	assert.ElementsMatch(t, []string{mondaySlots[1].id, mondaySlots[2].id}, r.queued(t, tasks.QueueLow, ""))
	for _, m := range mondaySlots {
		assert.Equal(t, 1, r.fired(t, scheduler.Enqueued, m.id), m.id)
	}

	// Both fire the next overdue slot concurrently: one enqueues it, the
	// other finds it claimed or enqueued.
	entries, err := scheduler.Parse(scheduler.Entries(defaultSpecs()))
	require.NoError(t, err)
	slot := time.Date(2026, 11, 23, 6, 15, 0, 0, time.UTC)
	outcomes := make([]string, 2)
	for i, s := range []*scheduler.Scheduler{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); outcomes[i] = s.Fire(context.Background(), entries[1], slot) }()
	}
	wg.Wait()
	assert.Contains(t, outcomes, scheduler.Enqueued)
	assert.Subset(t, []string{scheduler.Enqueued, scheduler.AlreadyEnqueued, scheduler.AlreadyClaimed}, outcomes)
	assert.NotEqual(t, outcomes[0], outcomes[1])
	assert.Len(t, r.queued(t, tasks.QueueLow, ""), 3)

	info, err := r.insp.GetTaskInfo(tasks.QueueLow, mondaySlots[2].id)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, info.Retention, 14*24*time.Hour, "a weekly slot stays taken in Redis for two intervals")

	out := r.logs.String()
	assert.Contains(t, out, `"next_run"`)
	assert.Contains(t, out, `"scheduler_id"`)
	assert.Contains(t, out, `"task_id":"cleaning:overdue_scan:2026-11-23T06:15:00Z"`)
}

// A scheduler that was down across a slot catches it up once at start; a
// restart afterwards does not enqueue it again.
func TestMissedSlotCaughtUpOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) // Tuesday: Monday 06:00 was missed
	for range 2 {
		s := r.scheduler(scheduler.Entries(defaultSpecs()), now)
		require.NoError(t, s.Start(context.Background()))
		s.Stop()
	}
	assert.Equal(t, []string{"report:weekly_summary:2026-11-23T06:00:00Z"}, r.queued(t, tasks.QueueLow, tasks.TypeWeeklySummary))
}

// The chaos run's case: a scheduler enqueued the slots, Redis lost
// everything (FLUSHALL, or a failover to a replica that lacked the writes),
// and a restarted scheduler catches up the same slots. The claims in
// PostgreSQL say they were enqueued: nothing is enqueued a second time.
func TestFlushThenRestartEnqueuesNothingTwice(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	first := r.scheduler(scheduler.Entries(defaultSpecs()), monday0600)
	require.NoError(t, first.Start(context.Background()))
	first.Stop()
	require.Len(t, r.queued(t, tasks.QueueLow, ""), 2)

	require.NoError(t, r.rdb.FlushDB(context.Background()).Err())
	require.Empty(t, r.queued(t, tasks.QueueLow, ""))

	restarted := r.scheduler(scheduler.Entries(defaultSpecs()), monday0600.Add(10*time.Second))
	require.NoError(t, restarted.Start(context.Background()))
	defer restarted.Stop()
	assert.Empty(t, r.queued(t, tasks.QueueCritical, ""), "nothing enqueued again")
	assert.Empty(t, r.queued(t, tasks.QueueLow, ""), "nothing enqueued again")
	for _, m := range mondaySlots {
		assert.Equal(t, 1, r.fired(t, scheduler.Enqueued, m.id), "%s: one enqueued line in both runs", m.id)
		assert.Equal(t, 1, r.fired(t, scheduler.AlreadyEnqueued, m.id), "%s: the restart found it enqueued", m.id)
	}

	// A sweep finds nothing to finish, and the next slot is enqueued once.
	restarted.Sweep(context.Background())
	assert.Empty(t, r.queued(t, tasks.QueueLow, ""))
	entries, err := scheduler.Parse(scheduler.Entries(defaultSpecs()))
	require.NoError(t, err)
	assert.Equal(t, scheduler.Enqueued, restarted.Fire(context.Background(), entries[1], time.Date(2026, 11, 23, 6, 15, 0, 0, time.UTC)))
	assert.Equal(t, []string{"cleaning:overdue_scan:2026-11-23T06:15:00Z"}, r.queued(t, tasks.QueueLow, ""))
}

// Several schedulers fire the same slots at once, with Redis flushed
// between the rounds: each slot is enqueued exactly once in all.
func TestSchedulersRacingAcrossFlushes(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	entries, err := scheduler.Parse(scheduler.Entries(defaultSpecs()))
	require.NoError(t, err)
	overdue := entries[1]
	var ss []*scheduler.Scheduler
	for range 4 {
		s := r.scheduler([]scheduler.Entry{overdue}, monday0600)
		require.NoError(t, s.Start(context.Background()))
		defer s.Stop()
		ss = append(ss, s)
	}
	base := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	const rounds = 5
	enqueued := 0
	for round := range rounds {
		// Each round fires its own slot and the previous one again.
		for _, slot := range []time.Time{base.Add(time.Duration(round) * 15 * time.Minute), base.Add(time.Duration(round-1) * 15 * time.Minute)} {
			outcomes := make([]string, len(ss))
			var wg sync.WaitGroup
			for i, s := range ss {
				wg.Add(1)
				go func() { defer wg.Done(); outcomes[i] = s.Fire(context.Background(), overdue, slot) }()
			}
			wg.Wait()
			for _, o := range outcomes {
				require.NotEqual(t, scheduler.Failed, o)
				if o == scheduler.Enqueued {
					enqueued++
				}
			}
		}
		require.NoError(t, r.rdb.FlushDB(context.Background()).Err())
	}
	// Slots base-15m (fired in round 0 as the previous one) up to base+60m,
	// but base itself was enqueued by the catch-up at start.
	assert.Equal(t, rounds, enqueued, "one enqueue per slot")
	for round := -1; round < rounds; round++ {
		id := tasks.SlotTaskID(tasks.TypeOverdueScan, base.Add(time.Duration(round)*15*time.Minute))
		assert.Equal(t, 1, r.fired(t, scheduler.Enqueued, id), id)
	}
}

// A scheduler claimed a slot and died before enqueueing it. Another one
// finds the claim live, leaves it alone, and enqueues the slot once the
// claim's lease ran out.
func TestClaimOfACrashedSchedulerIsTakenOver(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	weekly := scheduler.Entries(defaultSpecs())[2]
	slot := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	id := tasks.SlotTaskID(tasks.TypeWeeklySummary, slot)
	claim, err := r.store.ClaimSlot(context.Background(), postgres.SlotClaim{Entry: weekly.Name, Slot: slot, TaskID: id, By: "crashed-1-dead", Lease: time.Second})
	require.NoError(t, err)
	require.True(t, claim.Claimed)

	s := r.scheduler([]scheduler.Entry{weekly}, monday0600)
	require.NoError(t, s.Start(context.Background()))
	defer s.Stop()
	assert.Empty(t, r.queued(t, tasks.QueueLow, ""), "the live claim is left to its holder")
	assert.Equal(t, 1, r.fired(t, scheduler.AlreadyClaimed, id))
	assert.Contains(t, r.logs.String(), `"holder":"crashed-1-dead"`)

	require.Eventually(t, func() bool {
		s.Sweep(context.Background())
		return len(r.queued(t, tasks.QueueLow, "")) > 0
	}, 15*time.Second, 200*time.Millisecond, "the slot is enqueued after the lease")
	assert.Equal(t, []string{id}, r.queued(t, tasks.QueueLow, ""))
	assert.Equal(t, 1, r.fired(t, scheduler.Enqueued, id))
	assert.Contains(t, r.logs.String(), `"attempt":2`)
}

// Redis refused the task: the claim is handed back, and a sweep (here of
// another scheduler) enqueues the slot once Redis answers.
func TestFailedEnqueueIsRetried(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	dead := asynq.NewClient(asynq.RedisClientOpt{Addr: proctest.FreeAddrT(t), DialTimeout: time.Second})
	t.Cleanup(func() { dead.Close() })
	overdue := scheduler.Entries(defaultSpecs())[1]
	slot := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	id := tasks.SlotTaskID(tasks.TypeOverdueScan, slot)

	broken := r.scheduler([]scheduler.Entry{overdue}, monday0600)
	broken.Queue = dead
	require.NoError(t, broken.Start(context.Background()))
	defer broken.Stop()
	assert.Equal(t, 1, r.fired(t, scheduler.Failed, id))
	assert.Contains(t, r.logs.String(), `"level":"ERROR","msg":"scheduler fired"`)

	healthy := r.scheduler([]scheduler.Entry{overdue}, monday0600.Add(time.Hour))
	require.NoError(t, healthy.Start(context.Background()))
	defer healthy.Stop()
	// Its catch-up fired 07:00, which supersedes the 06:00 slot: a sweep
	// finishes only an entry's newest slot, as a catch-up fires only the
	// latest one.
	healthy.Sweep(context.Background())
	assert.Equal(t, []string{"cleaning:overdue_scan:2026-11-23T07:00:00Z"}, r.queued(t, tasks.QueueLow, ""))

	// The same failure on the newest slot is finished by the sweep.
	slot2 := time.Date(2026, 11, 23, 7, 15, 0, 0, time.UTC)
	id2 := tasks.SlotTaskID(tasks.TypeOverdueScan, slot2)
	entries, err := scheduler.Parse([]scheduler.Entry{overdue})
	require.NoError(t, err)
	assert.Equal(t, scheduler.Failed, broken.Fire(context.Background(), entries[0], slot2))
	healthy.Sweep(context.Background())
	assert.ElementsMatch(t, []string{"cleaning:overdue_scan:2026-11-23T07:00:00Z", id2}, r.queued(t, tasks.QueueLow, ""))
	assert.Equal(t, 1, r.fired(t, scheduler.Enqueued, id2))
	healthy.Sweep(context.Background())
	assert.Len(t, r.queued(t, tasks.QueueLow, ""), 2, "once marked, a sweep leaves it")
}

// PostgreSQL refused the claim: nothing is enqueued, and the scheduler fires
// the slot again at its next heartbeat, once PostgreSQL answers.
func TestUnclaimedSlotIsFiredAgain(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	weekly := scheduler.Entries(defaultSpecs())[2]
	s := r.scheduler([]scheduler.Entry{weekly}, monday0600)
	require.NoError(t, s.Start(context.Background()))
	defer s.Stop()
	require.Len(t, r.queued(t, tasks.QueueLow, ""), 1, "the catch-up")

	// The test's own database stops taking connections, and loses those it has.
	u, err := url.Parse(r.dbURL)
	require.NoError(t, err)
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("postgres", pgtest.AdminURL())
	require.NoError(t, err)
	defer admin.Close()
	setConnections := func(allow bool) {
		_, err := admin.Exec(fmt.Sprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %t", name, allow))
		require.NoError(t, err)
	}
	setConnections(false)
	defer setConnections(true)
	_, err = admin.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
	require.NoError(t, err)

	slot := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	id := tasks.SlotTaskID(tasks.TypeWeeklySummary, slot)
	assert.Equal(t, scheduler.Failed, s.Fire(context.Background(), mustParse(t, []scheduler.Entry{weekly})[0], slot))
	assert.Equal(t, 1, r.fired(t, scheduler.Failed, id))
	assert.Len(t, r.queued(t, tasks.QueueLow, ""), 1, "nothing enqueued without a claim")

	setConnections(true)
	s.Sweep(context.Background())
	assert.Equal(t, 1, r.fired(t, scheduler.Enqueued, id))
	assert.Contains(t, r.queued(t, tasks.QueueLow, ""), id)
	s.Sweep(context.Background())
	assert.Equal(t, 1, r.fired(t, scheduler.Enqueued, id), "owed once")
}

// Against the real clock, Start enqueues the current minute's slot of an
// every-minute entry under its slot TaskID.
func TestStartEnqueuesCurrentSlot(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	fired := make(chan time.Time, 10)
	e := scheduler.Entry{Name: "probe", Env: "PROBE_CRON", Spec: "* * * * *", Task: func(slot time.Time) (*asynq.Task, error) {
		fired <- slot
		return asynq.NewTask("probe", nil, asynq.TaskID(tasks.SlotTaskID("probe", slot))), nil
	}}
	s := &scheduler.Scheduler{Entries: []scheduler.Entry{e}, Queue: r.client, Store: r.store, Log: r.log}
	require.NoError(t, s.Start(context.Background()))
	defer s.Stop()
	// The catch-up firing happens during Start.
	var slot time.Time
	select {
	case slot = <-fired:
		assert.Equal(t, 0, slot.Second())
		assert.False(t, slot.After(time.Now()))
	case <-time.After(5 * time.Second):
		t.Fatal("catch-up did not fire")
	}
	info, err := r.insp.GetTaskInfo(tasks.QueueDefault, tasks.SlotTaskID("probe", slot))
	require.NoError(t, err)
	assert.Equal(t, "probe", info.Type)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
