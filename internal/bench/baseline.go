//go:build bench

package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cleantrack/jobs/internal/proctest"
)

// Baseline is CleanTrack's web intake or worker apply side by side with the
// least that can do the same job on the same PostgreSQL and Redis
// (internal/bench/cmd/minimal): a receiver that verifies, inserts and
// enqueues, and an apply of one transaction per event.
type Baseline struct {
	// Ours and Minimal are requests (or events) per second.
	Ours    float64 `json:"ours_per_sec"`
	Minimal float64 `json:"minimal_per_sec"`
	Ratio   float64 `json:"ratio"` // Ours / Minimal
	// CPU per request, in ms of one core, at each one's peak (intake only).
	OursCPUms    float64 `json:"ours_cpu_ms_per_request,omitempty"`
	MinimalCPUms float64 `json:"minimal_cpu_ms_per_request,omitempty"`
	CPURatio     float64 `json:"cpu_ratio,omitempty"` // OursCPUms / MinimalCPUms
}

// buildMinimal builds internal/bench/cmd/minimal into the bench's bin folder.
func (e *env) buildMinimal(ctx context.Context) error {
	if e.minimalBuilt {
		return nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "bench", "-o", filepath.Join(e.bin, "minimal"), "./internal/bench/cmd/minimal")
	cmd.Dir = e.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the minimal baseline: %w\n%s", err, out)
	}
	e.minimalBuilt = true
	return nil
}

// cpuPerRequest is the CPU, in ms of one core, one request took in step s.
func cpuPerRequest(s IntakeStep) float64 {
	if s.PerSec == 0 {
		return 0
	}
	return s.WebCPU * 10 / s.PerSec
}

// peakStep is the step with the highest rate.
func peakStep(steps []IntakeStep) IntakeStep {
	var best IntakeStep
	for _, s := range steps {
		if s.PerSec > best.PerSec {
			best = s
		}
	}
	return best
}

// receiverBaseline runs the intake's closed-loop steps against the minimal
// receiver on the web's port, and compares it with ours.
func receiverBaseline(ctx context.Context, e *env, ours []IntakeStep) (*Baseline, error) {
	if err := e.buildMinimal(ctx); err != nil {
		return nil, err
	}
	e.stop("web")
	p, err := e.start(ctx, "minimal", map[string]string{"MODE": "receiver"})
	if err != nil {
		return nil, err
	}
	defer e.stop("minimal")
	if err := proctest.WaitHTTP(ctx, e.webURL("/healthz"), 20*time.Second, p); err != nil {
		return nil, fmt.Errorf("minimal receiver: %w", err)
	}
	post := newPoster(e.webURL("/billing/webhooks/stripe/"), 128)
	if _, err := closedLoop(ctx, post, 8, time.Second); err != nil {
		return nil, err
	}
	var steps []IntakeStep
	for _, c := range []int{1, 4, 16, 32, 64} {
		cpu := startCPU(p.Pid())
		step, err := closedLoop(ctx, post, c, e.o.Step)
		if err != nil {
			return nil, err
		}
		step.MachineCPU, step.WebCPU, step.LoaderCPU = cpu.stop()
		fmt.Fprintf(e.out, "  minimal receiver c=%-3d %8.0f req/s  p99 %6.2f ms  errors %d  cpu: receiver %.0f%%\n",
			c, step.PerSec, step.P99ms, step.Errors, step.WebCPU)
		steps = append(steps, step)
	}
	o, m := peakStep(ours), peakStep(steps)
	b := &Baseline{Ours: o.PerSec, Minimal: m.PerSec, OursCPUms: cpuPerRequest(o), MinimalCPUms: cpuPerRequest(m)}
	if b.Minimal > 0 {
		b.Ratio = b.Ours / b.Minimal
	}
	if b.MinimalCPUms > 0 {
		b.CPURatio = b.OursCPUms / b.MinimalCPUms
	}
	fmt.Fprintf(e.out, "  intake vs minimal receiver: %.0f vs %.0f req/s = %.2f x, CPU %.3f vs %.3f ms/request = %.2f x\n",
		b.Ours, b.Minimal, b.Ratio, b.OursCPUms, b.MinimalCPUms, b.CPURatio)
	return b, nil
}

// applyBaseline puts a fresh backlog of n events (ids evt_<prefix>_<i>) in
// the inbox and queue through the web intake, applies it with the minimal
// apply, and compares its rate with ours.
func applyBaseline(ctx context.Context, e *env, n int, ours float64) (*Baseline, error) {
	if err := e.buildMinimal(ctx); err != nil {
		return nil, err
	}
	e.stop("worker")
	if _, err := e.start(ctx, "web", nil); err != nil {
		return nil, err
	}
	if err := postBacklog(ctx, e, n, "min"); err != nil {
		return nil, err
	}
	if _, err := e.start(ctx, "minimal", map[string]string{"MODE": "apply"}); err != nil {
		return nil, err
	}
	defer e.stop("minimal")
	var done int64
	ok := Eventually(ctx, 10*time.Minute, 100*time.Millisecond, func() bool {
		_ = e.sql.QueryRowContext(ctx, `SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_min_%' AND processed_at IS NOT NULL`).Scan(&done)
		return done >= int64(n)
	})
	if !ok {
		return nil, fmt.Errorf("minimal apply: only %d of %d events processed", done, n)
	}
	var secs float64
	const spread = `SELECT EXTRACT(EPOCH FROM max(processed_at) - min(processed_at)) FROM stripe_events WHERE id LIKE 'evt_min_%'`
	if err := e.sql.QueryRowContext(ctx, spread).Scan(&secs); err != nil {
		return nil, err
	}
	b := &Baseline{Ours: ours}
	if secs > 0 {
		b.Minimal = float64(n-1) / secs
		b.Ratio = ours / b.Minimal
	}
	fmt.Fprintf(e.out, "  billing apply vs minimal apply: %.0f vs %.0f events/s = %.2f x\n", b.Ours, b.Minimal, b.Ratio)
	return b, nil
}

// minimalEventID is the id of the minimal apply's ith event.
func minimalEventID(prefix string, i int) string { return "evt_" + prefix + "_" + strconv.Itoa(i) }
