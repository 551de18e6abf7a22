//go:build bench

// Command bench runs CleanTrack's benchmark suite (make bench): it prints a
// table and writes the figures as JSON under tmp/bench/.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cleantrack/jobs/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	opts := bench.DefaultOptions()
	fs.StringVar(&opts.OutDir, "out", opts.OutDir, "folder for results and process logs")
	fs.StringVar(&opts.Only, "only", "", "comma-separated phases to run (ceilings,intake,billing,email,fanout,compliance,idle); empty runs all")
	fs.IntVar(&opts.FanOutAccounts, "fanout-accounts", opts.FanOutAccounts, "accounts for the fan-out phase (owner and admin each)")
	fs.IntVar(&opts.BillingEvents, "billing-events", opts.BillingEvents, "backlog size for the billing apply phase")
	fs.IntVar(&opts.Emails, "emails", opts.Emails, "emails for the email phase")
	fs.DurationVar(&opts.Step, "step", opts.Step, "duration of each measured step")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.Run(ctx, opts, os.Stdout)
}
