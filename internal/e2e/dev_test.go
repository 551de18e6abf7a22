package e2e

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/redistest"
)

// devRun is one `make dev`, in its own process group.
type devRun struct {
	cmd  *exec.Cmd
	out  *proctest.SyncBuffer
	done chan struct{}
	pids map[string]int // web, worker, scheduler
}

var devPIDs = regexp.MustCompile(`dev: web \(pid (\d+)\), worker \(pid (\d+)\), scheduler \(pid (\d+)\)`)

// startDev runs `make dev` on a database and Redis of its own and free
// ports, and waits until its three processes run.
func startDev(t *testing.T) *devRun {
	t.Helper()
	root, err := proctest.ModuleRoot()
	require.NoError(t, err)
	args := []string{"make", "--no-print-directory", "dev"}
	// A test started in the background may have SIGINT ignored, which make
	// would inherit; reset it where env can.
	if exec.Command("env", "--default-signal=INT,TERM", "true").Run() == nil {
		args = append([]string{"env", "--default-signal=INT,TERM"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), proctest.Environ(map[string]string{
		"DATABASE_URL":           pgtest.NewURL(t),
		"REDIS_URL":              redistest.NewURL(t),
		"PORT":                   strings.Split(proctest.FreeAddrT(t), ":")[1],
		"ADMIN_ADDR":             proctest.FreeAddrT(t),
		"WORKER_METRICS_ADDR":    proctest.FreeAddrT(t),
		"SCHEDULER_METRICS_ADDR": proctest.FreeAddrT(t),
		"EMAIL_OUTBOX_DIR":       t.TempDir(),
	})...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r := &devRun{cmd: cmd, out: &proctest.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		// Whatever the test did, nothing it started outlives it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		for _, pid := range r.pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-r.done
	})
	// The first build in a fresh clone compiles everything.
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(r.out.String(), "dev: web on http://") {
		select {
		case <-r.done:
			t.Fatalf("make dev ended before its processes started:\n%s", r.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "make dev did not start in 5 minutes:\n%s", r.out.String())
	}
	m := devPIDs.FindStringSubmatch(r.out.String())
	require.NotNil(t, m, r.out.String())
	r.pids = map[string]int{}
	for i, name := range []string{"web", "worker", "scheduler"} {
		r.pids[name], _ = strconv.Atoi(m[i+1])
	}
	return r
}

// ended waits for make to end and says whether every process it ran is gone.
func (r *devRun) ended(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("make dev did not end:\n%s", r.out.String())
	}
	for name, pid := range r.pids {
		err := syscall.Kill(pid, 0)
		assert.True(t, errors.Is(err, syscall.ESRCH), "%s (pid %d) still runs after make ended: %v", name, pid, err)
	}
}

// A signal to make's own process, as a process manager sends, stops every
// process make dev started.
func TestMakeDevStopsEveryProcessWhenMakeIsSignalled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make dev three times; not with -short")
	}
	for sig, says := range map[syscall.Signal]string{
		// make passes SIGTERM on to .ci/dev.
		syscall.SIGTERM: "dev: SIGTERM: stopping web, worker and scheduler",
		// make keeps SIGINT and waits for its children: .ci/dev notices.
		syscall.SIGINT: ") got SIGINT or SIGHUP: stopping web, worker and scheduler",
	} {
		t.Run(sig.String(), func(t *testing.T) {
			r := startDev(t)
			require.NoError(t, syscall.Kill(r.cmd.Process.Pid, sig), "to make alone")
			r.ended(t)
			assert.Contains(t, r.out.String(), says)
		})
	}
}

// When one process ends by itself, make dev says which and how, and stops
// the others.
func TestMakeDevSaysWhichProcessEndedAndHow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make dev; not with -short")
	}
	r := startDev(t)
	worker := r.pids["worker"]
	require.NoError(t, syscall.Kill(worker, syscall.SIGKILL))
	r.ended(t)
	assert.Contains(t, r.out.String(), "dev: worker (pid "+strconv.Itoa(worker)+") was killed by signal SIGKILL; stopping the others")
	assert.NotZero(t, r.cmd.ProcessState.ExitCode(), "make dev fails when a process dies")
}
