package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/scheduler"
)

// rareEntries fire on Monday 06:00 and on New Year, so the real clock does
// not fire them during a test.
func rareEntries(weeklySpec string) []scheduler.Entry {
	return scheduler.Entries(scheduler.Specs{InboxRedrive: "0 0 1 1 *", OverdueScan: "0 0 1 1 *", WeeklySummary: weeklySpec})
}

func TestStatusShowsLiveSchedulersEntriesAndLastRuns(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	now := monday0600 // the schedulers' clock too

	// Nothing ran yet: the configuration, labelled as such.
	st, err := scheduler.ReadStatus(ctx, r.store, rareEntries("0 6 * * MON"), time.UTC, now)
	require.NoError(t, err)
	assert.Equal(t, scheduler.FromConfiguration, st.Source)
	assert.Empty(t, st.Live)
	assert.Nil(t, st.LastSeen)
	require.Len(t, st.Entries, 3)
	assert.Equal(t, "weekly-summary", st.Entries[2].Entry)
	assert.Equal(t, "WEEKLY_SUMMARY_CRON", st.Entries[2].Env)
	assert.True(t, st.Entries[2].NextRun.After(now))
	assert.Equal(t, time.Monday, st.Entries[2].NextRun.Weekday())
	assert.Nil(t, st.Entries[2].Last)

	// Two schedulers agree; a third was started with another weekly spec.
	a, b := r.scheduler(rareEntries("0 6 * * MON"), monday0600), r.scheduler(rareEntries("0 6 * * MON"), monday0600)
	c := r.scheduler(rareEntries("0 7 * * MON"), monday0600.Add(time.Hour))
	for _, s := range []*scheduler.Scheduler{a, b, c} {
		require.NoError(t, s.Start(ctx))
	}
	st, err = scheduler.ReadStatus(ctx, r.store, nil, time.UTC, now)
	require.NoError(t, err)
	assert.Equal(t, scheduler.FromSchedulers, st.Source)
	require.Len(t, st.Live, 3)
	assert.Nil(t, st.LastSeen)
	assert.Equal(t, []string{"weekly-summary"}, st.Disagreements())
	require.Len(t, st.Entries, 4)
	weekly := st.Entries[2]
	assert.Equal(t, "weekly-summary", weekly.Entry)
	assert.Equal(t, "0 6 * * MON", weekly.Spec, "the spec most schedulers run comes first")
	assert.ElementsMatch(t, []string{a.ID, b.ID}, weekly.Schedulers)
	assert.Equal(t, "UTC", weekly.Timezone)
	assert.Equal(t, time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC), weekly.NextRun, "the next run as the scheduler computed it")
	assert.Equal(t, "0 7 * * MON", st.Entries[3].Spec)
	assert.Equal(t, []string{c.ID}, st.Entries[3].Schedulers)
	// The newest slot is c's 07:00, which it enqueued.
	require.NotNil(t, weekly.Last)
	assert.Equal(t, time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC), weekly.Last.Slot)
	assert.Equal(t, scheduler.Enqueued, weekly.Last.Outcome)
	assert.Equal(t, "report:weekly_summary:2026-11-23T07:00:00Z", weekly.Last.TaskID)
	assert.Equal(t, c.ID, weekly.Last.Scheduler)

	// A firing that failed shows with its error.
	broken := r.scheduler(rareEntries("0 6 * * MON"), monday0600)
	broken.Entries[1].Task = func(time.Time) (*asynq.Task, error) {
		return nil, assert.AnError
	}
	require.NoError(t, broken.Start(ctx))
	defer broken.Stop()
	_ = broken.Fire(ctx, mustParse(t, broken.Entries)[1], time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	st, err = scheduler.ReadStatus(ctx, r.store, nil, time.UTC, now)
	require.NoError(t, err)
	require.Equal(t, "overdue-scan", st.Entries[1].Entry)
	require.NotNil(t, st.Entries[1].Last)
	assert.Equal(t, scheduler.Failed, st.Entries[1].Last.Outcome)
	assert.Contains(t, st.Entries[1].Last.Error, "build task")
	broken.Stop()

	// All stopped: none is live, the last one seen is named, the entries
	// are the configuration's again, and the history stays.
	for _, s := range []*scheduler.Scheduler{a, b, c} {
		s.Stop()
	}
	st, err = scheduler.ReadStatus(ctx, r.store, rareEntries("0 6 * * MON"), time.UTC, now)
	require.NoError(t, err)
	assert.Equal(t, scheduler.FromConfiguration, st.Source)
	assert.Empty(t, st.Live)
	require.NotNil(t, st.LastSeen)
	assert.NotNil(t, st.LastSeen.StoppedAt)
	require.Len(t, st.Entries, 3)
	assert.Empty(t, st.Entries[2].Schedulers)
	require.NotNil(t, st.Entries[2].Last)
	assert.Equal(t, "report:weekly_summary:2026-11-23T07:00:00Z", st.Entries[2].Last.TaskID)
}

// A scheduler that dies without stopping drops out of the live list three
// heartbeats after its last one.
func TestDeadSchedulerDropsOutOfLive(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := r.scheduler(rareEntries("0 6 * * MON"), monday0600)
	s.Heartbeat = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, s.Start(ctx))
	defer s.Stop()

	st, err := scheduler.ReadStatus(context.Background(), r.store, nil, time.UTC, time.Now())
	require.NoError(t, err)
	require.Len(t, st.Live, 1)
	// It keeps beating: it stays live past the first bound.
	time.Sleep(4 * time.Second)
	st, err = scheduler.ReadStatus(context.Background(), r.store, nil, time.UTC, time.Now())
	require.NoError(t, err)
	require.Len(t, st.Live, 1, "a beating scheduler stays live")

	cancel() // its heartbeat stops, as if the process hung or lost its network
	require.Eventually(t, func() bool {
		st, err := scheduler.ReadStatus(context.Background(), r.store, nil, time.UTC, time.Now())
		return err == nil && len(st.Live) == 0 && st.LastSeen != nil && st.LastSeen.ID == s.ID && st.LastSeen.StoppedAt == nil
	}, 15*time.Second, 100*time.Millisecond)
}

func mustParse(t *testing.T, entries []scheduler.Entry) []scheduler.Entry {
	t.Helper()
	out, err := scheduler.Parse(entries)
	require.NoError(t, err)
	return out
}

// Between heartbeats a recorded next run may have passed; the status then
// gives the next one by the recorded spec and zone.
func TestStatusNextRunAfterARecordedOneHasPassed(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	s := r.scheduler(rareEntries("0 6 * * MON"), monday0600)
	s.Location = berlin
	require.NoError(t, s.Start(context.Background()))
	defer s.Stop()
	later := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st, err := scheduler.ReadStatus(context.Background(), r.store, nil, time.UTC, later)
	require.NoError(t, err)
	weekly := st.Entries[2]
	assert.Equal(t, "Europe/Berlin", weekly.Timezone)
	assert.Equal(t, time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC), weekly.NextRun, "Monday 06:00 in Berlin")
}
