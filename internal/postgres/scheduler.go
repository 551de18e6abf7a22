package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// SlotClaim asks for the right to enqueue one cron slot of one entry.
type SlotClaim struct {
	Entry  string
	Slot   time.Time
	TaskID string
	// By is the claiming scheduler's id.
	By string
	// Lease is how long no other scheduler may take the claim over while
	// it is not marked enqueued.
	Lease time.Duration
}

// SlotClaimResult is what ClaimSlot found. Exactly one of Claimed and
// Enqueued is true, or neither when another scheduler holds a live claim
// (Holder).
type SlotClaimResult struct {
	// Claimed: the caller holds the claim and must enqueue the task, then
	// call MarkSlotEnqueued (or ReleaseSlot when the enqueue failed).
	Claimed bool
	// Attempts counts the claims of the slot so far, this one included.
	Attempts int
	// Enqueued: the slot was enqueued already, by EnqueuedBy.
	Enqueued   bool
	EnqueuedBy string
	// Holder is the scheduler whose claim is still live.
	Holder string
}

// ClaimSlot claims c's slot, in one statement: the first scheduler to ask
// inserts its row and gets it; another gets it only once the holder's lease
// has run out without the slot being marked enqueued (the holder died or
// could not reach Redis). A slot marked enqueued is never claimed again, so
// however often it is fired, and whatever Redis lost, it is enqueued once.
// It keeps no session state and works through PgBouncer in transaction mode.
func (s *Store) ClaimSlot(ctx context.Context, c SlotClaim) (SlotClaimResult, error) {
	const q = `
INSERT INTO scheduler_slots AS s (entry, slot, task_id, claimed_by, lease_until)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
ON CONFLICT (entry, slot) DO UPDATE
   SET claimed_by = EXCLUDED.claimed_by, claimed_at = now(),
       lease_until = EXCLUDED.lease_until, attempts = s.attempts + 1
 WHERE s.enqueued_at IS NULL AND s.lease_until <= now()
RETURNING s.attempts`
	var attempts int
	err := s.DB.GetContext(ctx, &attempts, q, c.Entry, c.Slot.UTC(), c.TaskID, c.By, c.Lease.Seconds())
	if err == nil {
		return SlotClaimResult{Claimed: true, Attempts: attempts}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return SlotClaimResult{}, fmt.Errorf("claim slot %s %s: %w", c.Entry, c.Slot.UTC().Format(time.RFC3339), err)
	}
	// Someone else has it. The row only moves from claimed to enqueued, so
	// reading it after the fact cannot report a claim that was never made.
	const read = `SELECT claimed_by, attempts, enqueued_by FROM scheduler_slots WHERE entry = $1 AND slot = $2`
	var row struct {
		ClaimedBy  string         `db:"claimed_by"`
		Attempts   int            `db:"attempts"`
		EnqueuedBy sql.NullString `db:"enqueued_by"`
	}
	if err := s.DB.GetContext(ctx, &row, read, c.Entry, c.Slot.UTC()); err != nil {
		return SlotClaimResult{}, fmt.Errorf("read slot %s %s: %w", c.Entry, c.Slot.UTC().Format(time.RFC3339), err)
	}
	if row.EnqueuedBy.Valid {
		return SlotClaimResult{Enqueued: true, EnqueuedBy: row.EnqueuedBy.String, Attempts: row.Attempts}, nil
	}
	return SlotClaimResult{Holder: row.ClaimedBy, Attempts: row.Attempts}, nil
}

