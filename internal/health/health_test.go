package health_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/health"
)

func get(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, string(body)
}

func TestLive(t *testing.T) {
	code, body := get(t, http.HandlerFunc(health.Live))
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
}

func TestReady(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var failure error
	h := health.Ready(func(context.Context) error { return failure }, log)

	code, body := get(t, h)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready\n", body)
	assert.Empty(t, logs.String())

	failure = errors.New("redis: dial tcp 10.0.0.7:6379: connect: connection refused")
	code, body = get(t, h)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "not ready\n", body, "the caller sees the status only")
	assert.Contains(t, logs.String(), "10.0.0.7:6379", "the reason goes to the log")
	assert.Contains(t, logs.String(), `"level":"WARN"`)
}

func TestReadyWithoutCheckOrLog(t *testing.T) {
	code, body := get(t, health.Ready(nil, nil))
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready\n", body)

	code, _ = get(t, health.Ready(func(context.Context) error { return errors.New("down") }, nil))
	assert.Equal(t, http.StatusServiceUnavailable, code)
}

// A check that hangs is cut off at health.Timeout, not left to the prober.
func TestReadyBoundsTheCheck(t *testing.T) {
	var deadline time.Time
	h := health.Ready(func(ctx context.Context) error {
		deadline, _ = ctx.Deadline()
		<-ctx.Done()
		return ctx.Err()
	}, nil)
	start := time.Now()
	code, _ := get(t, h)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.WithinDuration(t, start.Add(health.Timeout), deadline, time.Second)
}
