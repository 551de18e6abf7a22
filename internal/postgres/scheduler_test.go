package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
)

func TestSlotClaimLifecycle(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()
	slot := time.Date(2026, 11, 30, 10, 15, 0, 0, time.UTC)
	claim := func(by string, lease time.Duration) postgres.SlotClaimResult {
		t.Helper()
		r, err := store.ClaimSlot(ctx, postgres.SlotClaim{Entry: "overdue-scan", Slot: slot, TaskID: "cleaning:overdue_scan:2026-11-30T10:15:00Z", By: by, Lease: lease})
		require.NoError(t, err)
		return r
	}

	first := claim("a", time.Hour)
	assert.Equal(t, postgres.SlotClaimResult{Claimed: true, Attempts: 1}, first)
	assert.Equal(t, postgres.SlotClaimResult{Holder: "a", Attempts: 1}, claim("b", time.Hour), "a live claim keeps others off")

	pending, err := store.PendingSlots(ctx, []string{"overdue-scan"})
	require.NoError(t, err)
	assert.Empty(t, pending, "a claim under its lease is not pending")

	// a could not enqueue: it releases the slot, and b takes it over.
	require.NoError(t, store.ReleaseSlot(ctx, "overdue-scan", slot, "a", 0))
	pending, err = store.PendingSlots(ctx, []string{"overdue-scan", "weekly-summary"})
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Equal(t, "overdue-scan", pending[0].Entry)
	assert.True(t, slot.Equal(pending[0].Slot))
	assert.Equal(t, postgres.SlotClaimResult{Claimed: true, Attempts: 2}, claim("b", time.Hour))
	require.NoError(t, store.ReleaseSlot(ctx, "overdue-scan", slot, "a", 0), "a release by a former holder")
	assert.Equal(t, postgres.SlotClaimResult{Holder: "b", Attempts: 2}, claim("c", time.Hour), "changes nothing")

	require.NoError(t, store.MarkSlotEnqueued(ctx, "overdue-scan", slot, "b"))
	require.NoError(t, store.MarkSlotEnqueued(ctx, "overdue-scan", slot, "c"), "a second mark is no error")
	for _, by := range []string{"a", "b", "c"} {
		assert.Equal(t, postgres.SlotClaimResult{Enqueued: true, EnqueuedBy: "b", Attempts: 2}, claim(by, 0),
			"an enqueued slot is never handed out again, lease or not")
	}
}

func TestSlotClaimTakenOverAfterTheLease(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()
	slot := time.Date(2026, 11, 30, 10, 15, 0, 0, time.UTC)
	c := postgres.SlotClaim{Entry: "inbox-redrive", Slot: slot, TaskID: "x", By: "crashed", Lease: 200 * time.Millisecond}
	r, err := store.ClaimSlot(ctx, c)
	require.NoError(t, err)
	require.True(t, r.Claimed)
	// The holder dies before enqueueing; once its lease is over, the slot is
	// pending and anyone may claim it.
	require.Eventually(t, func() bool {
		p, err := store.PendingSlots(ctx, []string{"inbox-redrive"})
		return err == nil && len(p) == 1
	}, 10*time.Second, 50*time.Millisecond)
	c.By, c.Lease = "survivor", time.Minute
	r, err = store.ClaimSlot(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, postgres.SlotClaimResult{Claimed: true, Attempts: 2}, r)
}

// Only an entry's newest slot is pending: a newer slot supersedes an older
// one that was never enqueued.
func TestPendingSlotsNewestOnly(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for i, slot := range []time.Time{t0, t0.Add(time.Minute)} {
		_, err := store.ClaimSlot(ctx, postgres.SlotClaim{Entry: "inbox-redrive", Slot: slot, TaskID: "x", By: "a"})
		require.NoError(t, err, i)
	}
	p, err := store.PendingSlots(ctx, []string{"inbox-redrive"})
	require.NoError(t, err)
	require.Len(t, p, 1)
	assert.True(t, t0.Add(time.Minute).Equal(p[0].Slot))

	require.NoError(t, store.MarkSlotEnqueued(ctx, "inbox-redrive", t0.Add(time.Minute), "a"))
	p, err = store.PendingSlots(ctx, []string{"inbox-redrive"})
	require.NoError(t, err)
	assert.Empty(t, p, "the older slot stays superseded")
}