// MarkSlotEnqueued records that the slot's task reached Redis (or was there
// already). From then on ClaimSlot never hands the slot out again. Marking a
// slot twice keeps the first mark.
func (s *Store) MarkSlotEnqueued(ctx context.Context, entry string, slot time.Time, by string) error {
	const q = `
UPDATE scheduler_slots SET enqueued_at = now(), enqueued_by = $3
 WHERE entry = $1 AND slot = $2 AND enqueued_at IS NULL`
	if _, err := s.DB.ExecContext(ctx, q, entry, slot.UTC(), by); err != nil {
		return fmt.Errorf("mark slot %s %s enqueued: %w", entry, slot.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// ReleaseSlot shortens by's lease on a slot it could not enqueue to
// retryAfter from now, so that the sweep of any scheduler (PendingSlots)
// tries again then rather than after the whole lease.
func (s *Store) ReleaseSlot(ctx context.Context, entry string, slot time.Time, by string, retryAfter time.Duration) error {
	const q = `
UPDATE scheduler_slots SET lease_until = now() + make_interval(secs => $4)
 WHERE entry = $1 AND slot = $2 AND claimed_by = $3 AND enqueued_at IS NULL`
	if _, err := s.DB.ExecContext(ctx, q, entry, slot.UTC(), by, retryAfter.Seconds()); err != nil {
		return fmt.Errorf("release slot %s %s: %w", entry, slot.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// PendingSlot is a claimed slot whose task never reached Redis.
type PendingSlot struct {
	Entry string    `db:"entry"`
	Slot  time.Time `db:"slot"`
}

// PendingSlots lists, for each of entries, its newest slot when that slot
// was claimed but never marked enqueued and its lease has run out. Older
// unfinished slots are left alone: a newer slot of the entry supersedes
// them, as the catch-up at start only fires an entry's latest slot.
func (s *Store) PendingSlots(ctx context.Context, entries []string) ([]PendingSlot, error) {
	const q = `
SELECT n.entry, n.slot
  FROM unnest($1::text[]) AS e (entry)
 CROSS JOIN LATERAL (
       SELECT entry, slot, enqueued_at, lease_until
         FROM scheduler_slots s
        WHERE s.entry = e.entry
        ORDER BY s.slot DESC
        LIMIT 1) n
 WHERE n.enqueued_at IS NULL AND n.lease_until <= now()
 ORDER BY n.entry`
	var out []PendingSlot
	if err := s.DB.SelectContext(ctx, &out, q, pq.Array(entries)); err != nil {
		return nil, fmt.Errorf("pending slots: %w", err)
	}
	return out, nil
}

// SchedulerEntry is one entry as a running scheduler parsed it.
type SchedulerEntry struct {
	Entry    string    `db:"entry" json:"entry"`
	Spec     string    `db:"spec" json:"spec"`
	Env      string    `db:"env" json:"env"`
	Timezone string    `db:"timezone" json:"timezone"`
	NextRun  time.Time `db:"next_run" json:"next_run"`
}

// SchedulerInstance is one scheduler process as it registers itself.
type SchedulerInstance struct {
	ID        string
	Host      string
	PID       int
	StartedAt time.Time
	// LiveFor is how long it counts as live after this heartbeat.
	LiveFor time.Duration
	Entries []SchedulerEntry
}

// HeartbeatScheduler records that the scheduler is running with its entries
// and their next runs, inserting it the first time, in one short
// transaction. It counts as live until LiveFor from now (database time)
// unless StopScheduler says otherwise.
func (s *Store) HeartbeatScheduler(ctx context.Context, in SchedulerInstance) error {
	const upsert = `
INSERT INTO schedulers (id, host, pid, started_at, heartbeat_at, live_until)
VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5))
ON CONFLICT (id) DO UPDATE
   SET heartbeat_at = now(), live_until = EXCLUDED.live_until, stopped_at = NULL`
	const entry = `
INSERT INTO scheduler_entries (scheduler_id, entry, spec, env, timezone, next_run)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (scheduler_id, entry) DO UPDATE
   SET spec = EXCLUDED.spec, env = EXCLUDED.env, timezone = EXCLUDED.timezone, next_run = EXCLUDED.next_run`
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, upsert, in.ID, in.Host, in.PID, in.StartedAt.UTC(), in.LiveFor.Seconds()); err != nil {
			return err
		}
		for _, e := range in.Entries {
			if _, err := tx.ExecContext(ctx, entry, in.ID, e.Entry, e.Spec, e.Env, e.Timezone, e.NextRun.UTC()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scheduler %s heartbeat: %w", in.ID, err)
	}
	return nil
}

// StopScheduler marks the scheduler stopped: it is no longer live, at once.
func (s *Store) StopScheduler(ctx context.Context, id string) error {
	const q = `UPDATE schedulers SET stopped_at = now() WHERE id = $1`
	if _, err := s.DB.ExecContext(ctx, q, id); err != nil {
		return fmt.Errorf("scheduler %s stop: %w", id, err)
	}
	return nil
}

// SchedulerRecord is a scheduler as recorded, with its entries.
type SchedulerRecord struct {
	ID          string     `db:"id"`
	Host        string     `db:"host"`
	PID         int        `db:"pid"`
	StartedAt   time.Time  `db:"started_at"`
	HeartbeatAt time.Time  `db:"heartbeat_at"`
	StoppedAt   *time.Time `db:"stopped_at"`
	// Live: not stopped, and its last heartbeat is recent enough.
	Live    bool `db:"live"`
	Entries []SchedulerEntry
}

// Schedulers lists the recorded schedulers, live ones first, newest
// heartbeat first, with their entries. Stopped or dead schedulers stay listed
// until PruneSchedulerHistory removes them.
func (s *Store) Schedulers(ctx context.Context) ([]SchedulerRecord, error) {
	const q = `
SELECT id, host, pid, started_at, heartbeat_at, stopped_at,
       (stopped_at IS NULL AND live_until > now()) AS live
  FROM schedulers
 ORDER BY live DESC, heartbeat_at DESC, id`
	const entries = `
SELECT scheduler_id, entry, spec, env, timezone, next_run
  FROM scheduler_entries
 ORDER BY scheduler_id, entry`
	var out []SchedulerRecord
	if err := s.DB.SelectContext(ctx, &out, q); err != nil {
		return nil, fmt.Errorf("list schedulers: %w", err)
	}
	var rows []struct {
		SchedulerID string `db:"scheduler_id"`
		SchedulerEntry
	}
	if err := s.DB.SelectContext(ctx, &rows, entries); err != nil {
		return nil, fmt.Errorf("list scheduler entries: %w", err)
	}
	byID := map[string]*SchedulerRecord{}
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	for _, r := range rows {
		if rec := byID[r.SchedulerID]; rec != nil {
			rec.Entries = append(rec.Entries, r.SchedulerEntry)
		}
	}
	return out, nil
}

// SchedulerFiring is one firing of one scheduler: the outcome of its attempt
// to enqueue a slot.
type SchedulerFiring struct {
	SchedulerID string    `db:"scheduler_id"`
	Entry       string    `db:"entry"`
	Slot        time.Time `db:"slot"`
	// Outcome is enqueued, already_enqueued, already_claimed or error.
	Outcome string    `db:"outcome"`
	TaskID  string    `db:"task_id"`
	Error   string    `db:"error"`
	FiredAt time.Time `db:"fired_at"`
}

// RecordFiring stores one firing; FiredAt is the database's now().
func (s *Store) RecordFiring(ctx context.Context, f SchedulerFiring) error {
	const q = `
INSERT INTO scheduler_firings (scheduler_id, entry, slot, outcome, task_id, error)
VALUES ($1, $2, $3, $4, $5, $6)`
	if _, err := s.DB.ExecContext(ctx, q, f.SchedulerID, f.Entry, f.Slot.UTC(), f.Outcome, f.TaskID, f.Error); err != nil {
		return fmt.Errorf("record firing of %s %s: %w", f.Entry, f.Slot.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// LastFirings gives, for every entry that has fired, one firing of its
// newest slot: the one that enqueued it when there is one, else the latest.
func (s *Store) LastFirings(ctx context.Context) ([]SchedulerFiring, error) {
	const q = `
WITH newest AS (
    SELECT entry, max(slot) AS slot FROM scheduler_firings GROUP BY entry
)
SELECT DISTINCT ON (f.entry) f.scheduler_id, f.entry, f.slot, f.outcome, f.task_id, f.error, f.fired_at
  FROM scheduler_firings f
  JOIN newest n ON n.entry = f.entry AND n.slot = f.slot
 ORDER BY f.entry, (f.outcome = 'enqueued') DESC, f.fired_at DESC, f.id DESC`
	var out []SchedulerFiring
	if err := s.DB.SelectContext(ctx, &out, q); err != nil {
		return nil, fmt.Errorf("last firings: %w", err)
	}
	return out, nil
}

// SchedulerRetention says how long PruneSchedulerHistory keeps each kind of
// row.
type SchedulerRetention struct {
	Firings time.Duration // by fired_at
	// Slots must outlast the oldest slot a catch-up may fire, or a pruned
	// slot could be enqueued again.
	Slots time.Duration
	// Schedulers: dead or stopped ones, by their last heartbeat.
	Schedulers time.Duration
}

// PruneSchedulerHistory deletes firings, slots and dead schedulers older
// than r says, one statement each, and returns how many rows went.
func (s *Store) PruneSchedulerHistory(ctx context.Context, r SchedulerRetention) (int64, error) {
	stmts := []struct {
		q   string
		age time.Duration
	}{
		{`DELETE FROM scheduler_firings WHERE fired_at < now() - make_interval(secs => $1)`, r.Firings},
		{`DELETE FROM scheduler_slots WHERE slot < now() - make_interval(secs => $1)`, r.Slots},
		{`DELETE FROM schedulers WHERE heartbeat_at < now() - make_interval(secs => $1)
		     AND (stopped_at IS NOT NULL OR live_until < now())`, r.Schedulers},
	}
	var total int64
	for _, st := range stmts {
		res, err := s.DB.ExecContext(ctx, st.q, st.age.Seconds())
		if err != nil {
			return total, fmt.Errorf("prune scheduler history: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
