// Command cleantrack is the command line for people who run CleanTrack:
// migrate the database, seed demo data, enqueue or replay work, send a signed
// test webhook, preview email, and look into the queues.
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
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cleantrack:", err)
		os.Exit(exitCode(err))
	}
}
