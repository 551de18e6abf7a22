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

	"github.com/redis/go-redis/v9"

	"github.com/cleantrack/jobs/internal/startup"
)

func main() {
	// Connection errors reach the user as the command's own error; go-redis's
	// pool would print each retry to stderr as well.
	redis.SetLogger(quietLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Only here is a .env read: tests call run with an environment of their own.
	if err := runEnv(ctx, os.Args, startup.Dotenv(".", os.LookupEnv), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cleantrack:", err)
		os.Exit(exitCode(err))
	}
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
