// Package scheduler drives CleanTrack's periodic work with robfig/cron. Each
// firing claims its cron slot in PostgreSQL, then enqueues one task whose
// TaskID names the slot. The claim, not Redis, is the record: any number of
// schedulers running together enqueue each slot once, a slot whose claim
// exists is never enqueued again even after Redis lost everything, and a
// claim whose scheduler died before enqueueing is taken over and enqueued.
// A slot missed while no scheduler ran is caught up at start.
//
// Each scheduler also records itself, its entries and every firing in
// PostgreSQL (ReadStatus reads them back for `cleantrack schedule` and the
// admin Schedules page). Every statement stands alone or runs in one short
// transaction, so all of it works through PgBouncer in transaction mode.
package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/robfig/cron/v3"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// Outcomes of one firing, as logged, counted and recorded.
const (
	// Enqueued: this scheduler put the slot's task in Redis.
	Enqueued = "enqueued"
	// AlreadyEnqueued: the slot was enqueued before (by any scheduler).
	AlreadyEnqueued = "already_enqueued"
	// AlreadyClaimed: another scheduler holds the slot's claim and is
	// enqueueing it; if it dies first, its claim is taken over after the
	// lease.
	AlreadyClaimed = "already_claimed"
	// Failed: the slot could not be claimed or enqueued; it is tried again.
	Failed = "error"
)

// Defaults for the Scheduler fields left zero.
const (
	// DefaultLease is how long a claim keeps other schedulers off a slot that
	// is not enqueued yet. An enqueue gets a third of it.
	DefaultLease = 30 * time.Second
	// DefaultHeartbeat is how often a scheduler records that it runs, and
	// looks for claims left behind. It counts as live for three heartbeats.
	DefaultHeartbeat = 10 * time.Second
)

// History kept in PostgreSQL: firings for a week, slots for longer than the
// oldest slot a catch-up can fire (PrevSlot looks back up to 367 days), dead
// schedulers for a week after their last heartbeat.
var retention = postgres.SchedulerRetention{
	Firings:    7 * 24 * time.Hour,
	Slots:      370 * 24 * time.Hour,
	Schedulers: 7 * 24 * time.Hour,
}

// pruneEvery is how often a scheduler prunes the history.
const pruneEvery = time.Hour

// Entry is one periodic job: a cron spec and the task it enqueues for a slot.
type Entry struct {
	Name string // stable name, used in logs, metrics and PostgreSQL
	Env  string // the variable its spec comes from
	Spec string
	// Task builds the task for one slot; its TaskID must be
	// tasks.SlotTaskID(type, slot).
	Task func(slot time.Time) (*asynq.Task, error)

	schedule cron.Schedule
}

// Specs are the cron specs of CleanTrack's periodic jobs, in the standard
// five-field form ("*/15 * * * *"). Each comes from the variable named in
// its comment.
type Specs struct {
	InboxRedrive  string // INBOX_REDRIVE_CRON
	OverdueScan   string // OVERDUE_SCAN_CRON
	WeeklySummary string // WEEKLY_SUMMARY_CRON
	// StripeSync and StripeReconcile need the Stripe API: empty (no
	// STRIPE_SECRET_KEY) leaves their entries out.
	StripeSync      string // STRIPE_SYNC_CRON
	StripeReconcile string // STRIPE_RECONCILE_CRON
}

