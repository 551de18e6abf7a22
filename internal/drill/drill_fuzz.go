//go:build drills

package drill

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// fuzzTime is how long drill 8 fuzzes each target.
var fuzzTime = 15 * time.Second

// fuzzTargets are the webhook handler (real PostgreSQL and Redis behind it)
// and the payload decoder.
var fuzzTargets = []struct{ pkg, name string }{
	{"./internal/web/", "FuzzStripeWebhook"},
	{"./internal/billing/", "FuzzDecodeEvent"},
	{"./internal/billing/", "FuzzShapesAgree"},
}

// Drill 8: garbage at the webhook. The committed corpus runs first, then
// each target is fuzzed for fuzzTime: no panic, no 5xx for bad input, no
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
		args := []string{"test", "-run", "^$", "-fuzz", "^" + t.name + "$", "-fuzztime", fuzzTime.String(), "-fuzzminimizetime", "5s", t.pkg}
		c.Injected("go %s", strings.Join(args, " "))
		if err := goTest(ctx, c, args); err != nil {
			return err
		}
		c.Verified("%s: no failure in %s of fuzzing", t.name, fuzzTime)
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
