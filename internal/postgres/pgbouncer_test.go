package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgbouncertest"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
)

func TestPoolerSafeURL(t *testing.T) {
	cases := map[string]string{
		"postgres://u:p@h:6432/db?sslmode=disable":                      "postgres://u:p@h:6432/db?binary_parameters=yes&sslmode=disable",
		"postgresql://h/db":                                             "postgresql://h/db?binary_parameters=yes",
		"postgres://h/db?binary_parameters=no":                          "postgres://h/db?binary_parameters=no",
		"host=h port=6432 dbname=db sslmode=disable":                    "host=h port=6432 dbname=db sslmode=disable binary_parameters=yes",
		"host=h dbname=db binary_parameters=no":                         "host=h dbname=db binary_parameters=no",
		"postgres://h/db?sslmode=disable&application_name=cleantrack-x": "postgres://h/db?application_name=cleantrack-x&binary_parameters=yes&sslmode=disable",
	}
	for in, want := range cases {
		got, err := postgres.PoolerSafeURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := postgres.PoolerSafeURL("postgres://u:s3cret@h:bad port/db")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
}

// pgError is the SQLSTATE of err, or "" when it is not a PostgreSQL error.
func pgError(err error) string {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return string(pqErr.Code)
	}
	return ""
}

// hammer runs up to perClient parameterised statements outside any
// transaction from clients goroutines at once and counts, by SQLSTATE, the
// statements that failed or answered for another client. It stops early once
// stop says so.
func hammer(ctx context.Context, db *sql.DB, clients, perClient int, stop func(map[string]int) bool) map[string]int {
	var mu sync.Mutex
	bad := map[string]int{}
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				want := int64(c*100000 + i)
				var got int64
				// Statements of different parameter counts, as the store's
				// are, so a Bind that lands on another client's statement
				// shows as 08P01.
				var err error
				if i%2 == 0 {
					err = db.QueryRowContext(ctx, `SELECT $1::int8`, want).Scan(&got)
				} else {
					err = db.QueryRowContext(ctx, `SELECT $1::int8 + $2::int8 - $3::int8`, want, 1, 1).Scan(&got)
				}
				mu.Lock()
				switch {
				case err != nil && pgError(err) != "":
					bad[pgError(err)]++
				case err != nil:
					bad["other: "+err.Error()]++
				case got != want:
					bad["wrong answer"]++
				}
				done := stop(bad)
				mu.Unlock()
				if done {
					return
				}
			}
		}()
	}
	wg.Wait()
	return bad
}

// The issue this reproduces: lib/pq's two round trips per statement outside
// a transaction break under PgBouncer's transaction mode (26000, 08P01), and
// the store's binary_parameters=yes fixes them.
func TestThroughPgBouncerInTransactionMode(t *testing.T) {
	t.Parallel()
	direct := pgtest.NewURL(t)
	// Two server connections for 24 clients: they share them all the time.
	pgb := pgbouncertest.StartT(t, direct, 2)
	through := pgb.URL(direct)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("lib/pq as it comes breaks", func(t *testing.T) {
		db, err := sql.Open("postgres", through)
		require.NoError(t, err)
		defer db.Close()
		db.SetMaxOpenConns(24)
		bad := hammer(ctx, db, 24, 400, func(bad map[string]int) bool { return bad["26000"]+bad["08P01"] >= 50 })
		t.Logf("without binary_parameters: %v", bad)
		assert.True(t, bad["26000"]+bad["08P01"] > 0,
			"expected unnamed prepared statement errors (26000) or Binds on another client's statement (08P01), got %v", bad)
	})

	t.Run("the store works", func(t *testing.T) {
		store, err := postgres.Open(ctx, through)
		require.NoError(t, err)
		defer store.Close()
		bad := hammer(ctx, store.DB.DB, 24, 400, func(map[string]int) bool { return false })
		assert.Empty(t, bad, "every statement through PgBouncer answered, and for its own client")

		// The store's own statements, concurrent: events recorded once,
		// one claim per slot.
		slot := time.Date(2026, 11, 30, 10, 15, 0, 0, time.UTC)
		var wg sync.WaitGroup
		var mu sync.Mutex
		dups, claims := 0, 0
		var errs []error
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("evt_pgb_%d", i%8)
				dup, err := store.InsertStripeEvent(ctx, postgres.StripeEvent{ID: id, Type: "customer.created",
					APIVersion: "2023-10-16", CreatedAt: slot, Payload: []byte(`{"id":"` + id + `","data":{"object":{}}}`)})
				res, cerr := store.ClaimSlot(ctx, postgres.SlotClaim{Entry: "overdue-scan", Slot: slot,
					TaskID: "overdue-scan:x", By: fmt.Sprintf("s%d", i), Lease: time.Minute})
				mu.Lock()
				defer mu.Unlock()
				errs = append(errs, err, cerr)
				if dup {
					dups++
				}
				if res.Claimed {
					claims++
				}
			}()
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		assert.Equal(t, 8, dups, "8 events posted twice: 8 duplicates")
		assert.Equal(t, 1, claims, "one scheduler claims the slot")
	})
}
