// Command withredis starts a Redis Cluster or a Sentinel group (package
// enginetest), runs a command with TEST_REDIS_URL and REDIS_URL pointing at
// it, and stops every server when the command ends, fails or is
// interrupted. `make e2e-cluster` runs the end-to-end tests this way:
//
//	go run ./internal/enginetest/cmd/withredis -mode cluster -- go test ./internal/e2e/
//
// It exits with the command's exit code, 2 for a usage mistake and 1 when
// the servers do not start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/cleantrack/jobs/internal/enginetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("withredis", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "cluster", "cluster (three masters) or sentinel (primary, replica, three sentinels)")
	dir := fs.String("dir", os.TempDir(), "parent folder of the servers' files")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "withredis: name the command to run after --, for example: -- go test ./internal/e2e/")
		return 2
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(stderr, "withredis:", err)
		return 1
	}
	var url string
	start := time.Now()
	switch *mode {
	case "cluster":
		cl, err := enginetest.StartCluster(ctx, *dir, enginetest.ClusterOptions{})
		if err != nil {
			fmt.Fprintln(stderr, "withredis:", err)
			return 1
		}
		defer cl.Stop()
		url = cl.URL()
	case "sentinel":
		g, err := enginetest.StartSentinel(ctx, *dir, enginetest.SentinelOptions{})
		if err != nil {
			fmt.Fprintln(stderr, "withredis:", err)
			return 1
		}
		defer g.Stop()
		url = g.URL()
	default:
		fmt.Fprintf(stderr, "withredis: -mode is cluster or sentinel, not %q\n", *mode)
		return 2
	}
	fmt.Fprintf(stdout, "withredis: %s up in %s at %s\n", *mode, time.Since(start).Round(100*time.Millisecond), url)

	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "TEST_REDIS_URL="+url, "REDIS_URL="+url)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "withredis:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// Interrupted: let the command stop its own children first.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode()
	default:
		fmt.Fprintln(stderr, "withredis:", err)
		return 1
	}
}
