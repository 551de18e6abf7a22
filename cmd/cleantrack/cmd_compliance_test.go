package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/testfactory"
	"github.com/cleantrack/jobs/tasks"
)

func TestSeedDemoThenScanAndReport(t *testing.T) {
	t.Parallel()
	store, dbURL := pgtest.NewStore(t)
	redisURL := redistest.NewURL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL}
	ctx := context.Background()

	out, _, err := cli(t, env, "seed", "demo")
	require.NoError(t, err)
	assert.Contains(t, out, "demo-hospital")
	assert.Contains(t, out, "10 new pieces of equipment")
	out, _, err = cli(t, env, "seed", "demo")
	require.NoError(t, err, "seeding twice is fine")
	assert.Contains(t, out, "already existed")
	assert.Contains(t, out, "0 new pieces of equipment, 0 new cleanings")

	var customer string
	require.NoError(t, store.DB.GetContext(ctx, &customer, `SELECT stripe_customer_id FROM accounts WHERE slug = 'demo-hospital'`))
	assert.Equal(t, postgres.DemoCustomerID, customer)
	var roles []string
	require.NoError(t, store.DB.SelectContext(ctx, &roles, `SELECT DISTINCT role FROM account_members m JOIN accounts a ON a.id = m.account_id WHERE a.slug = 'demo-hospital' ORDER BY role`))
	assert.Equal(t, []string{"admin", "manager", "owner", "technician"}, roles)

	// The scan opens the demo's four overdue alerts: two assigned (one email
	// each), two unassigned (owner, admin and manager each).
	opt, err := queue.RedisOpt(redisURL)
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	defer client.Close()
	acc, err := store.ReportAccountBySlug(ctx, "demo-hospital")
	require.NoError(t, err)
	svc := compliance.New(store, email.NewService(client, store), slog.New(slog.NewTextHandler(io.Discard, nil)), compliance.Options{SiteURL: "http://localhost:8000"})
	r, err := svc.Scan(ctx, acc.ID)
	require.NoError(t, err)
	assert.Equal(t, 4, r.Opened)
	assert.Equal(t, 8, r.Emails)

	out, _, err = cli(t, env, "enqueue", "overdue-scan", "--account", "demo-hospital")
	require.NoError(t, err)
	assert.Contains(t, out, "enqueued "+tasks.TypeOverdueScan)
	out, _, err = cli(t, env, "enqueue", "weekly-summary", "--account", "demo-hospital", "--week", "2026-W47")
	require.NoError(t, err)
	assert.Contains(t, out, "enqueued "+tasks.TypeWeeklySummary)
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	pending, err := insp.ListPendingTasks(tasks.QueueLow)
	require.NoError(t, err)
	got := map[string]int64{}
	for _, p := range pending {
		var pl struct {
			AccountID int64  `json:"account_id"`
			Week      string `json:"week"`
		}
		require.NoError(t, json.Unmarshal(p.Payload, &pl))
		got[p.Type+" "+pl.Week] = pl.AccountID
	}
	assert.Equal(t, map[string]int64{tasks.TypeOverdueScan + " ": acc.ID, tasks.TypeWeeklySummary + " 2026-W47": acc.ID}, got)

	_, _, err = cli(t, env, "enqueue", "weekly-summary", "--week", "2026-47")
	assert.Equal(t, 2, exitCode(err), "a malformed week is a usage error: %v", err)
	_, _, err = cli(t, env, "report", "show", "--account", "nope")
	assert.Equal(t, 2, exitCode(err))

	out, _, err = cli(t, env, "report", "show", "--account", "demo-hospital")
	require.NoError(t, err)
	assert.Contains(t, out, "compliance rate")
	assert.Contains(t, out, "not recorded")
	out, _, err = cli(t, env, "report", "show", "--account", "demo-hospital", "--json")
	require.NoError(t, err)
	var v struct {
		Week    string                 `json:"week"`
		Figures postgres.WeeklyFigures `json:"figures"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Regexp(t, `^\d{4}-W\d{2}$`, v.Week)
	assert.Equal(t, 9, v.Figures.TotalEquipment)
	assert.Equal(t, 4, v.Figures.ActiveAlerts)
	assert.Len(t, v.Figures.Alerts, 4)
	assert.Positive(t, v.Figures.CleaningsCompleted)

	// Once recorded and sent, the summary's figures are the stored ones;
	// live figures move on (a new piece of equipment) and are labelled live.
	recorded, err := store.RecordWeeklyReports(ctx, []int64{acc.ID}, postgres.WeekSpec{Ref: time.Now()}, time.Now())
	require.NoError(t, err)
	require.Len(t, recorded, 1)
	_, err = store.MarkWeeklyReportSent(ctx, acc.ID, v.Week, time.Now())
	require.NoError(t, err)
	var locationID int64
	require.NoError(t, store.DB.GetContext(ctx, &locationID, `SELECT id FROM locations WHERE account_id = $1 ORDER BY id LIMIT 1`, acc.ID))
	testfactory.Equipment(t, store, acc.ID, locationID, nil)

	out, _, err = cli(t, env, "report", "show", "--account", "demo-hospital")
	require.NoError(t, err)
	ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	assert.Regexp(t, `(?m)^recorded `+ts+`, sent `+ts+`: STORED is what the summary said, LIVE is computed now \(`+ts+`\)$`, out)
	assert.Regexp(t, `(?m)^FIGURE +STORED AT SEND +LIVE NOW$`, out)
	assert.Regexp(t, `(?m)^total equipment \(active\) +9 +10$`, out)
	assert.Regexp(t, `(?m)^ACTIVE ALERT \(stored at send\) +LOCATION +HOURS OVERDUE$`, out)
	assert.NotContains(t, out, "(now)")

	out, _, err = cli(t, env, "report", "show", "--account", "demo-hospital", "--json")
	require.NoError(t, err)
	var sent reportView
	require.NoError(t, json.Unmarshal([]byte(out), &sent), out)
	assert.Equal(t, "stored", sent.Source)
	require.NotNil(t, sent.Stored)
	assert.Equal(t, 9, sent.Stored.TotalEquipment)
	assert.Equal(t, 9, sent.Figures.TotalEquipment, "the summary's figures are the stored ones")
	assert.Equal(t, 10, sent.Live.TotalEquipment)
	require.NotNil(t, sent.SentAt)
}
