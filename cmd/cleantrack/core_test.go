package main

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
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
	out, _, err := cli(t, env, "enqueue", "stripe:event", "--payload", `{"event_id":"evt_1"}`, "--queue", "critical", "--task-id", "evt_1")
	require.NoError(t, err)
	assert.Contains(t, out, "enqueued stripe:event as evt_1 in queue critical")

	out, _, err = cli(t, env, "enqueue", "stripe:event", "--payload", `{"event_id":"evt_1"}`, "--queue", "critical", "--task-id", "evt_1")
	require.NoError(t, err)
	assert.Contains(t, out, "already enqueued")

	opt, err := queue.RedisOpt(redisURL)
	require.NoError(t, err)
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	info, err := insp.GetTaskInfo("critical", "evt_1")
	require.NoError(t, err)
	assert.JSONEq(t, `{"event_id":"evt_1"}`, string(info.Payload))

	_, _, err = cli(t, env, "enqueue", "x", "--payload", "{not json")
	assert.ErrorContains(t, err, "--payload is not valid JSON")
	assert.Equal(t, 2, exitCode(err))
	_, _, err = cli(t, env, "enqueue", "x", "--queue", "urgent")
	assert.ErrorContains(t, err, `--queue "urgent"`)
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
