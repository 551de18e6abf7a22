package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/tasks"
)

// opsFixture is a Redis holding what an operator meets: a pending Stripe event
// in critical, a scheduled task in default, and tasks the worker archived in
// low with their error.
type opsFixture struct {
	env       map[string]string
	inspector *asynq.Inspector
	client    *asynq.Client
}

func newOpsFixture(t *testing.T) *opsFixture {
	t.Helper()
	url := redistest.NewURL(t)
	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	f := &opsFixture{env: map[string]string{"REDIS_URL": url}, inspector: asynq.NewInspector(opt), client: asynq.NewClient(opt)}
	t.Cleanup(func() {
		f.client.Close()
		f.inspector.Close()
	})

	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: "evt_pending_1", Type: "invoice.payment_failed"})
	require.NoError(t, err)
	_, err = f.client.Enqueue(task)
	require.NoError(t, err)
	_, err = f.client.Enqueue(asynq.NewTask("report:weekly", []byte(`{"week":"2026-W48"}`)),
		asynq.Queue(tasks.QueueDefault), asynq.TaskID("later"), asynq.ProcessIn(time.Hour))
	require.NoError(t, err)

	// Three poison tasks, archived by a real worker with their reason.
	for i := 1; i <= 3; i++ {
		_, err = f.client.Enqueue(asynq.NewTask("test:poison", []byte(fmt.Sprintf(`{"account_id":%d}`, i))),
			asynq.Queue(tasks.QueueLow), asynq.TaskID(fmt.Sprintf("poison-%d", i)), asynq.MaxRetry(5))
		require.NoError(t, err)
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:poison", func(context.Context, *asynq.Task) error {
		return fmt.Errorf("account has no owner: %w", asynq.SkipRetry)
	})
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 3, Queues: map[string]int{tasks.QueueLow: 1}, LogLevel: asynq.FatalLevel})
	require.NoError(t, srv.Start(mux))
	require.Eventually(t, func() bool {
		info, err := f.inspector.GetQueueInfo(tasks.QueueLow)
		return err == nil && info.Archived == 3
	}, 10*time.Second, 20*time.Millisecond)
	srv.Shutdown()
	return f
}

func (f *opsFixture) cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return cli(t, f.env, args...)
}

func (f *opsFixture) state(t *testing.T, q, id string) string {
	t.Helper()
	return stateOf(t, f.inspector, q, id)
}

