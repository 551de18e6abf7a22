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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "web:", err)
		os.Exit(1)
	}
}
