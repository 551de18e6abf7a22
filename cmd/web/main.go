// Command web is CleanTrack's HTTP process: it verifies Stripe (and Resend)
// webhooks, records them, enqueues their work and answers in milliseconds. An
// admin listener serves the queue dashboard and metrics.
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
const about = `CleanTrack's HTTP process. It verifies Stripe and Resend webhooks, records each in
PostgreSQL, enqueues its work and answers in milliseconds. Its admin listener
(ADMIN_ADDR) serves the Asynqmon dashboard, the Schedules page and /metrics.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Only here is a .env read: tests call run with an environment of their own.
	if err := run(ctx, os.Args, startup.Dotenv(".", os.LookupEnv), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "web:", err)
		os.Exit(startup.ExitCode(err))
	}
}
