//go:build trybench

package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
)

func envInt(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }

func TestTry(t *testing.T) {
	ctx := context.Background()
	store, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:5432/ct_bench_try?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := LockRedisDB(ctx, "redis://127.0.0.1:6379")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Release()
	ro, _ := asynq.ParseRedisURI(rdb.URL)
	client := asynq.NewClient(ro)
	now := time.Now()
	svc := compliance.New(store, email.NewService(client), client, slog.New(slog.NewTextHandler(io.Discard, nil)), compliance.Options{SiteURL: "x",
		ScanBatch: envInt("BATCH"), ScanWorkers: envInt("WORKERS"), EnqueueWorkers: envInt("ENQ"), Now: func() time.Time { return now }})
	var bestBare, bestScan time.Duration
	for i := 0; i < 3; i++ {
		store.DB.Exec("TRUNCATE alerts, weekly_reports")
		rdb.Flush(ctx)
		t0 := time.Now()
		store.BareOverdueIDs(ctx, now)
		d := time.Since(t0)
		if bestBare == 0 || d < bestBare {
			bestBare = d
		}
		t0 = time.Now()
		_, err := svc.Scan(ctx, 0)
		d = time.Since(t0)
		if err != nil {
			t.Fatal(err)
		}
		if bestScan == 0 || d < bestScan {
			bestScan = d
		}
	}
	t.Logf("bare %v scan %v ratio %.2f", bestBare, bestScan, float64(bestScan)/float64(bestBare))
}
