//go:build bench

package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/stripetest"
)

// Ceilings are the raw rates of this machine's Redis and PostgreSQL, measured
// without any CleanTrack code in the path. Every other figure is read against
// them.
type Ceilings struct {
	EnqueuePerSec   float64 `json:"asynq_enqueue_per_sec"`
	EnqueueWorkers  int     `json:"asynq_enqueue_goroutines"`
	NoopPerSec      float64 `json:"asynq_noop_process_per_sec"`
	NoopConcurrency int     `json:"asynq_noop_concurrency"`
	// PGInsertPerSec is the better of the rates at 16 and at 32 connections.
	PGInsertPerSec   float64 `json:"pg_insert_commit_per_sec"`
	PGInsert16PerSec float64 `json:"pg_insert_commit_per_sec_16"`
	PGInsert32PerSec float64 `json:"pg_insert_commit_per_sec_32"`
}

// Lower is the lower of the asynq enqueue and PostgreSQL insert ceilings: the
// webhook intake does one of each per request, so it cannot beat either.
func (c Ceilings) Lower() float64 { return min(c.EnqueuePerSec, c.PGInsertPerSec) }

// MeasureCeilings measures the asynq enqueue rate with enqueuers goroutines,
// the no-op processing rate with concurrency workers (both on the Redis
// database rdb, flushed before each) and the single-row insert-and-commit rate
// of PostgreSQL at 16 and at 32 connections, in a scratch table of db.
func MeasureCeilings(ctx context.Context, rdb *RedisDB, db *sql.DB, enqueuers, concurrency int, d time.Duration) (Ceilings, error) {
	c := Ceilings{EnqueueWorkers: enqueuers, NoopConcurrency: concurrency}
	var err error
	if c.EnqueuePerSec, err = enqueueRate(ctx, rdb, enqueuers, d); err != nil {
		return c, err
	}
	if c.NoopPerSec, err = noopRate(ctx, rdb, concurrency, 30000); err != nil {
		return c, err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bench_ceiling (event_id text PRIMARY KEY, payload jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return c, fmt.Errorf("create ceiling table: %w", err)
	}
	if c.PGInsert16PerSec, err = insertRate(ctx, db, enqueuers, d); err != nil {
		return c, err
	}
	if c.PGInsert32PerSec, err = insertRate(ctx, db, concurrency, d); err != nil {
		return c, err
	}
	c.PGInsertPerSec = max(c.PGInsert32PerSec, c.PGInsert16PerSec)
	return c, nil
}

// enqueueRate runs n goroutines enqueuing small tasks with a TaskID each (as
// the webhook does) for d.
func enqueueRate(ctx context.Context, rdb *RedisDB, n int, d time.Duration) (float64, error) {
	rdb.Flush(ctx)
	opt, err := asynq.ParseRedisURI(rdb.URL)
	if err != nil {
		return 0, err
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	var count atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				id := "g" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				t := asynq.NewTask("bench:noop", []byte(`{"event_id":"`+id+`","type":"customer.subscription.updated"}`))
				if _, err := client.EnqueueContext(ctx, t, asynq.Queue("critical"), asynq.TaskID(id)); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				count.Add(1)
			}
		}(g)
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, fmt.Errorf("enqueue ceiling: %w", err)
	}
	return float64(count.Load()) / time.Since(start).Seconds(), nil
}

// noopRate enqueues total tasks, then times an asynq.Server with a handler
// that does nothing until all of them have run.
func noopRate(ctx context.Context, rdb *RedisDB, concurrency, total int) (float64, error) {
	rdb.Flush(ctx)
	opt, err := asynq.ParseRedisURI(rdb.URL)
	if err != nil {
		return 0, err
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < total; i += 16 {
				t := asynq.NewTask("bench:noop", []byte(`{}`))
				if _, err := client.EnqueueContext(ctx, t, asynq.Queue("critical")); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, fmt.Errorf("fill queue: %w", err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(total) {
			close(all)
		}
		return nil
	})
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: concurrency,
		Queues:      map[string]int{"critical": 6, "default": 3, "low": 1},
		LogLevel:    asynq.FatalLevel,
	})
	start := time.Now()
	if err := srv.Start(mux); err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("no-op ceiling: only %d of %d tasks ran in 5 minutes", done.Load(), total)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// insertRate runs n goroutines, each inserting one row per transaction
// (autocommit) for d. The row is the size of an inbox row: a real
// subscription event body as jsonb, keyed by a unique text id, so the ceiling
// measures the same work PostgreSQL does for each webhook.
func insertRate(ctx context.Context, db *sql.DB, n int, d time.Duration) (float64, error) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	now := time.Now()
	payload := string(stripetest.MustBuildEvent(stripetest.EventOptions{
		Type: "customer.subscription.updated", ID: "evt_ceiling", Created: now, Shape: stripetest.Shape2025,
		SubscriptionID: "sub_ceiling", CustomerID: "cus_ceiling", Status: "active", PriceID: "price_trial_monthly", PeriodEnd: now.AddDate(0, 1, 0),
	}))
	var count atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				const q = `INSERT INTO bench_ceiling (event_id, payload) VALUES ($1, $2)`
				if _, err := db.ExecContext(ctx, q, fmt.Sprintf("evt_%d_%d_%d", n, g, i), payload); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				count.Add(1)
			}
		}(g)
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, fmt.Errorf("insert ceiling: %w", err)
	}
	return float64(count.Load()) / time.Since(start).Seconds(), nil
}
