// Package scheduler drives CleanTrack's periodic work with robfig/cron: each
// firing enqueues one task whose TaskID names the cron slot, so any number of
// schedulers running together enqueue each slot once, and a slot missed while
// no scheduler ran is caught up at start.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/robfig/cron/v3"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// Outcomes of one firing, as logged and counted.
const (
	Enqueued        = "enqueued"
	AlreadyEnqueued = "already_enqueued"
	Failed          = "error"
)

// Entry is one periodic job: a cron spec and the task it enqueues for a slot.
type Entry struct {
	Name string // stable name, used in logs and metrics
	Env  string // the variable its spec comes from
	Spec string
	// Task builds the task for one slot; its TaskID must be derived from the
	// slot (tasks.SlotTaskID).
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
}

// Entries lists CleanTrack's periodic jobs with their specs. Parse (or
// Start) validates the specs.
func Entries(specs Specs) []Entry {
	return []Entry{
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
}

// Scheduler fires Entries on their specs in Location.
type Scheduler struct {
	Entries  []Entry
	Queue    queue.Enqueuer
	Location *time.Location
	Log      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	cron *cron.Cron
	wg   sync.WaitGroup
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

// Start parses the specs, catches up each entry's latest past slot (a no-op
// when another scheduler already enqueued it), logs each entry's next run and
// starts the cron. Stop ends it.
func (s *Scheduler) Start(ctx context.Context) error {
	entries, err := Parse(s.Entries)
	if err != nil {
		return err
	}
	s.Entries = entries
	s.cron = cron.New(cron.WithLocation(s.loc()))
	now := s.now().In(s.loc())
	for _, e := range s.Entries {
		e := e
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
			slog.Time("next_run", e.schedule.Next(now)))
	}
	s.cron.Start()
	return nil
}

// Stop stops the cron and waits for a firing in progress.
func (s *Scheduler) Stop() {
	if s.cron != nil {
		<-s.cron.Stop().Done()
	}
	s.wg.Wait()
}

// Fire enqueues e's task for slot and returns the outcome. The retention is
// raised above the entry's interval so that the slot's TaskID stays taken
// until the next slot: a late or second scheduler then finds it taken.
func (s *Scheduler) Fire(ctx context.Context, e Entry, slot time.Time) string {
	task, err := e.Task(slot)
	outcome := Enqueued
	var id string
	if err == nil {
		var opts []asynq.Option
		if e.schedule != nil {
			opts = append(opts, retentionFor(e.schedule, slot, task.Type()))
		}
		var info *asynq.TaskInfo
		var dup bool
		info, dup, err = queue.Enqueue(ctx, s.Queue, task, opts...)
		switch {
		case err != nil:
		case dup:
			outcome = AlreadyEnqueued
			id = tasks.SlotTaskID(task.Type(), slot)
		default:
			id = info.ID
		}
	}
	if err != nil {
		outcome = Failed
	}
	metrics.SchedulerEnqueues.WithLabelValues(e.Name, outcome).Inc()
	attrs := []slog.Attr{
		slog.String("entry", e.Name),
		slog.Time("slot", slot),
		slog.String("task_id", id),
		slog.String("outcome", outcome),
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.Log.LogAttrs(ctx, level, "scheduler fired", attrs...)
	return outcome
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

// NextRun is an entry's next activation after now, for `cleantrack schedule`.
func NextRun(e Entry, now time.Time) (time.Time, error) {
	s, err := cron.ParseStandard(e.Spec)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", e.Env, err)
	}
	return s.Next(now), nil
}
