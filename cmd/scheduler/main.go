// Command scheduler enqueues CleanTrack's periodic work (inbox re-drive,
// overdue scans, weekly summaries) on cron specs. Several may run at once:
// each slot is claimed in PostgreSQL and enqueued once.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cleantrack/jobs/internal/startup"
)

// about is what --help says the process does.
const about = `CleanTrack's scheduler. It enqueues the periodic work (inbox re-drive, overdue
scans, weekly summaries, Stripe sync and reconcile) on cron specs, each slot
once however many schedulers run; /metrics on SCHEDULER_METRICS_ADDR.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Only here is a .env read: tests call run with an environment of their own.
	if err := run(ctx, os.Args, startup.Dotenv(".", os.LookupEnv), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(startup.ExitCode(err))
	}
}
