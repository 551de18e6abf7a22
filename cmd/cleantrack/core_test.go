package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/tasks"
)

// cli runs the CLI as a user would, with env as its whole environment.
func cli(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"cleantrack"}, args...), func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), err
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	// An empty database, not the migrated template.
	url := pgtest.NewURL(t)
	store, err := sql.Open("postgres", url)
	require.NoError(t, err)
	_, err = store.Exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	store.Close()
	env := map[string]string{"DATABASE_URL": url}

	out, _, err := cli(t, env, "migrate", "status")
	require.NoError(t, err)
	assert.Contains(t, out, "pending")

	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range outs {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i], _, errs[i] = cli(t, env, "migrate") }()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	// Exactly one of the two applied the migrations; the other found nothing to do.
	applied := strings.Count(outs[0]+outs[1], "applied 00001")
	assert.Equal(t, 1, applied, "outputs: %q", outs)
	assert.Contains(t, outs[0]+outs[1], "nothing to apply")

	out, _, err = cli(t, env, "migrate")
	require.NoError(t, err)
	assert.Contains(t, out, "nothing to apply")
	out, _, err = cli(t, env, "migrate", "status")
	require.NoError(t, err)
	assert.Contains(t, out, "0 pending")
	assert.Regexp(t, `(?m)^00001 +\S+ +applied +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, out)

	out, _, err = cli(t, env, "migrate", "status", "--json")
	require.NoError(t, err)
	var st []migrationView
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.NotEmpty(t, st)
	assert.Equal(t, int64(1), st[0].Version)
	assert.True(t, st[0].Applied)
	require.NotNil(t, st[0].AppliedAt)

	out, _, err = cli(t, env, "migrate", "--json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"applied":[]}`, out)
}

// Behind PgBouncer DATABASE_URL names the pooler and MIGRATE_DATABASE_URL
// PostgreSQL itself: migrate must use the latter only.
func TestMigrateUsesMigrateDatabaseURL(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	db, err := sql.Open("postgres", url)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	// Port 1 refuses connections: any use of DATABASE_URL would fail.
	env := map[string]string{
		"DATABASE_URL":         "postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2",
		"MIGRATE_DATABASE_URL": url,
	}
	out, _, err := cli(t, env, "migrate")
	require.NoError(t, err)
	assert.Contains(t, out, "applied 00001")
	out, _, err = cli(t, env, "migrate", "status")
	require.NoError(t, err)
	assert.Contains(t, out, "0 pending")
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM accounts`).Scan(&n), "the schema is in MIGRATE_DATABASE_URL's database")

	// The other commands keep to DATABASE_URL and say which variable to check.
	_, _, err = cli(t, env, "stripe", "events")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DATABASE_URL")
	assert.Equal(t, 1, exitCode(err))
}

func TestEnqueueAnyTask(t *testing.T) {
	t.Parallel()
	redisURL := redistest.NewURL(t)
	env := map[string]string{"REDIS_URL": redisURL}
	opt, err := queue.RedisOpt(redisURL)
	require.NoError(t, err)
	insp := asynq.NewInspector(opt)
	defer insp.Close()

	// By hand, a task gets what the system gives it: queue, retries,
	// retention and the TaskID its constructor derives (the event id).
	out, _, err := cli(t, env, "enqueue", "stripe:event", "--payload", `{"event_id":"evt_1","type":"customer.created"}`)
	require.NoError(t, err)
	assert.Contains(t, out, "enqueued stripe:event as evt_1 in queue critical")
	info, err := insp.GetTaskInfo("critical", "evt_1")
	require.NoError(t, err)
	sys, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: "evt_1", Type: "customer.created"})
	require.NoError(t, err)
	assert.JSONEq(t, string(sys.Payload()), string(info.Payload))
	want := tasks.Types[tasks.TypeStripeEvent]
	assert.Equal(t, want.MaxRetry, info.MaxRetry)
	assert.Equal(t, want.Timeout, info.Timeout)
	assert.Equal(t, want.Retention, info.Retention)

	out, _, err = cli(t, env, "enqueue", "stripe:event", "--payload", `{"event_id":"evt_1"}`)
	require.NoError(t, err)
	assert.Contains(t, out, "already enqueued")

	// A weekly summary for an account and week: the same TaskID as the
	// fan-out's, so it is not sent twice.
	out, _, err = cli(t, env, "enqueue", "report:weekly_summary_account", "--payload", `{"account_id":7,"week":"2026-W47"}`, "--json")
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, "report:weekly_summary_account:7:2026-W47", got["id"])
	assert.Equal(t, "low", got["queue"])
	assert.Equal(t, true, got["enqueued"])

	// --queue and --task-id override.
	out, _, err = cli(t, env, "enqueue", "cleaning:overdue_scan", "--queue", "critical", "--task-id", "scan-by-hand")
	require.NoError(t, err)
	assert.Contains(t, out, "enqueued cleaning:overdue_scan as scan-by-hand in queue critical")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"enqueue", "overdue_scan"}, `no worker serves task type "overdue_scan" (did you mean "cleaning:overdue_scan"?); the task types are ` + strings.Join(tasks.TypeNames(), ", ")},
		{[]string{"enqueue", "frobnicate"}, `no worker serves task type "frobnicate"; the task types are cleaning:overdue_scan, email:batch, email:send,`},
		{[]string{"enqueue", "stripe:event", "--payload", "{not json"}, "--payload is not valid JSON"},
		{[]string{"enqueue", "stripe:event", "--payload", `{"id":"evt_1"}`}, `--payload: payload of tasks.StripeEventPayload: json: unknown field "id"`},
		{[]string{"enqueue", "stripe:event"}, "--payload: stripe event task: empty event id"},
		{[]string{"enqueue", "stripe:event", "--queue", "urgent"}, `--queue "urgent"`},
	} {
		_, _, err = cli(t, env, tc.args...)
		require.Error(t, err, tc.args)
		assert.Contains(t, err.Error(), tc.want)
		assert.Equal(t, 2, exitCode(err), tc.args)
	}
	n, err := insp.Queues()
	require.NoError(t, err)
	var total int
	for _, q := range n {
		qi, err := insp.GetQueueInfo(q)
		require.NoError(t, err)
		total += qi.Size
	}
	assert.Equal(t, 3, total, "refused tasks are not enqueued")
}

func TestUnknownCommandAndHelp(t *testing.T) {
	t.Parallel()
	_, stderr, err := cli(t, nil, "frobnicate")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown command "frobnicate"`)
	assert.Equal(t, 2, exitCode(err))
	assert.Contains(t, stderr, "Usage:\n  cleantrack [command]", "the usage, with the commands, goes to stderr")
	assert.Contains(t, stderr, "Available Commands:")

	out, _, err := cli(t, nil, "migrate", "status", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "Usage:\n  cleantrack migrate status [flags]")

	out, _, err = cli(t, nil, "stripe", "--help")
	require.NoError(t, err, "a group's --help lists its commands")
	assert.Regexp(t, `(?m)^  replay +Re-enqueue a recorded Stripe event`, out)
	assert.NotContains(t, out, "preview")

	out, _, err = cli(t, nil, "stripe", "events", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "--since", "a command's --help lists its flags")

	out, _, err = cli(t, map[string]string{"DATABASE_URL": pgtest.NewURL(t)}, "schedule", "--json")
	require.NoError(t, err)
	assert.Contains(t, out, `"entry": "weekly-summary"`)

	_, _, err = cli(t, map[string]string{"OVERDUE_SCAN_CRON": "often"}, "schedule")
	assert.ErrorContains(t, err, "OVERDUE_SCAN_CRON")
}
