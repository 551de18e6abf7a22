package main

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingHook counts the commands that reach Redis and fail.
type countingHook struct{ failed atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && err != redis.Nil {
			h.failed.Add(1)
		}
		return err
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// privateRedisWithPassword starts a redis-server of its own on a free port,
// requiring a password, and returns a URL without it.
func privateRedisWithPassword(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--requirepass", "the-password")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	return "redis://" + addr + "/0"
}

// An asynq.Server whose every Redis command is answered with an error (here: NOAUTH) must not hammer Redis.
func TestGuardedRedisClientBacksOffWhileRedisAnswersErrors(t *testing.T) {
	tests := []struct {
		name    string
		guarded bool
		check   func(t *testing.T, failed int64)
	}{
		{"unguarded asynq spins", false, func(t *testing.T, failed int64) {
			assert.Greater(t, failed, int64(200), "without the guard the fetch loop retries at once")
		}},
		{"guarded pauses", true, func(t *testing.T, failed int64) {
			assert.Less(t, failed, int64(60), "with the guard failed commands are spaced out")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A private Redis that wants a password the worker does not give:
			// it answers every command with NOAUTH.
			opt, err := asynq.ParseRedisURI(privateRedisWithPassword(t))
			require.NoError(t, err)

			var rc redis.UniversalClient
			if tc.guarded {
				rc = newGuardedRedisClient(opt)
			} else {
				rc = opt.MakeRedisClient().(redis.UniversalClient)
			}
			defer rc.Close()
			counter := &countingHook{}
			rc.AddHook(counter)

			srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Concurrency: 4, LogLevel: asynq.FatalLevel})
			require.NoError(t, srv.Start(asynq.NewServeMux()))
			time.Sleep(time.Second)
			failed := counter.failed.Load()
			srv.Shutdown()
			t.Logf("failed Redis commands in one second: %d", failed)
			tc.check(t, failed)
		})
	}
}
