package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
)

// counts is what the middleware recorded for one task type in one queue.
type counts struct{ processed, failed, retried, archived, durations float64 }

func observed(taskType, qname string) counts {
	labels := map[string]string{"task_type": taskType, "queue": qname}
	return counts{
		processed: sample("cleantrack_tasks_processed_total", labels),
		failed:    sample("cleantrack_tasks_failed_total", labels),
		retried:   sample("cleantrack_tasks_retried_total", labels),
		archived:  sample("cleantrack_tasks_archived_total", labels),
		durations: sample("cleantrack_task_duration_seconds", map[string]string{"task_type": taskType}),
	}
}

// sample reads one series from a scrape of metrics.Registry: a counter's value
// or a histogram's observation count; 0 when the series does not exist.
func sample(name string, labels map[string]string) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return -1
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; !ok || want != l.GetValue() {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestTaskMiddlewareThroughAsynqServer(t *testing.T) {
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)

	// runs counts handler calls per task type, so a handler can behave
	// differently on its first and later attempts.
	var mu sync.Mutex
	runs := map[string]int{}
	attempt := func(typ string) int {
		mu.Lock()
		defer mu.Unlock()
		runs[typ]++
		return runs[typ]
	}

	cases := []struct {
		name     string
		maxRetry int
		handler  func(n int) error
		want     counts
	}{
		{"test:ok", 3, func(int) error { return nil }, counts{processed: 1}},
		{"test:transient", 2, func(int) error { return errors.New("smtp timeout") }, counts{processed: 3, failed: 3, retried: 2, archived: 1}},
		{"test:poison", 5, func(int) error { return fmt.Errorf("bad payload: %w", asynq.SkipRetry) }, counts{processed: 1, failed: 1, archived: 1}},
		{"test:ratelimited", 1, func(n int) error {
			if n == 1 {
				return queue.RateLimited(time.Millisecond, errors.New("429 too many requests"))
			}
			return nil
		}, counts{processed: 2, retried: 1}},
		{"test:panic", 0, func(int) error { panic("nil map") }, counts{processed: 1, failed: 1, archived: 1}},
	}

	mux := asynq.NewServeMux()
	mux.Use(metrics.TaskMiddleware(queue.IsFailure))
	for _, tc := range cases {
		h := tc.handler
		typ := tc.name
		mux.HandleFunc(typ, func(context.Context, *asynq.Task) error { return h(attempt(typ)) })
	}
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:              4,
		Queues:                   map[string]int{"default": 1},
		IsFailure:                queue.IsFailure,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return time.Millisecond },
		DelayedTaskCheckInterval: 20 * time.Millisecond,
		LogLevel:                 asynq.FatalLevel,
	})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)

	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	for _, tc := range cases {
		_, err := client.Enqueue(asynq.NewTask(tc.name, nil), asynq.MaxRetry(tc.maxRetry), asynq.Retention(time.Hour))
		require.NoError(t, err)
	}

	// Wait until Asynq is done with every task: completed or archived.
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	require.Eventually(t, func() bool {
		info, err := insp.GetQueueInfo("default")
		return err == nil && info.Completed+info.Archived == len(cases)
	}, 15*time.Second, 20*time.Millisecond)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			want.durations = want.processed // every run is timed
			assert.Equal(t, want, observed(tc.name, "default"))
		})
	}
}
