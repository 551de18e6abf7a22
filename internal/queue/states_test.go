package queue_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
)

// States reads Asynq's own key layout; this holds it to what the Inspector
// says for a task in every state, so an Asynq upgrade that moves the state
// elsewhere fails here rather than in the inbox sweep.
func TestTaskStatesAgreeWithInspector(t *testing.T) {
	t.Parallel()
	rdb, url := redistest.NewClient(t)
	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	const q = "states"
	enqueue := func(typ, id string, opts ...asynq.Option) {
		t.Helper()
		_, err := client.Enqueue(asynq.NewTask(typ, nil), append([]asynq.Option{asynq.Queue(q), asynq.TaskID(id), asynq.MaxRetry(3)}, opts...)...)
		require.NoError(t, err)
	}

	// A worker completes "ok" tasks (kept an hour), fails "fail" tasks (to
	// retry in an hour) and holds "hold" tasks until the test ends.
	release := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc("ok", func(context.Context, *asynq.Task) error { return nil })
	mux.HandleFunc("fail", func(context.Context, *asynq.Task) error { return errors.New("try later") })
	mux.HandleFunc("hold", func(ctx context.Context, _ *asynq.Task) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:    2,
		Queues:         map[string]int{q: 1},
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:         queue.Logger{L: slog.New(slog.NewTextHandler(io.Discard, nil))},
		LogLevel:       asynq.FatalLevel,
	})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
	t.Cleanup(func() { close(release) })

	enqueue("ok", "completed", asynq.Retention(time.Hour))
	enqueue("fail", "retry")
	enqueue("hold", "active")
	enqueue("none", "scheduled", asynq.ProcessIn(time.Hour))
	enqueue("none", "archived", asynq.ProcessIn(time.Hour))
	require.NoError(t, insp.ArchiveTask(q, "archived"))
	require.Eventually(t, func() bool {
		states := map[string]asynq.TaskState{}
		for _, id := range []string{"completed", "retry", "active"} {
			if info, err := insp.GetTaskInfo(q, id); err == nil {
				states[id] = info.State
			}
		}
		return states["completed"] == asynq.TaskStateCompleted && states["retry"] == asynq.TaskStateRetry && states["active"] == asynq.TaskStateActive
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, srv.Ping()) // still serving: "active" stays held
	require.NoError(t, insp.PauseQueue(q))
	enqueue("none", "pending")

	ids := []string{"pending", "active", "scheduled", "retry", "archived", "completed", "missing"}
	trips := &redistest.RoundTrips{}
	rdb.AddHook(trips)
	states, err := queue.NewTasks(rdb).States(context.Background(), q, ids)
	require.NoError(t, err)

	assert.Equal(t, int64(1), trips.Count(), "one round trip for every id")
	for i, id := range ids {
		info, err := insp.GetTaskInfo(q, id)
		if id == "missing" {
			require.ErrorIs(t, err, asynq.ErrTaskNotFound)
			assert.Empty(t, states[i], "no task, no state")
			continue
		}
		require.NoError(t, err, id)
		assert.Equal(t, info.State.String(), states[i], id)
	}

	none, err := queue.NewTasks(rdb).States(context.Background(), q, nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestRevokedIsNotAFailure(t *testing.T) {
	t.Parallel()
	err := queue.Revoked(errors.New("parked"))
	assert.ErrorIs(t, err, asynq.RevokeTask)
	assert.False(t, queue.IsFailure(err))
	assert.Contains(t, err.Error(), "parked")
}