// Many schedulers claiming the same slot at once: exactly one gets it.
func TestSlotClaimRace(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()
	slot := time.Date(2026, 11, 30, 10, 15, 0, 0, time.UTC)
	const n = 8
	results := make([]postgres.SlotClaimResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = store.ClaimSlot(ctx, postgres.SlotClaim{Entry: "weekly-summary", Slot: slot, TaskID: "x", By: string(rune('a' + i)), Lease: time.Minute})
		}()
	}
	wg.Wait()
	claimed := 0
	for i := range n {
		require.NoError(t, errs[i])
		if results[i].Claimed {
			claimed++
		}
	}
	assert.Equal(t, 1, claimed)
}

func TestSchedulerRecordsAndPrune(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()
	started := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	next := time.Date(2026, 11, 30, 10, 15, 0, 0, time.UTC)
	in := postgres.SchedulerInstance{ID: "host-1-aaaa", Host: "host", PID: 1, StartedAt: started, LiveFor: time.Minute,
		Entries: []postgres.SchedulerEntry{{Entry: "overdue-scan", Spec: "*/15 * * * *", Env: "OVERDUE_SCAN_CRON", Timezone: "Europe/Berlin", NextRun: next}}}
	require.NoError(t, store.HeartbeatScheduler(ctx, in))
	in.Entries[0].NextRun = next.Add(15 * time.Minute)
	require.NoError(t, store.HeartbeatScheduler(ctx, in), "a heartbeat updates the entry")
	dead := postgres.SchedulerInstance{ID: "host-2-bbbb", Host: "host", PID: 2, StartedAt: started, LiveFor: time.Minute}
	require.NoError(t, store.HeartbeatScheduler(ctx, dead))
	require.NoError(t, store.StopScheduler(ctx, dead.ID))

	recs, err := store.Schedulers(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, "host-1-aaaa", recs[0].ID, "live first")
	assert.True(t, recs[0].Live)
	require.Len(t, recs[0].Entries, 1)
	assert.True(t, next.Add(15*time.Minute).Equal(recs[0].Entries[0].NextRun))
	assert.Equal(t, "Europe/Berlin", recs[0].Entries[0].Timezone)
	assert.False(t, recs[1].Live, "a stopped scheduler is not live")
	assert.NotNil(t, recs[1].StoppedAt)

	slot := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for _, f := range []postgres.SchedulerFiring{
		{SchedulerID: "host-1-aaaa", Entry: "overdue-scan", Slot: slot.Add(-15 * time.Minute), Outcome: "enqueued", TaskID: "t0"},
		{SchedulerID: "host-1-aaaa", Entry: "overdue-scan", Slot: slot, Outcome: "enqueued", TaskID: "t1"},
		{SchedulerID: "host-2-bbbb", Entry: "overdue-scan", Slot: slot, Outcome: "already_enqueued", TaskID: "t1"},
		{SchedulerID: "host-2-bbbb", Entry: "weekly-summary", Slot: slot, Outcome: "error", Error: "redis: connection refused"},
	} {
		require.NoError(t, store.RecordFiring(ctx, f))
	}
	last, err := store.LastFirings(ctx)
	require.NoError(t, err)
	require.Len(t, last, 2)
	assert.Equal(t, "overdue-scan", last[0].Entry)
	assert.Equal(t, "enqueued", last[0].Outcome, "the firing that enqueued the newest slot, though another came later")
	assert.Equal(t, "host-1-aaaa", last[0].SchedulerID)
	assert.True(t, slot.Equal(last[0].Slot))
	assert.Equal(t, "error", last[1].Outcome)
	assert.Equal(t, "redis: connection refused", last[1].Error)

	// Nothing is old enough yet.
	keep := postgres.SchedulerRetention{Firings: time.Hour, Slots: time.Hour, Schedulers: time.Hour}
	n, err := store.PruneSchedulerHistory(ctx, keep)
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = store.ClaimSlot(ctx, postgres.SlotClaim{Entry: "overdue-scan", Slot: time.Now().Add(-2 * time.Hour), TaskID: "old", By: "a"})
	require.NoError(t, err)
	_, err = store.DB.Exec(`UPDATE scheduler_firings SET fired_at = now() - interval '2 hours' WHERE task_id = 't0'`)
	require.NoError(t, err)
	_, err = store.DB.Exec(`UPDATE schedulers SET heartbeat_at = now() - interval '2 hours' WHERE id IN ('host-1-aaaa', 'host-2-bbbb')`)
	require.NoError(t, err)
	n, err = store.PruneSchedulerHistory(ctx, keep)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "one firing, one slot, the stopped scheduler; the live one stays")
	recs, err = store.Schedulers(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "host-1-aaaa", recs[0].ID)
}
