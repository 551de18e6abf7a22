package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/startup"
	"github.com/cleantrack/jobs/tasks"
)

// Every task type's series are there at zero as soon as the worker serves
// /metrics, before any task ran: a rate() alert sees 0, not nothing.
func TestMetricsStartAtZeroForEveryTaskType(t *testing.T) {
	addr := proctest.FreeAddrT(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"worker"}, startup.MapEnv(map[string]string{
			"DATABASE_URL":        pgtest.NewURL(t),
			"REDIS_URL":           redistest.NewURL(t),
			"WORKER_METRICS_ADDR": addr,
		}), io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("the worker did not stop")
		}
	})

	var body []byte
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond)

	require.NotEmpty(t, tasks.Types)
	for typ, s := range tasks.Types {
		for _, series := range []string{
			"cleantrack_tasks_processed_total", "cleantrack_tasks_failed_total",
			"cleantrack_tasks_retried_total", "cleantrack_tasks_archived_total",
		} {
			line := fmt.Sprintf("%s{queue=%q,task_type=%q} 0\n", series, s.Queue, typ)
			assert.True(t, bytes.Contains(body, []byte(line)), "missing %q", line)
		}
		line := fmt.Sprintf("cleantrack_task_duration_seconds_count{task_type=%q} 0\n", typ)
		assert.True(t, bytes.Contains(body, []byte(line)), "missing %q", line)
	}
}
