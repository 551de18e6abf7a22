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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}