func TestQueuesCommand(t *testing.T) {
	t.Parallel()
	f := newOpsFixture(t)

	t.Run("table", func(t *testing.T) {
		out, _, err := f.cli(t, "queues")
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 4, out)
		header := lines[0]
		assert.Equal(t, strings.Fields("QUEUE STATE PENDING ACTIVE SCHEDULED RETRY ARCHIVED COMPLETED LATENCY PROCESSED TODAY FAILED TODAY"), strings.Fields(header))
		// Aligned: every row's ARCHIVED column starts where the header's does.
		col := strings.Index(header, "ARCHIVED")
		for _, l := range lines[1:] {
			require.Greater(t, len(l), col, l)
			assert.NotEqual(t, ' ', rune(l[col]), "aligned column in %q", l)
			assert.Equal(t, ' ', rune(l[col-1]), "aligned column in %q", l)
		}
		byQueue := map[string][]string{}
		for _, l := range lines[1:] {
			fields := strings.Fields(l)
			byQueue[fields[0]] = fields
		}
		assert.Equal(t, []string{"critical", "running", "1", "0", "0", "0", "0", "0"}, byQueue["critical"][:8])
		assert.Equal(t, []string{"default", "running", "0", "0", "1", "0", "0", "0"}, byQueue["default"][:8])
		assert.Equal(t, []string{"low", "running", "0", "0", "0", "0", "3", "0"}, byQueue["low"][:8])
	})

	t.Run("json", func(t *testing.T) {
		out, _, err := f.cli(t, "queues", "--json")
		require.NoError(t, err)
		var rows []opsQueue
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		require.Len(t, rows, 3)
		assert.Equal(t, "critical", rows[0].Queue)
		assert.Equal(t, 1, rows[0].Pending)
		assert.Greater(t, rows[0].LatencySeconds, 0.0, "a pending task makes latency")
		assert.Equal(t, 1, rows[1].Scheduled)
		assert.Equal(t, 3, rows[2].Archived)
		assert.Equal(t, 3, rows[2].FailedToday)
	})

	t.Run("pause and unpause", func(t *testing.T) {
		out, _, err := f.cli(t, "queues", "pause", "critical")
		require.NoError(t, err)
		assert.Contains(t, out, "paused queue critical")
		info, err := f.inspector.GetQueueInfo("critical")
		require.NoError(t, err)
		assert.True(t, info.Paused)

		out, _, err = f.cli(t, "queues")
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^critical\s+paused\s`, out)

		out, _, err = f.cli(t, "queues", "pause", "critical")
		require.NoError(t, err, "pausing twice is not an error")
		assert.Contains(t, out, "already paused")

		out, _, err = f.cli(t, "queues", "unpause", "critical", "--json")
		require.NoError(t, err)
		assert.JSONEq(t, `{"queue":"critical","paused":false}`, out)
		info, err = f.inspector.GetQueueInfo("critical")
		require.NoError(t, err)
		assert.False(t, info.Paused)
	})

	t.Run("unknown queue", func(t *testing.T) {
		_, _, err := f.cli(t, "queues", "pause", "critcal")
		require.Error(t, err)
		assert.Equal(t, 1, exitCode(err))
		assert.Contains(t, err.Error(), `unknown queue "critcal": the queues are critical, default, low`)
	})
}

func TestTasksListAndShow(t *testing.T) {
	t.Parallel()
	f := newOpsFixture(t)

	t.Run("archived table with the reason", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "list", "low", "archived")
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 4, out)
		assert.Equal(t, strings.Fields("ID TYPE RETRIED FAILED AT LAST ERROR"), strings.Fields(lines[0]))
		for _, l := range lines[1:] {
			assert.Regexp(t, `^poison-\d\s+test:poison\s+0/5\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+account has no owner: skip retry for the task$`, l)
		}
	})

	t.Run("limit says how many more there are", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "list", "low", "archived", "--limit", "1")
		require.NoError(t, err)
		assert.Contains(t, out, "showing 1 of 3 archived tasks in low; --limit 3 shows all")
	})

	t.Run("json", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "list", "critical", "pending", "--json")
		require.NoError(t, err)
		var got []opsTask
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		require.Len(t, got, 1)
		assert.Equal(t, "evt_pending_1", got[0].ID)
		assert.Equal(t, tasks.TypeStripeEvent, got[0].Type)
		assert.Equal(t, "pending", got[0].State)
		assert.JSONEq(t, `{"event_id":"evt_pending_1","type":"invoice.payment_failed"}`, string(got[0].Payload))
	})

	t.Run("empty state", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "list", "critical", "retry")
		require.NoError(t, err)
		assert.Equal(t, "no retry tasks in queue critical\n", out)
	})

	t.Run("show", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "show", "low", "poison-2")
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^state\s+archived$`, out)
		assert.Regexp(t, `(?m)^retried\s+0 of 5$`, out)
		assert.Regexp(t, `(?m)^last error\s+account has no owner: skip retry for the task$`, out)
		assert.Contains(t, out, "payload:\n{\n  \"account_id\": 2\n}\n")
		assert.Contains(t, out, "run it now: cleantrack tasks retry low poison-2")
	})

	t.Run("show json", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "show", "default", "later", "--json")
		require.NoError(t, err)
		var got opsTask
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		assert.Equal(t, "scheduled", got.State)
		require.NotNil(t, got.NextProcessAt)
		assert.WithinDuration(t, time.Now().Add(time.Hour), *got.NextProcessAt, time.Minute)
		assert.JSONEq(t, `{"week":"2026-W48"}`, string(got.Payload))
	})

	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"task not found", []string{"tasks", "show", "low", "nope"}, 1, `task "nope" not found in queue low`},
		{"unknown queue", []string{"tasks", "list", "urgent", "pending"}, 1, `unknown queue "urgent"`},
		{"unknown state", []string{"tasks", "list", "low", "failed"}, 2, `unknown state "failed": use one of pending, active, scheduled, retry, archived, completed`},
		{"missing state", []string{"tasks", "list", "low"}, 2, "usage: cleantrack tasks list <queue>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.cli(t, tc.args...)
			require.Error(t, err)
			assert.Equal(t, tc.wantCode, exitCode(err))
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

func TestTasksRetryAndDelete(t *testing.T) {
	t.Parallel()
	f := newOpsFixture(t)

	t.Run("retry one archived task", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "retry", "low", "poison-1")
		require.NoError(t, err)
		assert.Contains(t, out, "task poison-1 in low is pending again")
		assert.Equal(t, "pending", f.state(t, "low", "poison-1"))
	})

	t.Run("retry a pending task says why not", func(t *testing.T) {
		_, _, err := f.cli(t, "tasks", "retry", "critical", "evt_pending_1")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "already pending: a worker runs it when one is free")
	})

	t.Run("retry all archived", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "retry", "low", "--all-archived", "--json")
		require.NoError(t, err)
		assert.JSONEq(t, `{"queue":"low","state":"archived","retried":2}`, out)
		assert.Equal(t, "pending", f.state(t, "low", "poison-2"))
		assert.Equal(t, "pending", f.state(t, "low", "poison-3"))
	})

	t.Run("delete one", func(t *testing.T) {
		out, _, err := f.cli(t, "tasks", "delete", "default", "later")
		require.NoError(t, err)
		assert.Equal(t, "deleted task later from default\n", out)
		assert.Equal(t, "gone", f.state(t, "default", "later"))
		_, _, err = f.cli(t, "tasks", "delete", "default", "later")
		require.Error(t, err)
		assert.Contains(t, err.Error(), `task "later" not found in queue default`)
	})

	t.Run("id and --all-archived together", func(t *testing.T) {
		_, _, err := f.cli(t, "tasks", "delete", "low", "poison-1", "--all-archived")
		require.Error(t, err)
		assert.Equal(t, 2, exitCode(err))
	})
}

