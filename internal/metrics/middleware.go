package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// Per task type series, counted by TaskMiddleware in the worker. Asynq's own
// queue gauges (asynq_*) come from the web process's admin listener.
var (
	// TasksProcessed counts handler runs, whatever their result.
	TasksProcessed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cleantrack_tasks_processed_total",
		Help: "Task handler runs by task type and queue, succeeded or not.",
	}, []string{"task_type", "queue"})

	// TasksFailed counts runs that returned an error counting as a failure
	// (a rate-limited run is retried but is not a failure).
	TasksFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cleantrack_tasks_failed_total",
		Help: "Task handler runs that failed, by task type and queue (rate limits excluded).",
	}, []string{"task_type", "queue"})

	// TasksRetried counts runs after which the task was put back to run again.
	TasksRetried = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cleantrack_tasks_retried_total",
		Help: "Task handler runs after which the task is retried, by task type and queue.",
	}, []string{"task_type", "queue"})

	// TasksArchived counts runs after which the task was archived: a permanent
	// failure (asynq.SkipRetry) or retries exhausted. Archived tasks wait for
	// an operator (cleantrack tasks retry|delete).
	TasksArchived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cleantrack_tasks_archived_total",
		Help: "Task handler runs after which the task is archived (permanent failure or retries exhausted), by task type and queue.",
	}, []string{"task_type", "queue"})

	// TaskDuration is the handler run time, successful or not.
	TaskDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cleantrack_task_duration_seconds",
		Help:    "Task handler run time by task type.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"task_type"})
)

func init() {
	Registry.MustRegister(TasksProcessed, TasksFailed, TasksRetried, TasksArchived, TaskDuration)
}

// InitTaskSeries creates every per-task-type series at zero for each task
// type and the queue it runs in (type -> queue), so that a rate() alert sees
// 0 from the worker's start rather than no series until a task of that type
// ran. The worker calls it once at start with tasks.Types.
func InitTaskSeries(queues map[string]string) {
	for taskType, q := range queues {
		TasksProcessed.WithLabelValues(taskType, q)
		TasksFailed.WithLabelValues(taskType, q)
		TasksRetried.WithLabelValues(taskType, q)
		TasksArchived.WithLabelValues(taskType, q)
		TaskDuration.WithLabelValues(taskType)
	}
}

// TaskMiddleware counts every task run into the Tasks* series and
// TaskDuration. isFailure must be the server's asynq.Config.IsFailure (nil
// means every error is a failure), so the counts agree with what Asynq does
// next. Install it with mux.Use(metrics.TaskMiddleware(queue.IsFailure)).
func TaskMiddleware(isFailure func(error) bool) asynq.MiddlewareFunc {
	if isFailure == nil {
		isFailure = func(error) bool { return true }
	}
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) (err error) {
			qname, _ := asynq.GetQueueName(ctx)
			start := time.Now()
			finished := false
			defer func() {
				TaskDuration.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds())
				if !finished {
					// A panic: Asynq recovers it and treats it as an error,
					// so count it as one and let it continue upwards.
					observeResult(ctx, t.Type(), qname, errors.New("panic"), isFailure)
				}
			}()
			err = next.ProcessTask(ctx, t)
			finished = true
			observeResult(ctx, t.Type(), qname, err, isFailure)
			return err
		})
	}
}

// observeResult mirrors Asynq's decision after a run (processor.go,
// handleFailedMessage): RevokeTask drops the task, SkipRetry or exhausted
// retries archive it, anything else retries it.
func observeResult(ctx context.Context, taskType, qname string, err error, isFailure func(error) bool) {
	TasksProcessed.WithLabelValues(taskType, qname).Inc()
	if err == nil {
		return
	}
	if isFailure(err) {
		TasksFailed.WithLabelValues(taskType, qname).Inc()
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	switch {
	case errors.Is(err, asynq.RevokeTask):
	case retried >= maxRetry || errors.Is(err, asynq.SkipRetry):
		TasksArchived.WithLabelValues(taskType, qname).Inc()
	default:
		TasksRetried.WithLabelValues(taskType, qname).Inc()
	}
}
