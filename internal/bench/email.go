//go:build bench

package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/cleantrack/jobs/internal/resendtest"
)

// EmailResult is the email path figures: N emails through the worker into a
// local Resend fake with the rate limit lifted.
type EmailResult struct {
	Emails       int     `json:"emails"`
	Seconds      float64 `json:"seconds"`
	PerSec       float64 `json:"emails_per_sec"`
	RatioToNoop  float64 `json:"ratio_to_noop_ceiling"`
	Requests     int     `json:"resend_requests"`
	DistinctKeys int     `json:"distinct_idempotency_keys"`
	MachineCPU   float64 `json:"machine_cpu_percent"`
	WorkerCPU    float64 `json:"worker_cpu_percent"`
}

func phaseEmail(ctx context.Context, e *env, res *Results) error {
	n := e.o.Emails
	if err := e.resetData(ctx); err != nil {
		return err
	}
	fake := resendtest.NewServer()
	defer fake.Close()
	fake.DropBodies()
	e.stop("worker")
	if err := EnqueueWelcomeEmails(ctx, e.redis.URL, "bench/welcome", n); err != nil {
		return err
	}
	worker, err := e.start(ctx, "worker", ResendEnv(fake.URL(), 1000000))
	if err != nil {
		return err
	}
	cpu := startCPU(worker.Pid())
	r := &EmailResult{Emails: n}
	ok := Eventually(ctx, 5*time.Minute, 100*time.Millisecond, func() bool {
		return fake.DeliveredCount() >= n
	})
	r.MachineCPU, r.WorkerCPU, _ = cpu.stop()
	if !ok {
		got := fake.DeliveredCount()
		return fmt.Errorf("only %d of %d emails reached the Resend fake in 5 minutes", got, n)
	}
	time.Sleep(500 * time.Millisecond) // let any duplicate show
	r.Requests, r.DistinctKeys = fake.RequestCount(), len(fake.Keys())
	if sent := fake.Delivered(); len(sent) > 0 {
		r.Seconds = sent[len(sent)-1].At.Sub(sent[0].At).Seconds()
	}
	if r.Seconds > 0 {
		r.PerSec = float64(n-1) / r.Seconds
	}
	if res.Ceilings != nil && res.Ceilings.NoopPerSec > 0 {
		r.RatioToNoop = r.PerSec / res.Ceilings.NoopPerSec
	}
	fmt.Fprintf(e.out, "  email: %d emails in %.2f s: %.0f emails/s (%d requests, %d keys); cpu: machine %.0f%%, worker %.0f%%\n", n, r.Seconds, r.PerSec, r.Requests, r.DistinctKeys, r.MachineCPU, r.WorkerCPU)
	res.Email = r
	e.stop("worker") // back to the default environment for the idle phase
	return nil
}
