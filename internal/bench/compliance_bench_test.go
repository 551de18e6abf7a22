//go:build bench

package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/redistest"
)

// TestComplianceBench runs the compliance benchmark on its own:
//
//	go test -tags bench -run TestComplianceBench -v -timeout 30m ./internal/bench/
func TestComplianceBench(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	res, err := RunCompliance(ctx, pgtest.AdminURL(), redistest.ServerURL(), 3, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	if res.Opened != res.Overdue || res.Enqueued != res.Reports {
		t.Errorf("the scan opened %d alerts for %d overdue, the fan-out enqueued %d for %d accounts", res.Opened, res.Overdue, res.Enqueued, res.Reports)
	}
}