// Entries lists CleanTrack's periodic jobs with their specs. Parse (or
// Start) validates the specs.
func Entries(specs Specs) []Entry {
	entries := []Entry{
		{Name: "inbox-redrive", Env: "INBOX_REDRIVE_CRON", Spec: specs.InboxRedrive, Task: func(slot time.Time) (*asynq.Task, error) {
			return tasks.NewInboxRedrive(tasks.InboxRedrivePayload{Slot: slot})
		}},
		{Name: "overdue-scan", Env: "OVERDUE_SCAN_CRON", Spec: specs.OverdueScan, Task: func(slot time.Time) (*asynq.Task, error) {
			return tasks.NewOverdueScan(tasks.OverdueScanPayload{Slot: slot})
		}},
		{Name: "weekly-summary", Env: "WEEKLY_SUMMARY_CRON", Spec: specs.WeeklySummary, Task: func(slot time.Time) (*asynq.Task, error) {
			return tasks.NewWeeklySummary(tasks.WeeklySummaryPayload{Slot: slot})
		}},
	}
	if specs.StripeSync != "" {
		entries = append(entries, Entry{Name: "stripe-sync", Env: "STRIPE_SYNC_CRON", Spec: specs.StripeSync, Task: func(slot time.Time) (*asynq.Task, error) {
			return tasks.NewStripeSync(tasks.StripeSyncPayload{Slot: slot})
		}})
	}
	if specs.StripeReconcile != "" {
		entries = append(entries, Entry{Name: "stripe-reconcile", Env: "STRIPE_RECONCILE_CRON", Spec: specs.StripeReconcile, Task: func(slot time.Time) (*asynq.Task, error) {
			return tasks.NewStripeReconcile(tasks.StripeReconcilePayload{Slot: slot})
		}})
	}
	return entries
}

// Scheduler fires Entries on their specs in Location. Start it once; Stop
// ends it.
type Scheduler struct {
	Entries []Entry
	Queue   queue.Enqueuer
	// Store holds the slot claims and the scheduler's records. Required.
	Store    *postgres.Store
	Location *time.Location
	Log      *slog.Logger
	// Now is the clock that picks the slots; nil means time.Now. Leases
	// and heartbeats run on PostgreSQL's clock.
	Now func() time.Time
	// ID names this scheduler in PostgreSQL and its logs; empty means
	// "<host>-<pid>-<random>".
	ID string
	// Lease and Heartbeat: zero means DefaultLease, DefaultHeartbeat.
	Lease     time.Duration
	Heartbeat time.Duration

	cron    *cron.Cron
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	host    string
	started time.Time
	byName  map[string]Entry

	mu sync.Mutex
	// owed holds, per entry, the newest slot this scheduler could not claim
	// (PostgreSQL did not answer); the next heartbeat fires it again.
	owed map[string]time.Time
	// unmarked holds, per entry, the newest slot it enqueued but could not
	// mark enqueued; the next heartbeat marks it.
	unmarked map[string]time.Time
}

// Parse validates every entry's spec, naming the variable of a bad one.
func Parse(entries []Entry) ([]Entry, error) {
	out := make([]Entry, len(entries))
	for i, e := range entries {
		s, err := cron.ParseStandard(e.Spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a cron spec: %w", e.Env, e.Spec, err)
		}
		e.schedule = s
		out[i] = e
	}
	return out, nil
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Scheduler) loc() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

func (s *Scheduler) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return DefaultLease
}

func (s *Scheduler) heartbeat() time.Duration {
	if s.Heartbeat > 0 {
		return s.Heartbeat
	}
	return DefaultHeartbeat
}

