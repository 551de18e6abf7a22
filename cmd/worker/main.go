// Command worker runs CleanTrack's Asynq workers: it applies Stripe events to
// accounts, sends email through Resend, scans for overdue cleanings and builds
// the weekly compliance summaries.
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
const about = `CleanTrack's Asynq worker. It applies Stripe events to accounts, sends email
through Resend exactly once, scans for overdue cleanings and builds the weekly
summaries; /metrics on WORKER_METRICS_ADDR.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Only here is a .env read: tests call run with an environment of their own.
	if err := run(ctx, os.Args, startup.Dotenv(".", os.LookupEnv), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(startup.ExitCode(err))
	}
}
