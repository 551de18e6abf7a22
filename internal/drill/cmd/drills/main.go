//go:build drills

// Command drills runs CleanTrack's fault drills (make drills) and ends with
// the line "N passed, M failed"; it exits 1 when a drill failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/cleantrack/jobs/internal/drill"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		os.Exit(1)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("drills", flag.ContinueOnError)
	o := drill.Options{}
	only := fs.String("only", "", "comma-separated drill numbers (see make drills); empty runs all")
	fs.StringVar(&o.Dir, "out", "tmp/drills", "folder for binaries, private servers and process logs")
	fs.Float64Var(&o.FuzzScale, "fuzzscale", 1, "multiplies the fuzz executions per target in drill 8 (1: about 15 s each on two cores)")
	fs.IntVar(&o.RedisPort, "redis-port", 0, "port of the private Redis (0: a free one)")
	fs.IntVar(&o.PGPort, "pg-port", 0, "port of the private PostgreSQL (0: a free one)")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || !drill.Exists(n) {
			return 0, fmt.Errorf("-only: %q is not a drill number", s)
		}
		o.Only = append(o.Only, n)
	}
	return drill.Run(ctx, o, os.Stdout)
}
