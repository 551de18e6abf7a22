package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/logging"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/queue"
)

type line struct {
	Level     string  `json:"level"`
	Msg       string  `json:"msg"`
	Component string  `json:"component"`
	Count     int     `json:"count"`
	Interval  float64 `json:"interval_seconds"`
	Last      string  `json:"last"`
}

// lines parses out, failing on any line that is not a JSON object.
func lines(t *testing.T, out string) []line {
	t.Helper()
	var ls []line
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		if s == "" {
			continue
		}
		var l line
		require.NoError(t, json.Unmarshal([]byte(s), &l), "not a JSON line: %q", s)
		ls = append(ls, l)
	}
	return ls
}

func TestSummaryLogsFirstThenCounts(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	s := logging.NewSummary(slog.New(slog.NewJSONHandler(&buf, nil)), 15*time.Second)
	for i := range 100 {
		s.Add("redis", slog.LevelError, "redis: connection pool: failed to dial after 5 attempts: try "+string(rune('0'+i%10)))
	}
	for range 5 {
		s.Add("asynq", slog.LevelWarn, "Failed to write server state data")
	}
	ls := lines(t, buf.String())
	require.Len(t, ls, 2, "the first message of each source, at once")
	assert.Equal(t, "redis: connection pool: failed to dial after 5 attempts: try 0", ls[0].Msg)
	assert.Equal(t, "redis", ls[0].Component)
	assert.Equal(t, "ERROR", ls[0].Level)

	buf.Reset()
	s.Flush()
	ls = lines(t, buf.String())
	require.Len(t, ls, 2, "one summary per source")
	byComponent := map[string]line{}
	for _, l := range ls {
		byComponent[l.Component] = l
	}
	assert.Regexp(t, `^redis: 99 errors in the last \d+(ms|s)$`, byComponent["redis"].Msg)
	assert.Equal(t, 99, byComponent["redis"].Count)
	assert.Less(t, byComponent["redis"].Interval, 15.0, "the time since the summary began, not more")
	assert.Equal(t, "redis: connection pool: failed to dial after 5 attempts: try 9", byComponent["redis"].Last)
	assert.Regexp(t, `^asynq: 4 warnings in the last `, byComponent["asynq"].Msg)
	assert.Equal(t, "WARN", byComponent["asynq"].Level)

	// Still failing: counted again, one line per interval.
	buf.Reset()
	s.Add("redis", slog.LevelError, "again")
	assert.Empty(t, buf.String())
	s.Flush()
	ls = lines(t, buf.String())
	require.Len(t, ls, 1)
	assert.Regexp(t, `^redis: 1 error in the last `, ls[0].Msg)

	// A quiet interval: the source is forgotten, its next message is
	// logged at once.
	buf.Reset()
	s.Flush()
	s.Flush()
	assert.Empty(t, buf.String())
	s.Add("redis", slog.LevelError, "back again")
	ls = lines(t, buf.String())
	require.Len(t, ls, 1)
	assert.Equal(t, "back again", ls[0].Msg)
}

// With Redis unreachable, go-redis, Asynq's server and Asynq's metrics
// collector all complain, over and over. Routed, they print JSON lines only,
// and a bounded number of them per interval.
func TestRoutedLibrariesPrintBoundedJSON(t *testing.T) {
	var buf lockedBuffer
	const interval = 500 * time.Millisecond
	s := logging.NewSummary(slog.New(slog.NewJSONHandler(&buf, nil)), interval)
	restore := logging.Route(s)
	defer restore()
	s.Start()

	dead := proctest.FreeAddrT(t)
	started := time.Now()
	// Asynq's server, as the worker runs it.
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: dead, DialTimeout: 100 * time.Millisecond}, asynq.Config{
		Concurrency: 1, LogLevel: asynq.WarnLevel,
		Logger: queue.Logger{L: slog.New(slog.NewJSONHandler(&buf, nil)), Summary: s},
	})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })))
	// A go-redis client, as the readiness checks use one.
	rdb := redis.NewClient(&redis.Options{Addr: dead, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	// Asynq's queue metrics collector, as the web process's /metrics runs it.
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: dead, DialTimeout: 100 * time.Millisecond})
	defer insp.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewQueueMetricsCollector(insp))
	for time.Since(started) < 2*time.Second {
		_ = rdb.Ping(context.Background()).Err()
		_, _ = reg.Gather()
		time.Sleep(20 * time.Millisecond)
	}
	srv.Shutdown()
	s.Close()
	elapsed := time.Since(started)

	ls := lines(t, buf.String())
	perComponent := map[string]int{}
	summarised := map[string]int{}
	for _, l := range ls {
		perComponent[l.Component]++
		summarised[l.Component] += l.Count
	}
	for _, c := range []string{logging.SourceRedis, logging.SourceMetrics, logging.SourceAsynq} {
		assert.Positive(t, perComponent[c], "%s messages arrive as JSON", c)
	}
	// go-redis fails at every dial of every client: many more messages than
	// lines.
	assert.Greater(t, summarised[logging.SourceRedis], perComponent[logging.SourceRedis], "go-redis repeated itself and was summarised")
	// Per source, at most one summary per flush (each interval, and Close)
	// and one first message after each flush.
	flushes := int(elapsed/interval) + 1
	for c, n := range perComponent {
		if c == "" {
			continue // Asynq's own lines at start and shutdown, not repeated
		}
		assert.LessOrEqual(t, n, 2*flushes+1, "%s printed %d lines in %s", c, n, elapsed)
	}
	if t.Failed() {
		t.Log(buf.String())
	}
}

// The standard log package's lines land in the summary too, not on stderr
// in another format.
func TestStandardLogRouted(t *testing.T) {
	var buf lockedBuffer
	s := logging.NewSummary(slog.New(slog.NewJSONHandler(&buf, nil)), time.Minute)
	restore := logging.Route(s)
	log.Printf("error: could not delete task with id %q", "t1")
	restore()
	ls := lines(t, buf.String())
	require.Len(t, ls, 1)
	assert.Equal(t, `error: could not delete task with id "t1"`, ls[0].Msg)
	assert.Equal(t, logging.SourceLog, ls[0].Component)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *lockedBuffer) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Reset()
}