// Start parses the specs, records the scheduler and its entries in
// PostgreSQL, catches up each entry's latest past slot (a no-op when the
// slot's claim exists), logs each entry's next run and starts the cron and
// the heartbeat. It fails when a spec is bad or PostgreSQL does not answer.
func (s *Scheduler) Start(ctx context.Context) error {
	entries, err := Parse(s.Entries)
	if err != nil {
		return err
	}
	if s.Store == nil {
		return errors.New("scheduler: no store: slot claims live in PostgreSQL")
	}
	s.Entries = entries
	s.byName = map[string]Entry{}
	for _, e := range entries {
		s.byName[e.Name] = e
	}
	s.host, _ = os.Hostname()
	if s.ID == "" {
		s.ID = newID(s.host)
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	s.Log = s.Log.With(slog.String("scheduler_id", s.ID))
	s.owed = map[string]time.Time{}
	s.unmarked = map[string]time.Time{}
	s.started = time.Now()
	if err := s.Store.HeartbeatScheduler(ctx, s.instance()); err != nil {
		return err
	}

	ctx, s.cancel = context.WithCancel(ctx)
	s.cron = cron.New(cron.WithLocation(s.loc()))
	now := s.now().In(s.loc())
	for _, e := range s.Entries {
		s.cron.Schedule(e.schedule, cron.FuncJob(func() {
			s.wg.Add(1)
			defer s.wg.Done()
			s.Fire(ctx, e, PrevSlot(e.schedule, s.now().In(s.loc())))
		}))
		// A deploy across a slot (Monday 06:00) must not skip it.
		if prev := PrevSlot(e.schedule, now); !prev.IsZero() {
			s.Fire(ctx, e, prev)
		}
		s.Log.Info("scheduler entry",
			slog.String("entry", e.Name), slog.String("spec", e.Spec),
			slog.String("timezone", s.loc().String()),
			slog.Time("next_run", e.schedule.Next(now)))
	}
	s.wg.Add(1)
	go s.loop(ctx)
	s.cron.Start()
	return nil
}

// Stop stops the cron and the heartbeat, waits for a firing in progress, and
// records the scheduler as stopped, so it leaves the live list at once.
func (s *Scheduler) Stop() {
	if s.cron != nil {
		<-s.cron.Stop().Done()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.Store != nil && s.ID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Store.StopScheduler(ctx, s.ID); err != nil {
			s.Log.Warn("scheduler stop not recorded", slog.String("error", err.Error()))
		}
	}
}

// newID is "<host>-<pid>-<6 random hex digits>": unique among schedulers,
// and still telling an operator where the process runs.
func newID(host string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	if host == "" {
		host = "scheduler"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// instance is what the heartbeat records: who runs, and each entry's spec,
// zone and next run.
func (s *Scheduler) instance() postgres.SchedulerInstance {
	now := s.now().In(s.loc())
	in := postgres.SchedulerInstance{
		ID: s.ID, Host: s.host, PID: os.Getpid(), StartedAt: s.started,
		LiveFor: 3 * s.heartbeat(),
	}
	for _, e := range s.Entries {
		in.Entries = append(in.Entries, postgres.SchedulerEntry{
			Entry: e.Name, Spec: e.Spec, Env: e.Env, Timezone: s.loc().String(),
			NextRun: e.schedule.Next(now),
		})
	}
	return in
}

// loop is the heartbeat: it records the scheduler, finishes what an earlier
// firing left undone (here or in a scheduler that died), and prunes the
// history, until ctx is done.
func (s *Scheduler) loop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.heartbeat())
	defer t.Stop()
	var pruned time.Time
	for {
		if time.Since(pruned) >= pruneEvery {
			// Tried once an hour, failed or not: the next scheduler or hour
			// does it.
			pruned = time.Now()
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			n, err := s.Store.PruneSchedulerHistory(pctx, retention)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				s.Log.Warn("scheduler history not pruned", slog.String("error", err.Error()))
			case n > 0:
				s.Log.Info("scheduler history pruned", slog.Int64("rows", n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, s.lease()/3)
		err := s.Store.HeartbeatScheduler(hctx, s.instance())
		cancel()
		if err != nil && ctx.Err() == nil {
			s.Log.Warn("scheduler heartbeat failed", slog.String("error", err.Error()))
		}
		s.Sweep(ctx)
	}
}

// Sweep finishes earlier firings: it marks slots this scheduler enqueued but
// could not mark, fires again the slots it could not claim, and fires every
// entry's newest slot that was claimed but never enqueued once its lease ran
// out (its scheduler died, or Redis refused the task). The heartbeat runs
// it; it is exported for tests.
func (s *Scheduler) Sweep(ctx context.Context) {
	s.mu.Lock()
	unmarked, owed := s.unmarked, s.owed
	s.unmarked, s.owed = map[string]time.Time{}, map[string]time.Time{}
	s.mu.Unlock()
	for name, slot := range unmarked {
		mctx, cancel := context.WithTimeout(ctx, s.lease()/3)
		err := s.Store.MarkSlotEnqueued(mctx, name, slot, s.ID)
		cancel()
		if err != nil {
			s.oweMark(name, slot)
			if ctx.Err() == nil {
				s.Log.Warn("slot enqueued but not yet marked", slog.String("entry", name), slog.Time("slot", slot), slog.String("error", err.Error()))
			}
		}
	}
	for name, slot := range owed {
		if e, ok := s.byName[name]; ok && ctx.Err() == nil {
			s.Fire(ctx, e, slot)
		}
	}
	names := make([]string, 0, len(s.Entries))
	for _, e := range s.Entries {
		names = append(names, e.Name)
	}
	pctx, cancel := context.WithTimeout(ctx, s.lease()/3)
	pending, err := s.Store.PendingSlots(pctx, names)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("pending slots not read", slog.String("error", err.Error()))
		}
		return
	}
	for _, p := range pending {
		if ctx.Err() != nil {
			return // stopping: the next scheduler's sweep finishes it
		}
		s.Fire(ctx, s.byName[p.Entry], p.Slot)
	}
}

// oweClaim and oweMark keep slot for the next sweep, unless a newer slot of
// the entry is kept already: only an entry's newest slot is worth finishing.
func (s *Scheduler) oweClaim(name string, slot time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keepNewest(s.owed, name, slot)
}

func (s *Scheduler) oweMark(name string, slot time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keepNewest(s.unmarked, name, slot)
}

func keepNewest(m map[string]time.Time, name string, slot time.Time) {
	if old, ok := m[name]; !ok || slot.After(old) {
		m[name] = slot
	}
}

// settle forgets what is owed for an entry up to slot: a later slot done
// makes an earlier unfinished one moot.
func (s *Scheduler) settle(name string, slot time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.owed[name]; ok && !old.After(slot) {
		delete(s.owed, name)
	}
}

// firing is the result of one attempt to enqueue a slot.
type firing struct {
	outcome string
	taskID  string
	attempt int    // claims of the slot so far, when this one claimed it
	holder  string // the scheduler holding the claim (AlreadyClaimed)
	err     error
}

// Fire claims e's slot and, holding the claim, enqueues its task; it logs,
// counts and records the outcome, and returns it. A claim already marked
// enqueued is AlreadyEnqueued without asking Redis, so a slot is enqueued
// once even when Redis lost its task id. The retention is raised above the
// entry's interval, so that the slot's TaskID stays taken in Redis until
// the next slot as well.
func (s *Scheduler) Fire(ctx context.Context, e Entry, slot time.Time) string {
	f := s.fire(ctx, e, slot)
	s.report(ctx, e, slot, f)
	return f.outcome
}

func (s *Scheduler) fire(ctx context.Context, e Entry, slot time.Time) firing {
	task, err := e.Task(slot)
	if err != nil {
		return firing{outcome: Failed, err: fmt.Errorf("build task: %w", err)}
	}
	f := firing{taskID: tasks.SlotTaskID(task.Type(), slot)}
	// Both calls end well within the lease, so a claim is never taken over
	// while its holder may still enqueue.
	cctx, cancel := context.WithTimeout(ctx, s.lease()/3)
	defer cancel()
	claim, err := s.Store.ClaimSlot(cctx, postgres.SlotClaim{Entry: e.Name, Slot: slot, TaskID: f.taskID, By: s.ID, Lease: s.lease()})
	switch {
	case err != nil:
		s.oweClaim(e.Name, slot)
		f.outcome, f.err = Failed, err
		return f
	case claim.Enqueued:
		s.settle(e.Name, slot)
		f.outcome = AlreadyEnqueued
		return f
	case !claim.Claimed:
		s.settle(e.Name, slot)
		f.outcome, f.holder = AlreadyClaimed, claim.Holder
		return f
	}
	s.settle(e.Name, slot)
	f.attempt = claim.Attempts
	var opts []asynq.Option
	if e.schedule != nil {
		opts = append(opts, retentionFor(e.schedule, slot, task.Type()))
	}
	_, dup, err := queue.Enqueue(cctx, s.Queue, task, opts...)
	if err != nil {
		// Hand the claim back so that a sweep of any scheduler tries again
		// soon; should that fail too, the lease runs out by itself.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), s.lease()/3)
		_ = s.Store.ReleaseSlot(rctx, e.Name, slot, s.ID, s.retryAfter(claim.Attempts))
		rcancel()
		f.outcome, f.err = Failed, err
		return f
	}
	f.outcome = Enqueued
	if dup {
		f.outcome = AlreadyEnqueued
	}
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), s.lease()/3)
	defer mcancel()
	if err := s.Store.MarkSlotEnqueued(mctx, e.Name, slot, s.ID); err != nil {
		// The task is in Redis, its TaskID guards it there; the heartbeat
		// marks the slot as soon as PostgreSQL answers.
		s.oweMark(e.Name, slot)
		s.Log.Warn("slot enqueued but not yet marked", slog.String("entry", e.Name), slog.Time("slot", slot), slog.String("error", err.Error()))
	}
	return f
}

