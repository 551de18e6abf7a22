//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/queue"
)

// ComplianceShape is the data set the compliance benchmark builds: ten
// thousand accounts of a hundred pieces of equipment (a million), one percent
// overdue, five cleanings each.
var ComplianceShape = ComplianceDataShape{
	Accounts:          10000,
	EquipmentPerAcct:  100,
	CleaningsPerEquip: 5,
	OverdueEveryNth:   100,
	InactiveEveryNth:  50,
	IntervalHours:     48,
	LateEveryNth:      7,
}

// ComplianceTargets are the targets: the scan within 1.5x its bare
// SQL, the summaries within 2x theirs, the worker under 150 MB.
const (
	ScanTargetRatio    = 1.5
	WeeklyTargetRatio  = 2.0
	WorkerTargetMemMiB = 150
)

// ComplianceResults are the figures of one compliance benchmark run. Times are
// the best of Runs runs each.
type ComplianceResults struct {
	Equipment int
	Accounts  int
	Runs      int
	Build     time.Duration

	Overdue  int           // rows the bare overdue statement returned
	BareScan time.Duration // the one statement selecting the overdue set
	Scan     time.Duration // compliance.Service.Scan: resolve, open alerts, enqueue emails
	Opened   int
	Emails   int
	Rescan   time.Duration // the next scan, with the 10,000 alerts active: nothing to open

	Reports    int
	BareWeekly time.Duration // one grouped statement over all reporting accounts
	Weekly     time.Duration // compliance.Service.FanOut: record every report, enqueue every account task
	Enqueued   int

	PeakHeapMiB float64 // Go heap in use, sampled during the scans and fan-outs
	PeakSysMiB  float64 // memory the Go runtime took from the OS
	PeakRSSMiB  float64 // VmHWM of this process, start to end
}

// ScanRatio is Scan / BareScan.
func (r ComplianceResults) ScanRatio() float64 { return ratio(r.Scan, r.BareScan) }

// WeeklyRatio is Weekly / BareWeekly.
func (r ComplianceResults) WeeklyRatio() float64 { return ratio(r.Weekly, r.BareWeekly) }

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Met reports whether every target was met.
func (r ComplianceResults) Met() bool {
	return r.ScanRatio() <= ScanTargetRatio && r.WeeklyRatio() <= WeeklyTargetRatio && r.PeakRSSMiB < WorkerTargetMemMiB
}

// RunCompliance builds the million-equipment data set in a database of its
// own on the server of adminDatabaseURL (dropped at the end), borrows a Redis
// logical database on redisServerURL (a URL without a database number), then
// measures in this process, which runs the worker's code: the overdue scan
// against the bare SQL selecting the same overdue set, and the weekly
// summaries of every account against one grouped SQL query, each the best of
// runs runs from the same state, and peak memory. It writes a report to out.
func RunCompliance(ctx context.Context, adminDatabaseURL, redisServerURL string, runs int, out io.Writer) (ComplianceResults, error) {
	if runs < 1 {
		runs = 1
	}
	sh := ComplianceShape
	res := ComplianceResults{Equipment: sh.Accounts * sh.EquipmentPerAcct, Accounts: sh.Accounts, Runs: runs}
	fmt.Fprintf(out, "compliance: building %d accounts, %d pieces of equipment, %d cleanings...\n",
		sh.Accounts, res.Equipment, res.Equipment*sh.CleaningsPerEquip)

	db, err := CreateDatabase(ctx, adminDatabaseURL, "cleantrack_bench_compliance")
	if err != nil {
		return res, err
	}
	defer db.Drop(context.Background())
	store, err := postgres.Open(ctx, db.URL)
	if err != nil {
		return res, err
	}
	defer store.Close()
	rdb, err := LockRedisDB(ctx, redisServerURL)
	if err != nil {
		return res, err
	}
	defer rdb.Release()
	redisOpt, err := queue.RedisOpt(rdb.URL)
	if err != nil {
		return res, err
	}
	client := asynq.NewClient(redisOpt)
	defer client.Close()

	now := time.Now().UTC()
	start := time.Now()
	if err := buildComplianceData(ctx, store.DB, sh, now); err != nil {
		return res, err
	}
	res.Build = time.Since(start)
	fmt.Fprintf(out, "compliance: data set built in %s\n", res.Build.Round(time.Millisecond))

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := compliance.New(store, email.NewService(client, store), log, compliance.Options{
		SiteURL: "https://cleantrack.example.com",
		Now:     func() time.Time { return now },
	})
	mem := startMemSampler()
	reset := func() error {
		rdb.Flush(ctx)
		return resetComplianceData(ctx, store.DB)
	}

	// Warm the caches once, so the first measured statement is not the
	// one that reads the tables from disk.
	if _, err := bareOverdueIDs(ctx, store.DB, now); err != nil {
		return res, err
	}
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		n, err := bareOverdueIDs(ctx, store.DB, now)
		bare := time.Since(t0)
		if err != nil {
			return res, err
		}
		res.BareScan = best(res.BareScan, bare)
		res.Overdue = n

		if err := reset(); err != nil {
			return res, err
		}
		mem.active(true)
		t0 = time.Now()
		sr, err := svc.Scan(ctx, 0)
		d := time.Since(t0)
		mem.active(false)
		if err != nil {
			return res, err
		}
		res.Scan = best(res.Scan, d)
		res.Opened, res.Emails = sr.Opened, sr.Emails

		mem.active(true)
		t0 = time.Now()
		again, err := svc.Scan(ctx, 0)
		rd := time.Since(t0)
		mem.active(false)
		if err != nil {
			return res, err
		}
		if again.Opened != 0 || again.Emails != 0 {
			return res, fmt.Errorf("a second scan opened %d alerts and enqueued %d emails", again.Opened, again.Emails)
		}
		res.Rescan = best(res.Rescan, rd)
		fmt.Fprintf(out, "compliance: run %d: bare overdue SQL %s (%d rows), scan %s (%d alerts, %d emails), rescan %s\n",
			i+1, bare.Round(time.Millisecond), n, d.Round(time.Millisecond), sr.Opened, sr.Emails, rd.Round(time.Millisecond))
	}

	week := postgres.WeekSpec{Ref: now}
	for i := 0; i < runs; i++ {
		if err := reset(); err != nil {
			return res, err
		}
		t0 := time.Now()
		n, err := groupedWeeklyFigures(ctx, store.DB, now)
		bare := time.Since(t0)
		if err != nil {
			return res, err
		}
		res.BareWeekly = best(res.BareWeekly, bare)
		res.Reports = n

		mem.active(true)
		t0 = time.Now()
		fr, err := svc.FanOut(ctx, 0, week)
		d := time.Since(t0)
		mem.active(false)
		if err != nil {
			return res, err
		}
		res.Weekly = best(res.Weekly, d)
		res.Enqueued = fr.Reported
		fmt.Fprintf(out, "compliance: run %d: grouped weekly SQL %s (%d accounts), summaries %s (%d recorded, emails staged in batches)\n",
			i+1, bare.Round(time.Millisecond), n, d.Round(time.Millisecond), fr.Reported)
	}
	mem.stop()
	res.PeakHeapMiB, res.PeakSysMiB = mem.peaks()
	if kib, err := proctest.PeakRSSKiB(os.Getpid()); err == nil {
		res.PeakRSSMiB = float64(kib) / 1024
	}
	writeComplianceReport(out, res)
	return res, nil
}

