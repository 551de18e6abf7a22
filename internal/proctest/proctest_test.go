package proctest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/proctest"
)

// shell starts sh -c script with env as its whole environment.
func shell(t *testing.T, script string, env map[string]string, logDir string) *proctest.Proc {
	t.Helper()
	p, err := proctest.Start(proctest.Config{Name: "sh", Path: "/bin/sh", Args: []string{"-c", script}, Env: env, LogDir: logDir})
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	return p
}

func TestProcessGetsExactlyItsEnvironmentAndStopsOnSIGTERM(t *testing.T) {
	t.Setenv("PROCTEST_LEAK", "from the parent") // must not reach the child
	// The trap is set before the first line, so the test's SIGTERM (sent
	// once that line shows) always finds it.
	p := shell(t, `trap 'echo stopping; exit 0' TERM; echo "foo=$FOO leak=$PROCTEST_LEAK"; while :; do sleep 0.05; done`,
		map[string]string{"FOO": "bar"}, "")
	require.Eventually(t, func() bool { return p.LogContains("foo=") }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "foo=bar leak=", strings.TrimSpace(p.LogTail(1)))

	require.NoError(t, p.Stop(10*time.Second))
	assert.True(t, p.Exited())
	assert.NoError(t, p.Err())
	assert.Contains(t, p.Log(), "stopping")
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	logs := t.TempDir()
	p := shell(t, `trap '' TERM; echo ready; while :; do sleep 0.05; done`, nil, logs)
	require.Eventually(t, func() bool { return p.LogContains("ready") }, 10*time.Second, 10*time.Millisecond)
	err := p.Stop(200 * time.Millisecond)
	assert.ErrorContains(t, err, "did not stop within 200ms after SIGTERM")
	assert.True(t, p.Exited())
	b, rerr := os.ReadFile(filepath.Join(logs, "sh.log"))
	require.NoError(t, rerr)
	assert.Equal(t, "ready\n", string(b), "the output went to LogDir/<name>.log")
}

func TestWaitHTTPFailsAsSoonAsTheProcessEnds(t *testing.T) {
	t.Parallel()
	p := shell(t, `echo "listen tcp: address already in use"; exit 3`, nil, "")
	addr, err := proctest.FreeAddr()
	require.NoError(t, err)
	err = proctest.WaitHTTP(context.Background(), "http://"+addr+"/healthz", time.Minute, p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sh exited (exit status 3)")
	assert.Contains(t, err.Error(), "address already in use", "the log tail says why")
}
