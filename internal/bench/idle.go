//go:build bench

package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cleantrack/jobs/internal/proctest"
)

// idleWindow is how long each process's CPU is sampled while nothing happens.
const idleWindow = 10 * time.Second

func phaseIdle(ctx context.Context, e *env, res *Results) error {
	if err := e.resetData(ctx); err != nil {
		return err
	}
	names := []string{"web", "worker", "scheduler"}
	for _, n := range names {
		if _, err := e.start(ctx, n, nil); err != nil {
			return err
		}
	}
	time.Sleep(3 * time.Second) // past start-up work
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, n := range names {
		p := e.procs[n]
		wg.Add(1)
		go func() {
			defer wg.Done()
			pct, err := proctest.CPUPercentOver(ctx, p.Pid(), idleWindow)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n, err))
				return
			}
			s := res.Processes[n]
			s.IdleCPUPercent, s.IdleSeconds = pct, idleWindow.Seconds()
			res.Processes[n] = s
			fmt.Fprintf(e.out, "  idle %-9s %.2f%% of one core over %s\n", n, pct, idleWindow)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// complianceRuns is how many times each compliance measurement is repeated
// (the best counts).
const complianceRuns = 2

func phaseCompliance(ctx context.Context, e *env, res *Results) error {
	r, err := RunCompliance(ctx, e.o.AdminDBURL, e.o.RedisServer, complianceRuns, e.out)
	if err != nil {
		return err
	}
	res.Compliance = &r
	return nil
}
