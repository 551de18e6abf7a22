package scheduler

import (
	"context"
	"sort"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/cleantrack/jobs/internal/postgres"
)

// Where Status.Entries come from.
const (
	// FromSchedulers: the entries the live schedulers run, as they parsed
	// them from their own environment.
	FromSchedulers = "schedulers"
	// FromConfiguration: no scheduler is live; the entries are what the
	// reader's configuration would run.
	FromConfiguration = "configuration"
)

// Status is what the schedulers recorded in PostgreSQL: who runs, what each
// entry runs on, and how its latest slot went. `cleantrack schedule` and the
// admin Schedules page show it. Times are UTC, to the second.
type Status struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Live lists the schedulers running now: not stopped, and heard from
	// within three of their heartbeats.
	Live []Instance `json:"live_schedulers"`
	// LastSeen is the scheduler heard from last, when none is live (nil when
	// none ever ran against this database).
	LastSeen *Instance `json:"last_seen,omitempty"`
	// Source is FromSchedulers or FromConfiguration.
	Source  string        `json:"source"`
	Entries []EntryStatus `json:"entries"`
}

// Instance is one scheduler process.
type Instance struct {
	ID          string     `json:"id"`
	Host        string     `json:"host"`
	PID         int        `json:"pid"`
	StartedAt   time.Time  `json:"started_at"`
	HeartbeatAt time.Time  `json:"heartbeat_at"`
	StoppedAt   *time.Time `json:"stopped_at,omitempty"`
}

// EntryStatus is one entry: its spec, zone and next run, and its latest
// slot's outcome. When live schedulers disagree on an entry's spec or zone,
// the entry appears once for each.
type EntryStatus struct {
	Entry    string    `json:"entry"`
	Spec     string    `json:"spec"`
	Timezone string    `json:"timezone"`
	Env      string    `json:"env"`
	NextRun  time.Time `json:"next_run"`
	// Schedulers are the live schedulers running the entry this way (none
	// when Source is FromConfiguration).
	Schedulers []string `json:"schedulers"`
	// Last is the entry's newest fired slot, nil when it never fired.
	Last *LastFiring `json:"last,omitempty"`
}

// LastFiring is how an entry's newest slot went: "enqueued" when a
// scheduler enqueued it, otherwise the latest firing's outcome.
type LastFiring struct {
	Slot      time.Time `json:"slot"`
	Outcome   string    `json:"outcome"`
	TaskID    string    `json:"task_id"`
	Error     string    `json:"error,omitempty"`
	FiredAt   time.Time `json:"fired_at"`
	Scheduler string    `json:"scheduler"`
}

// ReadStatus reads the schedulers' records. When no scheduler is live, the
// entries are configured (the reader's own, from Entries), with next runs
// from now in loc, and Source says so.
func ReadStatus(ctx context.Context, store *postgres.Store, configured []Entry, loc *time.Location, now time.Time) (Status, error) {
	recs, err := store.Schedulers(ctx)
	if err != nil {
		return Status{}, err
	}
	firings, err := store.LastFirings(ctx)
	if err != nil {
		return Status{}, err
	}
	st := Status{GeneratedAt: utc(now), Live: []Instance{}, Entries: []EntryStatus{}}
	type key struct{ entry, spec, zone string }
	grouped := map[key]*EntryStatus{}
	for _, r := range recs {
		if !r.Live {
			if st.LastSeen == nil && len(st.Live) == 0 {
				in := instance(r)
				st.LastSeen = &in
			}
			continue
		}
		st.Live = append(st.Live, instance(r))
		for _, e := range r.Entries {
			k := key{e.Entry, e.Spec, e.Timezone}
			next := nextRun(e, now)
			g := grouped[k]
			if g == nil {
				g = &EntryStatus{Entry: e.Entry, Spec: e.Spec, Timezone: e.Timezone, Env: e.Env, NextRun: next}
				grouped[k] = g
			}
			if next.Before(g.NextRun) {
				g.NextRun = next
			}
			g.Schedulers = append(g.Schedulers, r.ID)
		}
	}
	if len(st.Live) > 0 {
		st.Source = FromSchedulers
		st.LastSeen = nil
		for _, g := range grouped {
			st.Entries = append(st.Entries, *g)
		}
	} else {
		st.Source = FromConfiguration
		entries, err := Parse(configured)
		if err != nil {
			return Status{}, err
		}
		if loc == nil {
			loc = time.UTC
		}
		for _, e := range entries {
			st.Entries = append(st.Entries, EntryStatus{
				Entry: e.Name, Spec: e.Spec, Timezone: loc.String(), Env: e.Env,
				NextRun: utc(e.schedule.Next(now.In(loc))), Schedulers: []string{},
			})
		}
	}
	last := map[string]*LastFiring{}
	for _, f := range firings {
		last[f.Entry] = &LastFiring{
			Slot: utc(f.Slot), Outcome: f.Outcome, TaskID: f.TaskID, Error: f.Error,
			FiredAt: utc(f.FiredAt), Scheduler: f.SchedulerID,
		}
	}
	for i := range st.Entries {
		st.Entries[i].Last = last[st.Entries[i].Entry]
	}
	sort.Slice(st.Entries, func(i, j int) bool {
		a, b := st.Entries[i], st.Entries[j]
		if a.Entry != b.Entry {
			return a.Entry < b.Entry
		}
		return len(a.Schedulers) > len(b.Schedulers)
	})
	return st, nil
}

// Disagreements lists the entries that live schedulers run with different
// specs or zones: a scheduler started with another environment.
func (st Status) Disagreements() []string {
	seen := map[string]int{}
	var out []string
	for _, e := range st.Entries {
		seen[e.Entry]++
		if seen[e.Entry] == 2 {
			out = append(out, e.Entry)
		}
	}
	return out
}

// nextRun is the next run a scheduler recorded for e, or, when that has
// passed since its last heartbeat, the next one after now by e's recorded
// spec and zone.
func nextRun(e postgres.SchedulerEntry, now time.Time) time.Time {
	if e.NextRun.After(now) {
		return utc(e.NextRun)
	}
	sched, err := cron.ParseStandard(e.Spec)
	if err != nil {
		return utc(e.NextRun)
	}
	loc, err := time.LoadLocation(e.Timezone)
	if err != nil {
		loc = time.UTC
	}
	return utc(sched.Next(now.In(loc)))
}

func instance(r postgres.SchedulerRecord) Instance {
	in := Instance{ID: r.ID, Host: r.Host, PID: r.PID, StartedAt: utc(r.StartedAt), HeartbeatAt: utc(r.HeartbeatAt)}
	if r.StoppedAt != nil {
		t := utc(*r.StoppedAt)
		in.StoppedAt = &t
	}
	return in
}

func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
