package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
)

func TestWorkersAndCancel(t *testing.T) {
	t.Parallel()
	url := redistest.NewURL(t)
	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	env := map[string]string{"REDIS_URL": url}

	out, _, err := cli(t, env, "workers")
	require.NoError(t, err)
	assert.Contains(t, out, "no live worker")

	// A worker whose task runs until it is cancelled.
	cancelled := make(chan error, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:slow", func(ctx context.Context, _ *asynq.Task) error {
		<-ctx.Done()
		cancelled <- ctx.Err()
		return ctx.Err()
	})
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: 2, Queues: map[string]int{"critical": 6, "low": 1}, LogLevel: asynq.FatalLevel,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
	})
	require.NoError(t, srv.Start(mux))
	defer srv.Shutdown()
	_, err = client.Enqueue(asynq.NewTask("test:slow", nil), asynq.Queue("low"), asynq.TaskID("slow-1"), asynq.MaxRetry(3))
	require.NoError(t, err)

	// Workers report what they run with their heartbeat, every 5 s.
	require.Eventually(t, func() bool {
		out, _, err = cli(t, env, "workers")
		return err == nil && strings.Contains(out, "slow-1")
	}, 20*time.Second, 200*time.Millisecond, out)
	host, _ := os.Hostname()
	assert.Contains(t, out, "1 live worker, 1 running task\n")
	assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(host)+` +`+fmt.Sprint(os.Getpid())+` +2 +critical=6,low=1 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +active +1$`, out)
	assert.Regexp(t, `(?m)^slow-1 +test:slow +low +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +`+regexp.QuoteMeta(host)+` +\d+$`, out)

	out, _, err = cli(t, env, "workers", "--json")
	require.NoError(t, err)
	var ws []workerView
	require.NoError(t, json.Unmarshal([]byte(out), &ws), out)
	require.Len(t, ws, 1)
	assert.Equal(t, os.Getpid(), ws[0].PID)
	assert.Equal(t, 2, ws[0].Concurrency)
	assert.Equal(t, map[string]int{"critical": 6, "low": 1}, ws[0].Queues)
	require.Len(t, ws[0].Active, 1)
	assert.Equal(t, "slow-1", ws[0].Active[0].ID)

	// A running task cannot be deleted; the message names the way out.
	_, _, err = cli(t, env, "tasks", "delete", "low", "slow-1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cleantrack tasks cancel slow-1")

	_, _, err = cli(t, env, "tasks", "cancel", "nosuch")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), `task "nosuch" is not running on any live worker`)

	out, _, err = cli(t, env, "tasks", "cancel", "slow-1")
	require.NoError(t, err)
	assert.Contains(t, out, "to cancel task slow-1 (test:slow, queue low)")
	select {
	case err := <-cancelled:
		assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
	require.Eventually(t, func() bool { return stateOf(t, insp, "low", "slow-1") == "retry" },
		10*time.Second, 50*time.Millisecond, "a cancelled task is retried by its policy")
}

func TestBulkByStateAndType(t *testing.T) {
	t.Parallel()
	url := redistest.NewURL(t)
	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	env := map[string]string{"REDIS_URL": url}
	const q = "bulkq"
	enqueue := func(typ, id string, opts ...asynq.Option) {
		_, err := client.Enqueue(asynq.NewTask(typ, []byte(`{}`)), append([]asynq.Option{asynq.Queue(q), asynq.TaskID(id)}, opts...)...)
		require.NoError(t, err)
	}
	for i := range 3 {
		enqueue("email:send", fmt.Sprintf("mail-%d", i))
		enqueue("email:send", fmt.Sprintf("later-mail-%d", i), asynq.ProcessIn(time.Hour))
	}
	for i := range 2 {
		enqueue("test:other", fmt.Sprintf("other-%d", i))
	}
	enqueue("test:other", "later-other", asynq.ProcessIn(time.Hour))
	count := func() *asynq.QueueInfo {
		info, err := insp.GetQueueInfo(q)
		require.NoError(t, err)
		return info
	}

	out, _, err := cli(t, env, "tasks", "list", q, "pending", "--type", "email:send", "--limit", "2")
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(out, "\n")-1, "a header, two rows and the note: %s", out)
	assert.Contains(t, out, "showing 2 of 3 pending email:send tasks in bulkq; --limit 3 shows all")
	assert.NotContains(t, out, "test:other")
	out, _, err = cli(t, env, "tasks", "list", q, "pending", "--type", "report:nothing")
	require.NoError(t, err)
	assert.Contains(t, out, "no pending report:nothing tasks in queue bulkq")
	assert.Contains(t, out, `no worker serves type "report:nothing"`)

	out, _, err = cli(t, env, "tasks", "delete", q, "--all", "pending", "--type", "test:other")
	require.NoError(t, err)
	assert.Equal(t, "deleted 2 pending test:other tasks from bulkq\n", out)
	assert.Equal(t, 3, count().Pending)

	out, _, err = cli(t, env, "tasks", "retry", q, "--all", "scheduled", "--type", "test:other", "--json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"queue":"bulkq","state":"scheduled","type":"test:other","retried":1}`, out)
	out, _, err = cli(t, env, "tasks", "retry", q, "--all", "scheduled")
	require.NoError(t, err)
	assert.Equal(t, "retried 3 scheduled tasks in bulkq; they are pending and workers run them next\n", out)
	assert.Equal(t, 7, count().Pending)
	assert.Equal(t, 0, count().Scheduled)

	// Tasks a worker failed wait in retry.
	mux := asynq.NewServeMux()
	mux.HandleFunc("email:send", func(context.Context, *asynq.Task) error { return errors.New("resend is down") })
	mux.HandleFunc("test:other", func(context.Context, *asynq.Task) error { return errors.New("still broken") })
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: 4, Queues: map[string]int{q: 1}, LogLevel: asynq.FatalLevel,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
	})
	require.NoError(t, srv.Start(mux))
	require.Eventually(t, func() bool { return count().Retry == 7 }, 10*time.Second, 20*time.Millisecond)
	srv.Shutdown()

	out, _, err = cli(t, env, "tasks", "retry", q, "--all", "retry", "--type", "test:other")
	require.NoError(t, err)
	assert.Equal(t, "retried 1 retry test:other task in bulkq; they are pending and workers run them next\n", out)
	out, _, err = cli(t, env, "tasks", "delete", q, "--all", "retry")
	require.NoError(t, err)
	assert.Equal(t, "deleted 6 retry tasks from bulkq\n", out)
	info := count()
	assert.Equal(t, 0, info.Retry)
	assert.Equal(t, 1, info.Pending)
	assert.Equal(t, "pending", stateOf(t, insp, q, "later-other"))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tasks", "retry", q, "--all", "pending"}, `--all "pending": tasks retry acts on archived, retry, scheduled tasks`},
		{[]string{"tasks", "delete", q, "--all", "active"}, `--all "active": tasks delete acts on archived, retry, pending, scheduled tasks`},
		{[]string{"tasks", "delete", q, "mail-1", "--type", "email:send"}, "--type goes with --all"},
		{[]string{"tasks", "delete", q, "--all", "retry", "--all-archived"}, "--all and --all-archived exclude each other"},
		{[]string{"tasks", "delete", q, "mail-1", "--all", "retry"}, "no task id with --all"},
		{[]string{"tasks", "cancel"}, "usage: cleantrack tasks cancel <task-id>"},
	} {
		_, _, err := cli(t, env, tc.args...)
		require.Error(t, err, tc.args)
		assert.Contains(t, err.Error(), tc.want)
		assert.Equal(t, 2, exitCode(err), tc.args)
	}
}