// TestBulkRetryAndDeleteArchived retries, then deletes, a few hundred
// archived tasks with one Inspector call each, and leaves the queue's other
// tasks alone.
func TestBulkRetryAndDeleteArchived(t *testing.T) {
	t.Parallel()
	url := redistest.NewURL(t)
	opt, err := queue.RedisOpt(url)
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	const n = 250
	for i := range n {
		_, err := client.Enqueue(asynq.NewTask("email:send", []byte(`{}`)), asynq.Queue("bulk"), asynq.TaskID(fmt.Sprintf("mail-%03d", i)))
		require.NoError(t, err)
	}
	archived, err := insp.ArchiveAllPendingTasks("bulk")
	require.NoError(t, err)
	require.Equal(t, n, archived)
	_, err = client.Enqueue(asynq.NewTask("email:send", []byte(`{}`)), asynq.Queue("bulk"), asynq.TaskID("later"), asynq.ProcessIn(time.Hour))
	require.NoError(t, err)
	env := map[string]string{"REDIS_URL": url}

	out, stderr, err := cli(t, env, "tasks", "retry", "bulk", "--all-archived")
	require.NoError(t, err)
	assert.Equal(t, "retried 250 archived tasks in bulk; they are pending and workers run them next\n", out)
	assert.Empty(t, stderr)
	info, err := insp.GetQueueInfo("bulk")
	require.NoError(t, err)
	assert.Equal(t, n, info.Pending)
	assert.Equal(t, 0, info.Archived)
	assert.Equal(t, 1, info.Scheduled, "only archived tasks are retried")
	assert.Equal(t, "pending", stateOf(t, insp, "bulk", "mail-249"))

	_, err = insp.ArchiveAllPendingTasks("bulk")
	require.NoError(t, err)
	// The flag may come first too.
	out, _, err = cli(t, env, "tasks", "delete", "--all-archived", "--json", "bulk")
	require.NoError(t, err)
	assert.JSONEq(t, `{"queue":"bulk","state":"archived","deleted":250}`, out)
	info, err = insp.GetQueueInfo("bulk")
	require.NoError(t, err)
	assert.Equal(t, 1, info.Size, "only archived tasks are deleted")
	assert.Equal(t, "scheduled", stateOf(t, insp, "bulk", "later"))
	assert.Equal(t, "gone", stateOf(t, insp, "bulk", "mail-000"))

	out, _, err = cli(t, env, "tasks", "delete", "bulk", "--all-archived")
	require.NoError(t, err)
	assert.Equal(t, "no archived tasks in bulk\n", out)
	out, _, err = cli(t, env, "tasks", "retry", "bulk", "--all-archived", "--json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"queue":"bulk","state":"archived","retried":0}`, out)

	// A CleanTrack queue nothing was ever enqueued to holds nothing.
	out, _, err = cli(t, env, "tasks", "retry", "critical", "--all-archived")
	require.NoError(t, err)
	assert.Equal(t, "no archived tasks in critical\n", out)
	_, _, err = cli(t, env, "tasks", "retry", "nosuch", "--all-archived")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), `unknown queue "nosuch"`)
}

func stateOf(t *testing.T, insp *asynq.Inspector, q, id string) string {
	t.Helper()
	info, err := insp.GetTaskInfo(q, id)
	if errors.Is(err, asynq.ErrTaskNotFound) {
		return "gone"
	}
	require.NoError(t, err)
	return info.State.String()
}
