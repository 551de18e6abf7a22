//go:build drills

// Command chaos runs CleanTrack's chaos test (make chaos): the whole system
// on Sentinel-backed Redis, PgBouncer and a private PostgreSQL under a steady
// webhook load and a fault every 10 to 30 s, then checks after a drain that
// nothing was lost or done twice. It ends with "N passed, M failed" and exits
// 1 when a check failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cleantrack/jobs/internal/drill"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	o := drill.ChaosOptions{}
	def := 10 * time.Minute
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			return 0, fmt.Errorf("CHAOS_DURATION: %q is not a duration of 30s or more (e.g. 2m, 10m)", v)
		}
		def = d
	}
	fs.DurationVar(&o.Duration, "duration", def, "how long the load and the faults last (CHAOS_DURATION); the drain comes after")
	fs.IntVar(&o.Accounts, "accounts", 300, "accounts receiving events")
	fs.IntVar(&o.Rate, "rate", 8, "new webhook events per second")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the load and the faults (0: from the clock; printed)")
	fs.StringVar(&o.Dir, "out", "tmp/chaos", "folder for binaries, private servers and process logs")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if o.Accounts < 1 || o.Rate < 1 || o.Rate > 100 || o.Duration < 30*time.Second {
		return 0, fmt.Errorf("need -accounts >= 1, -rate 1-100 and -duration >= 30s")
	}
	return drill.RunChaos(ctx, o, os.Stdout)
}
