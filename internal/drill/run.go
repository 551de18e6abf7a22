//go:build drills

package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/proctest"
)

// Drill is one fault drill: Run injects the fault and checks the outcome
// through the Case, within Timeout.
type Drill struct {
	Number  int
	Name    string
	Timeout time.Duration
	Run     func(ctx context.Context, c *Case) error
}

// Drills are the drills, in order of their numbers.
var Drills = []Drill{
	{1, "duplicate storm", 2 * time.Minute, drillDuplicateStorm},
	{2, "out of order", 2 * time.Minute, drillOutOfOrder},
	{3, "redis restarted and flushed", 6 * time.Minute, drillRedis},
	{4, "postgresql restarted", 4 * time.Minute, drillPostgres},
	{5, "worker killed mid-task", 5 * time.Minute, drillKill},
	{6, "resend failing for a minute", 6 * time.Minute, drillResend},
	{7, "two schedulers and a restart across a slot", 5 * time.Minute, drillSchedulers},
	{8, "garbage at the webhook (fuzz)", 4 * time.Minute, drillFuzz},
	{9, "sentinel failover under load", 6 * time.Minute, drillSentinel},
	{10, "the whole flow on a redis cluster", 6 * time.Minute, drillCluster},
	{11, "every process and the CLI through PgBouncer in transaction mode", 5 * time.Minute, drillPgBouncer},
}

// Options steer a run of the drills.
type Options struct {
	Dir       string  // results and logs, relative to the repository root
	Only      []int   // drill numbers; empty runs all
	FuzzScale float64 // multiplies the fuzz executions of drill 8
	RedisPort int     // 0 picks a free port
	PGPort    int
}

// Run builds the binaries, starts the private PostgreSQL and Redis, runs the
// drills and prints "N passed, M failed" last. It returns the failure count.
func Run(ctx context.Context, o Options, out io.Writer) (failed int, err error) {
	root, err := proctest.ModuleRoot()
	if err != nil {
		return 0, err
	}
	if !filepath.IsAbs(o.Dir) {
		o.Dir = filepath.Join(root, o.Dir)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return 0, err
	}
	w := &World{Root: root, Bin: filepath.Join(o.Dir, "bin"), Dir: o.Dir, Out: out}
	fmt.Fprintln(out, "drills: building binaries")
	if err := proctest.Build(ctx, root, w.Bin); err != nil {
		return 0, err
	}
	port := func(p int) (int, error) {
		if p != 0 {
			return p, nil
		}
		return proctest.FreePort()
	}
	rp, err := port(o.RedisPort)
	if err != nil {
		return 0, err
	}
	if w.Redis, err = StartPrivateRedis(o.Dir, rp); err != nil {
		return 0, err
	}
	defer w.Redis.Stop()
	pp, err := port(o.PGPort)
	if err != nil {
		return 0, err
	}
	if w.PG, err = StartPrivatePG(ctx, o.Dir, pp); err != nil {
		return 0, err
	}
	defer w.PG.Stop()
	fmt.Fprintf(out, "drills: private PostgreSQL on 127.0.0.1:%d, private Redis on %s, logs in %s\n", w.PG.Port, w.Redis.Addr(), filepath.Join(o.Dir, "logs"))
	if o.FuzzScale > 0 {
		fuzzScale = o.FuzzScale
	}

	passed := 0
	var failedNames []string
	for _, d := range Drills {
		if !selected(o.Only, d.Number) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(out, "\ndrill %d: %s\n", d.Number, d.Name)
		start := time.Now()
		err := runOne(ctx, w, d)
		took := time.Since(start).Round(100 * time.Millisecond)
		if err != nil {
			failed++
			failedNames = append(failedNames, strconv.Itoa(d.Number))
			fmt.Fprintf(out, "drill %d: FAIL (%s): %v\n", d.Number, took, err)
			continue
		}
		passed++
		fmt.Fprintf(out, "drill %d: PASS (%s)\n", d.Number, took)
	}
	if len(failedNames) > 0 {
		fmt.Fprintf(out, "\nfailed drills: %s (process logs under %s)\n", strings.Join(failedNames, ", "), filepath.Join(o.Dir, "logs"))
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
	return failed, nil
}

// Exists reports whether a drill has number n.
func Exists(n int) bool {
	for _, d := range Drills {
		if d.Number == n {
			return true
		}
	}
	return false
}

func selected(only []int, n int) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if o == n {
			return true
		}
	}
	return false
}

func runOne(ctx context.Context, w *World, d Drill) error {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	name := fmt.Sprintf("drill%d", d.Number)
	c, err := w.newCase(ctx, name)
	if err != nil {
		return err
	}
	defer c.close()
	// A drill may leave the shared Redis stopped or password-protected.
	defer func() {
		if w.Redis.cmd == nil {
			_ = w.Redis.Start()
		}
	}()
	if err := d.Run(ctx, c); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("did not finish within %s: %w", d.Timeout, err)
		}
		return err
	}
	if len(c.fails) > 0 {
		return fmt.Errorf("%d check(s) failed: %s", len(c.fails), strings.Join(c.fails, "; "))
	}
	return nil
}
