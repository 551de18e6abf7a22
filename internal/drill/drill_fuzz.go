//go:build drills

package drill

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// fuzzScale multiplies each target's number of fuzz executions.
var fuzzScale = 1.0

// fuzzTargets are the webhook handlers (real PostgreSQL and Redis behind
// them) and the payload decoder, each with a number of executions worth about 15 s
// on a two-core machine. A count, not a duration: Go 1.26's fuzz coordinator
// can report a spurious "context deadline exceeded" failure when a
// -fuzztime duration runs out (golang/go#75804, fixed in Go 1.27).
var fuzzTargets = []struct {
	pkg, name string
	execs     int
}{
	{"./internal/web/", "FuzzStripeWebhook", 40000},
	{"./internal/web/", "FuzzResendWebhook", 15000},
	{"./internal/billing/", "FuzzDecodeEvent", 150000},
	{"./internal/billing/", "FuzzShapesAgree", 50000},
}

// Drill 8: garbage at the webhook. The committed corpus runs first, then
// each target is fuzzed for its number of executions: no panic, no 5xx for bad input, no
// enqueue without a valid signature, every decoder refusal marked malformed.
func drillFuzz(ctx context.Context, c *Case) error {
	for _, t := range fuzzTargets {
		args := []string{"test", "-count=1", "-run", "^" + t.name + "$", t.pkg}
		if err := goTest(ctx, c, args); err != nil {
			return err
		}
		c.Verified("%s: seed and committed corpus pass", t.name)
	}
	for _, t := range fuzzTargets {
		n := max(1, int(float64(t.execs)*fuzzScale))
		args := []string{"test", "-run", "^$", "-fuzz", "^" + t.name + "$", "-fuzztime", fmt.Sprintf("%dx", n), "-fuzzminimizetime", "100x", t.pkg}
		c.Injected("go %s", strings.Join(args, " "))
		start := time.Now()
		if err := goTest(ctx, c, args); err != nil {
			return err
		}
		c.Verified("%s: no failure in %d executions (%s)", t.name, n, time.Since(start).Round(time.Second))
	}
	return nil
}

func goTest(ctx context.Context, c *Case, args []string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = c.W.Root
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.Check(false, "go %s failed", strings.Join(args, " "))
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 30))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
