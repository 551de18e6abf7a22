package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/scheduler"
)

// The CLI used to print its own environment: with OVERDUE_SCAN_CRON="0 * * *
// *" it showed hourly while the scheduler ran every 15 minutes. It shows
// what the running scheduler recorded, and says so when none runs.
func TestScheduleShowsTheRunningScheduler(t *testing.T) {
	t.Parallel()
	store, dbURL := pgtest.NewStore(t)
	redisURL := redistest.NewURL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "OVERDUE_SCAN_CRON": "0 * * * *"}

	// No scheduler yet: the configuration, labelled as such.
	out, _, err := cli(t, env, "schedule")
	require.NoError(t, err)
	assert.Contains(t, out, "No scheduler is live: none has recorded itself in this database.")
	assert.Contains(t, out, "What this command's configuration would run (not a running scheduler):")
	assert.Regexp(t, `(?m)^overdue-scan +0 \* \* \* \* +UTC +\d{4}-\d\d-\d\dT\d\d:00:00Z +- +never fired$`, out)
	out, _, err = cli(t, env, "schedule", "--json")
	require.NoError(t, err)
	var st scheduler.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, "configuration", st.Source)
	assert.Empty(t, st.Live)

	// A scheduler runs with its own environment: every 15 minutes.
	opt, err := queue.RedisOpt(redisURL)
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	s := &scheduler.Scheduler{
		Entries: scheduler.Entries(scheduler.Specs{InboxRedrive: "* * * * *", OverdueScan: "*/15 * * * *", WeeklySummary: "0 6 * * MON"}),
		Queue:   client, Store: store, Log: slog.New(slog.DiscardHandler),
	}
	require.NoError(t, s.Start(context.Background()))
	defer s.Stop()

	out, _, err = cli(t, env, "schedule")
	require.NoError(t, err)
	assert.Contains(t, out, "1 live scheduler\n")
	assert.Regexp(t, `(?m)^ID +HOST +PID +STARTED +LAST HEARTBEAT$`, out)
	assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(s.ID)+` +\S+ +\d+ +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\d{4}-`, out)
	assert.Regexp(t, `(?m)^overdue-scan +\*/15 \* \* \* \* +UTC +\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00Z +\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00Z +enqueued$`, out)
	assert.NotContains(t, out, "0 * * * *", "not the CLI's own spec")
	assert.NotContains(t, out, "configuration would run")

	out, _, err = cli(t, env, "schedule", "--json")
	require.NoError(t, err)
	st = scheduler.Status{}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, "schedulers", st.Source)
	require.Len(t, st.Live, 1)
	assert.Equal(t, s.ID, st.Live[0].ID)
	require.Len(t, st.Entries, 3)
	overdue := st.Entries[1]
	assert.Equal(t, "overdue-scan", overdue.Entry)
	assert.Equal(t, "*/15 * * * *", overdue.Spec)
	assert.Equal(t, []string{s.ID}, overdue.Schedulers)
	require.NotNil(t, overdue.Last)
	assert.Equal(t, "enqueued", overdue.Last.Outcome)
	assert.Equal(t, "cleaning:overdue_scan:"+overdue.Last.Slot.Format(time.RFC3339), overdue.Last.TaskID)
	assert.Regexp(t, `"next_run": "\d{4}-\d\d-\d\dT\d\d:\d\d:00Z"`, out, "RFC 3339 in UTC")

	// Stopped: no longer live, named as the last one seen.
	s.Stop()
	out, _, err = cli(t, env, "schedule")
	require.NoError(t, err)
	assert.Contains(t, out, "No scheduler is live. The last one seen: "+s.ID)
	assert.Contains(t, out, "What this command's configuration would run")
	assert.Regexp(t, `(?m)^overdue-scan +0 \* \* \* \* +UTC +\S+ +\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00Z +enqueued$`, out,
		"the configuration's spec, with the history the scheduler left")
}

func TestScheduleFailures(t *testing.T) {
	t.Parallel()
	_, _, err := cli(t, nil, "schedule", "now")
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))

	_, _, err = cli(t, map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x?sslmode=disable"}, "schedule")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), "is PostgreSQL running, and is DATABASE_URL right?")
}