// retryAfter is how long a slot whose enqueue failed waits before the next
// attempt: the next heartbeat after a first failure, then twice as long
// after each further one, up to five minutes, so that a long Redis outage
// costs a few firings an hour, not six a minute.
func (s *Scheduler) retryAfter(attempts int) time.Duration {
	if attempts <= 1 {
		return 0
	}
	d := s.heartbeat() << min(attempts-2, 10)
	return min(d, 5*time.Minute)
}

// report logs the firing ("scheduler fired", with entry, slot, outcome and
// task_id: drills and the chaos run count these lines), counts it and
// records it in PostgreSQL.
func (s *Scheduler) report(ctx context.Context, e Entry, slot time.Time, f firing) {
	metrics.SchedulerEnqueues.WithLabelValues(e.Name, f.outcome).Inc()
	attrs := []slog.Attr{
		slog.String("entry", e.Name),
		slog.Time("slot", slot),
		slog.String("task_id", f.taskID),
		slog.String("outcome", f.outcome),
	}
	if f.attempt > 1 {
		attrs = append(attrs, slog.Int("attempt", f.attempt))
	}
	if f.holder != "" {
		attrs = append(attrs, slog.String("holder", f.holder))
	}
	level := slog.LevelInfo
	errText := ""
	if f.err != nil {
		level = slog.LevelError
		errText = f.err.Error()
		attrs = append(attrs, slog.String("error", errText))
	}
	s.Log.LogAttrs(ctx, level, "scheduler fired", attrs...)

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.lease()/3)
	defer cancel()
	err := s.Store.RecordFiring(rctx, postgres.SchedulerFiring{
		SchedulerID: s.ID, Entry: e.Name, Slot: slot, Outcome: f.outcome, TaskID: f.taskID, Error: errText,
	})
	if err != nil {
		s.Log.Warn("firing not recorded", slog.String("entry", e.Name), slog.Time("slot", slot), slog.String("error", err.Error()))
	}
}

// retentionFor keeps a slot's task id for at least two intervals of its
// schedule, and never less than the retention tasks.Types gives its type.
func retentionFor(sched cron.Schedule, slot time.Time, taskType string) asynq.Option {
	next := sched.Next(slot)
	interval := sched.Next(next).Sub(next)
	return asynq.Retention(max(2*interval, tasks.Types[taskType].Retention))
}

// PrevSlot is the latest activation time of sched at or before now, looking
// back up to a year; zero when there is none.
func PrevSlot(sched cron.Schedule, now time.Time) time.Time {
	for _, back := range []time.Duration{2 * time.Minute, 2 * time.Hour, 49 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		var last time.Time
		for t := sched.Next(now.Add(-back)); !t.IsZero() && !t.After(now); t = sched.Next(t) {
			last = t
		}
		if !last.IsZero() {
			return last
		}
	}
	return time.Time{}
}

// NextRun is an entry's next activation after now, in now's location.
func NextRun(e Entry, now time.Time) (time.Time, error) {
	s, err := cron.ParseStandard(e.Spec)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", e.Env, err)
	}
	return s.Next(now), nil
}
