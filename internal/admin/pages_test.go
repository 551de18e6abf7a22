package admin_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/admin"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/scheduler"
)

// configured are the entries of the web process's own configuration, shown
// when no scheduler is live.
var configured = scheduler.Entries(scheduler.Specs{InboxRedrive: "* * * * *", OverdueScan: "0 * * * *", WeeklySummary: "0 6 * * MON"})

// schedulesFixture is an admin handler whose Schedules page reads a
// database of its own.
func schedulesFixture(t *testing.T) (*fixture, *postgres.Store) {
	t.Helper()
	store, _ := pgtest.NewStore(t)
	f := newFixture(t, admin.Options{Schedules: func(ctx context.Context) (scheduler.Status, error) {
		return scheduler.ReadStatus(ctx, store, configured, time.UTC, time.Now())
	}})
	return f, store
}

// startScheduler runs a scheduler on the fixture's Redis, every 15 minutes
// where the web process's configuration says hourly.
func (f *fixture) startScheduler(t *testing.T, store *postgres.Store) *scheduler.Scheduler {
	t.Helper()
	c := asynq.NewClient(f.redisOpt)
	t.Cleanup(func() { c.Close() })
	s := &scheduler.Scheduler{
		Entries: scheduler.Entries(scheduler.Specs{InboxRedrive: "* * * * *", OverdueScan: "*/15 * * * *", WeeklySummary: "0 6 * * MON"}),
		Queue:   c, Store: store, Log: slog.New(slog.DiscardHandler),
	}
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)
	return s
}

func TestLandingPageLinksTheDashboardSchedulesAndMetrics(t *testing.T) {
	t.Parallel()
	f, _ := schedulesFixture(t)
	res, body := f.do(t, "GET", "/", true)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	for _, href := range []string{"/monitoring/", "/schedules", "/metrics"} {
		assert.Contains(t, body, `href="`+href+`"`)
		res, _ := f.do(t, "GET", href, true)
		assert.Equal(t, http.StatusOK, res.StatusCode, "%s answers", href)
	}
	res, _ = f.do(t, "GET", "/", false)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res, _ = f.do(t, "GET", "/schedules", false)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)

	// Without a schedule source there is no page and no link.
	bare := newFixture(t, admin.Options{})
	_, body = bare.do(t, "GET", "/", true)
	assert.NotContains(t, body, `href="/schedules"`)
	res, _ = bare.do(t, "GET", "/schedules", true)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestSchedulesPage(t *testing.T) {
	t.Parallel()
	f, store := schedulesFixture(t)

	// No scheduler yet: this process's configuration, labelled as such.
	res, body := f.do(t, "GET", "/schedules", true)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "No scheduler is live.")
	assert.Contains(t, body, "None has recorded itself in this database.")
	assert.Contains(t, body, "Entries (from this process's configuration)")
	assert.Regexp(t, `<td>overdue-scan</td><td class="mono">0 \* \* \* \*</td><td>UTC</td><td>\d{4}-\d\d-\d\dT\d\d:00:00Z</td>\s*<td>-</td><td>never fired</td>`, body)

	s := f.startScheduler(t, store)
	_, body = f.do(t, "GET", "/schedules", true)
	assert.Contains(t, body, "1 live scheduler")
	assert.Contains(t, body, `<td class="mono">`+s.ID+`</td>`)
	assert.NotContains(t, body, "No scheduler is live")
	assert.Regexp(t, `<td>overdue-scan</td><td class="mono">\*/15 \* \* \* \*</td><td>UTC</td><td>\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00Z</td>\s*<td>\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00Z</td><td class="ok">enqueued</td><td class="mono">cleaning:overdue_scan:`, body,
		"the running scheduler's spec, last slot and outcome")

	// A failed firing shows its error, escaped.
	require.NoError(t, store.RecordFiring(context.Background(), postgres.SchedulerFiring{
		SchedulerID: s.ID, Entry: "weekly-summary", Slot: time.Now().Add(time.Hour), Outcome: scheduler.Failed,
		TaskID: "report:weekly_summary:x", Error: "enqueue report:weekly_summary: <dial tcp> refused",
	}))
	_, body = f.do(t, "GET", "/schedules", true)
	assert.Contains(t, body, `<td class="error wrap">error: enqueue report:weekly_summary: &lt;dial tcp&gt; refused</td>`)

	// Stopped: the page names it and falls back to the configuration.
	s.Stop()
	_, body = f.do(t, "GET", "/schedules", true)
	assert.Contains(t, body, "No scheduler is live.")
	assert.Regexp(t, `The last one seen: <code>`+regexp.QuoteMeta(s.ID)+`</code> on \S+ \(pid \d+\), stopped `, body)
}

func TestSchedulesPageWhenPostgreSQLFails(t *testing.T) {
	t.Parallel()
	var logs strings.Builder // written by the request's goroutine, read after it
	f := newFixture(t, admin.Options{
		Log: slog.New(slog.NewJSONHandler(&logs, nil)),
		Schedules: func(context.Context) (scheduler.Status, error) {
			return scheduler.Status{}, errors.New("list schedulers: dial tcp 10.0.0.9:5432: connection refused")
		},
	})
	res, body := f.do(t, "GET", "/schedules", true)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, body, "could not be read from PostgreSQL")
	assert.NotContains(t, body, "10.0.0.9", "the reason goes to the log")
	assert.Contains(t, logs.String(), "10.0.0.9")
}

// TestSchedulesPageInChromium opens the landing page in headless Chromium,
// follows its Schedules link, and checks the rendered page. It leaves a
// screenshot in tmp/test-output.
func TestSchedulesPageInChromium(t *testing.T) {
	t.Parallel()
	needChromium(t)
	f, store := schedulesFixture(t)
	s := f.startScheduler(t, store)

	landing := inChromium(t, f.browserURL(t, "/"), "--dump-dom")
	m := regexp.MustCompile(`<a href="([^"]+)">Schedules</a>`).FindStringSubmatch(landing)
	require.NotNil(t, m, "the landing page links the Schedules page:\n%s", landing)

	page := inChromium(t, f.browserURL(t, m[1]), "--dump-dom")
	assert.Contains(t, page, "<h1>Schedules</h1>")
	assert.Contains(t, page, "1 live scheduler")
	assert.Contains(t, page, s.ID)
	for _, entry := range []string{"inbox-redrive", "overdue-scan", "weekly-summary"} {
		assert.Contains(t, page, "<td>"+entry+"</td>")
	}
	assert.Equal(t, 3, strings.Count(page, `<td class="ok">enqueued</td>`), "each entry's catch-up slot enqueued")
	screenshot(t, f.browserURL(t, m[1]), "schedules.png")
}