func best(cur, d time.Duration) time.Duration {
	if cur == 0 || d < cur {
		return d
	}
	return cur
}

func writeComplianceReport(out io.Writer, r ComplianceResults) {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Fprintf(out, "\ncompliance benchmark: %d equipment, %d accounts, %d overdue, best of %d\n", r.Equipment, r.Accounts, r.Overdue, r.Runs)
	fmt.Fprintf(out, "  %-44s %10s\n", "data set build (generate_series)", r.Build.Round(time.Millisecond))
	fmt.Fprintf(out, "  %-44s %10s\n", "bare SQL selecting the overdue set", r.BareScan.Round(time.Millisecond))
	fmt.Fprintf(out, "  %-44s %10s  %.2fx (target <= %.1fx: %s)\n", fmt.Sprintf("overdue scan (%d alerts, %d emails)", r.Opened, r.Emails),
		r.Scan.Round(time.Millisecond), r.ScanRatio(), ScanTargetRatio, verdict(r.ScanRatio() <= ScanTargetRatio))
	fmt.Fprintf(out, "  %-44s %10s  %.2fx\n", "rescan (10000 alerts active, nothing new)", r.Rescan.Round(time.Millisecond), ratio(r.Rescan, r.BareScan))
	fmt.Fprintf(out, "  %-44s %10s\n", fmt.Sprintf("one grouped weekly SQL (%d accounts)", r.Reports), r.BareWeekly.Round(time.Millisecond))
	fmt.Fprintf(out, "  %-44s %10s  %.2fx (target <= %.1fx: %s)\n", fmt.Sprintf("weekly summaries (%d recorded + staged)", r.Enqueued),
		r.Weekly.Round(time.Millisecond), r.WeeklyRatio(), WeeklyTargetRatio, verdict(r.WeeklyRatio() <= WeeklyTargetRatio))
	fmt.Fprintf(out, "  %-44s %7.1f MiB (Go heap %.1f MiB, Go runtime %.1f MiB) (target < %d MiB: %s)\n", "peak memory of the worker code (RSS)",
		r.PeakRSSMiB, r.PeakHeapMiB, r.PeakSysMiB, WorkerTargetMemMiB, verdict(r.PeakRSSMiB < WorkerTargetMemMiB))
}

// memSampler records the peak Go heap and runtime memory while active.
type memSampler struct {
	mu       sync.Mutex
	on       bool
	heap     uint64
	sys      uint64
	done     chan struct{}
	finished chan struct{}
}

func startMemSampler() *memSampler {
	m := &memSampler{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(m.finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-m.done:
				return
			case <-t.C:
				m.mu.Lock()
				on := m.on
				m.mu.Unlock()
				if !on {
					continue
				}
				runtime.ReadMemStats(&ms)
				m.mu.Lock()
				m.heap = max(m.heap, ms.HeapInuse)
				m.sys = max(m.sys, ms.Sys)
				m.mu.Unlock()
			}
		}
	}()
	return m
}

func (m *memSampler) active(on bool) {
	m.mu.Lock()
	m.on = on
	m.mu.Unlock()
}

func (m *memSampler) stop() {
	close(m.done)
	<-m.finished
}

func (m *memSampler) peaks() (heapMiB, sysMiB float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return float64(m.heap) / (1 << 20), float64(m.sys) / (1 << 20)
}
