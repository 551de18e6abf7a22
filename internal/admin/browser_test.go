package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/admin"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/tasks"
)

// chromium is the browser the page checks run, headless.
const chromium = "/usr/bin/chromium"

// needChromium skips the test, saying how to install it, when Chromium is
// missing.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		t.Skipf("headless browser check skipped: %s not found (install it with: apt-get update && apt-get install -y chromium)", chromium)
	}
}

// browserURL is path on the fixture's admin handler with the credentials in
// the URL: Chromium answers the basic auth challenge with them and reuses
// them for the page's own requests to the same origin.
func (f *fixture) browserURL(t *testing.T, path string) *url.URL {
	t.Helper()
	u, err := url.Parse(f.url + path)
	require.NoError(t, err)
	u.User = url.UserPassword(testUser, testPassword)
	return u
}

// inChromium loads u in headless Chromium, lets its scripts run for up to
// ten seconds of virtual time, and returns what Chromium printed (the DOM
// with --dump-dom).
func inChromium(t *testing.T, u *url.URL, extra ...string) string {
	t.Helper()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=10000", "--window-size=1280,900",
	}, extra...)
	args = append(args, u.String())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, args...).Output()
	require.NoError(t, err, "chromium %v", args)
	return string(out)
}

// screenshot saves u as rendered to tmp/test-output/name and checks that
// it shows something.
func screenshot(t *testing.T, u *url.URL, name string) {
	t.Helper()
	shot := filepath.Join(screenshotDir(t), name)
	inChromium(t, u, "--screenshot="+shot)
	st, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(10_000), "a screenshot of a rendered page")
	t.Logf("screenshot: %s", shot)
}

// screenshotDir is tmp/test-output at the repository root (kept out of git),
// or a temporary directory when the root cannot be found.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../tmp/test-output")
	if err == nil {
		if _, serr := os.Stat("../../go.mod"); serr == nil && os.MkdirAll(dir, 0o755) == nil {
			return dir
		}
	}
	return t.TempDir()
}

// A page on another site, open in the browser of someone who can reach the
// dashboard, sends a no-cors POST that would pause a queue; the admin
// listener refuses it. The dashboard's own page, in the same browser, still
// pauses the queue. As a control, the same cross-site request against the
// dashboard without Protect's rules does pause a queue: the browser does send
// it.
func TestCrossSitePageCannotPauseAQueueInChromium(t *testing.T) {
	t.Parallel()
	needChromium(t)
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	for _, q := range []string{tasks.QueueCritical, tasks.QueueLow} {
		_, err := client.Enqueue(asynq.NewTask(tasks.TypeStripeEvent, []byte(`{}`)), asynq.Queue(q))
		require.NoError(t, err)
	}
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	paused := func(q string) bool {
		t.Helper()
		info, err := insp.GetQueueInfo(q)
		require.NoError(t, err)
		return info.Paused
	}

	// The admin listener as the web process runs it on the loopback default:
	// no credentials, the default allowed hosts.
	h := admin.NewHandler(admin.Options{RedisOpt: opt, Gatherer: metrics.Registry})
	t.Cleanup(func() { _ = h.Close() })
	var logs proctest.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := admin.Start(ctx, admin.ServerConfig{Name: "ADMIN_ADDR", Addr: "127.0.0.1:0", AllowedHosts: []string{"127.0.0.1", "localhost"}},
		h, slog.New(slog.NewJSONHandler(&logs, nil)))
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		_ = srv.Wait()
	})
	dashboard := "http://" + srv.Addr()

	// The same dashboard with none of the listener's rules, for the control.
	bare := httptest.NewServer(h)
	t.Cleanup(bare.Close)

	// Another site: localhost is a different site from 127.0.0.1.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>cat pictures</title><p>nothing to see</p>")
	}))
	t.Cleanup(attacker.Close)
	_, port, err := net.SplitHostPort(attacker.Listener.Addr().String())
	require.NoError(t, err)

	d := startDevtools(t)
	page := d.open("http://localhost:" + port + "/")
	// The page learns nothing from the answer (an opaque response, or at
	// times a network error once the response is blocked): what counts is
	// what reached the server, which the log and Redis show.
	attack := func(base, q string) {
		res := d.eval(page, `fetch("`+base+`/monitoring/api/queues/`+q+`:pause", {method: "POST", mode: "no-cors"}).then(r => "opaque response", e => "network error: " + e)`)
		t.Logf("cross-site fetch to %s: %s", base, res)
	}

	// A network error can come back before the server has finished with
	// the request: wait for what it did.
	attack(dashboard, tasks.QueueCritical)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"msg":"admin request refused"`) },
		10*time.Second, 20*time.Millisecond, "the request reached the listener")
	assert.Contains(t, logs.String(), `"msg":"admin request refused","listener":"ADMIN_ADDR","reason":"cross-origin request detected from Sec-Fetch-Site header"`)
	assert.Contains(t, logs.String(), `"path":"/monitoring/api/queues/critical:pause"`)
	assert.False(t, paused(tasks.QueueCritical), "a page on another site cannot pause a queue")

	attack(bare.URL, tasks.QueueLow)
	assert.Eventually(t, func() bool { return paused(tasks.QueueLow) }, 10*time.Second, 20*time.Millisecond,
		"control: without the listener's rules the same request pauses a queue")

	// The dashboard's own page, as the operator has it open.
	own := d.open(dashboard + "/monitoring/queues")
	assert.Equal(t, dashboard, d.eval(own, "location.origin"))
	assert.Equal(t, "204", d.eval(own, `fetch("/monitoring/api/queues/critical:pause", {method: "POST"}).then(r => String(r.status))`))
	assert.True(t, paused(tasks.QueueCritical), "the dashboard's own page pauses the queue")
	assert.Contains(t, logs.String(), `"msg":"admin action","listener":"ADMIN_ADDR","user":"(no auth configured)","method":"POST","path":"/monitoring/api/queues/critical:pause","status":204`)
}
