package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/startup"
)

// With Redis unreachable, the public and the admin /readyz both answer 503
// "not ready"; why (the dial error, with the address) is in the log only.
func TestReadyzKeepsTheReasonInTheLog(t *testing.T) {
	_, port, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	adminAddr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL":          pgtest.NewURL(t),
		"REDIS_URL":             "redis://127.0.0.1:1/0", // nothing listens on port 1
		"PORT":                  port,
		"ADMIN_ADDR":            adminAddr,
		"STRIPE_WEBHOOK_SECRET": "whsec_readyz",
	}
	var logs proctest.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	listening := make(chan string, 1)
	go func() { done <- serve(ctx, startup.MapEnv(env), &logs, listening) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("web did not stop")
		}
	})
	var public string
	select {
	case public = <-listening:
	case err := <-done:
		t.Fatalf("web stopped: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("web did not start:\n%s", logs.String())
	}
	_, publicPort, err := net.SplitHostPort(public)
	require.NoError(t, err)

	for _, base := range []string{"http://127.0.0.1:" + publicPort, "http://" + adminAddr} {
		res, err := http.Get(base + "/readyz")
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, base)
		assert.Equal(t, "not ready\n", string(body), base)
		assert.NotContains(t, string(body), "127.0.0.1:1", base)
	}
	assert.Contains(t, logs.String(), "127.0.0.1:1", "the log names the unreachable dependency")
	assert.Contains(t, logs.String(), `"msg":"not ready"`)
}
