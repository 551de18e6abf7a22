package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/logging"
	"github.com/cleantrack/jobs/internal/proctest"
)

// With Redis unreachable each process used to print plain lines from
// go-redis ("redis: 2026/11/30 ... pool.go:770: ...") and from Asynq's
// metrics collector ("Failed to collect metrics data...") among its JSON
// lines. Now every line is JSON, and the libraries' repeated failures come
// as a first line and then one summary per interval.
func TestRedisDownLogsJSONOnly(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.env["REDIS_URL"] = "redis://" + proctest.FreeAddrT(t) + "/0"
	s.env["LOG_LEVEL"] = "info"
	started := time.Now()
	web := start(t, "web", s.env)
	proctest.WaitHTTPT(t, s.webURL+"/healthz", web)
	worker := start(t, "worker", s.env)
	proctest.WaitHTTPT(t, "http://"+s.env["WORKER_METRICS_ADDR"]+"/healthz", worker)
	sched := start(t, "scheduler", s.env)
	proctest.WaitHTTPT(t, "http://"+s.env["SCHEDULER_METRICS_ADDR"]+"/healthz", sched)

	// Scrapes and probes keep every Redis client of every process busy
	// failing for a few seconds.
	for time.Since(started) < 8*time.Second {
		for _, u := range []string{s.adminURL + "/metrics", s.adminURL + "/readyz", s.webURL + "/readyz",
			"http://" + s.env["WORKER_METRICS_ADDR"] + "/readyz", "http://" + s.env["SCHEDULER_METRICS_ADDR"] + "/readyz"} {
			if res, err := http.Get(u); err == nil {
				res.Body.Close()
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range []*proctest.Proc{web, worker, sched} {
		require.NoError(t, p.Stop(proctest.StopTimeout))
	}
	elapsed := time.Since(started)
	// At most one summary per interval and at Close, and one first message
	// after each.
	flushes := int(elapsed/logging.DefaultInterval) + 1
	bound := 2*flushes + 1

	for _, p := range []*proctest.Proc{web, worker, sched} {
		perComponent := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(p.Log()), "\n") {
			var v struct {
				Msg       string `json:"msg"`
				Component string `json:"component"`
			}
			if !assert.NoError(t, json.Unmarshal([]byte(line), &v), "%s printed a line that is not JSON: %q", p.Name(), line) {
				continue
			}
			perComponent[v.Component]++
		}
		assert.Positive(t, perComponent[logging.SourceRedis], "%s reports go-redis's failures", p.Name())
		for _, c := range []string{logging.SourceRedis, logging.SourceAsynq, logging.SourceMetrics, logging.SourceLog} {
			assert.LessOrEqual(t, perComponent[c], bound, "%s: %d %s lines in %s", p.Name(), perComponent[c], c, elapsed.Round(time.Second))
		}
		if p == web {
			assert.Positive(t, perComponent[logging.SourceMetrics], "web reports the failed scrapes of the queue gauges")
		}
		if t.Failed() {
			t.Logf("---- %s ----\n%s", p.Name(), p.Log())
		}
	}
}
