// Package e2e drives the real binaries (web, worker, scheduler, cleantrack)
// against the real PostgreSQL and Redis: a signed webhook in, rows and emails
// out.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cleantrack/jobs/internal/proctest"
)

// bin is the directory the binaries were built into by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := proctest.BuildTemp(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build binaries:", err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// start runs a binary with env (plus PATH and HOME) and stops it when the
// test ends, printing its output if the test failed.
func start(t *testing.T, name string, env map[string]string) *proctest.Proc {
	t.Helper()
	return proctest.StartT(t, proctest.Config{Name: name, Path: filepath.Join(bin, name), Env: env})
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
