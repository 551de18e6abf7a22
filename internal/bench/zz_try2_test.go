//go:build trybench

package bench

import (
	"context"
	"testing"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
)

func TestTry2(t *testing.T) {
	ctx := context.Background()
	store, _ := postgres.Open(ctx, "postgres://postgres@127.0.0.1:5432/ct_bench_try?sslmode=disable")
	now := time.Now()
	for i := 0; i < 2; i++ {
		store.DB.Exec("TRUNCATE alerts, weekly_reports")
		var tb, tr, to, tn, tm time.Duration
		var after int64
		t00 := time.Now()
		for {
			t0 := time.Now()
			hi, _ := store.NextEquipmentBound(ctx, 0, after, 10000)
			tb += time.Since(t0)
			if hi == 0 {
				break
			}
			t0 = time.Now()
			store.ResolveOverdueAlerts(ctx, 0, after, hi, now, now)
			tr += time.Since(t0)
			t0 = time.Now()
			store.OpenOverdueAlerts(ctx, 0, after, hi, now, now)
			to += time.Since(t0)
			t0 = time.Now()
			var ids []int64
			store.EachUnnotifiedAlert(ctx, 0, after, hi, func(n postgres.AlertNotice) error { ids = append(ids, n.AlertID); return nil })
			tn += time.Since(t0)
			t0 = time.Now()
			store.MarkAlertsNotified(ctx, ids, now)
			tm += time.Since(t0)
			after = hi
		}
		total := time.Since(t00)
		t0 := time.Now()
		store.BareOverdueIDs(ctx, now)
		t.Logf("total %v bound %v resolve %v open %v notify %v mark %v | bare %v", total, tb, tr, to, tn, tm, time.Since(t0))
	}
}
