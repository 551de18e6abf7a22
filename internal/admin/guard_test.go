package admin_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/admin"
	"github.com/cleantrack/jobs/internal/proctest"
)

// protected is h behind admin.Protect with the web process's default hosts
// and credentials, and the log it writes.
func protected(t *testing.T, auth bool) (http.Handler, *proctest.SyncBuffer, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	c := admin.ServerConfig{Name: "ADMIN_ADDR", Addr: "127.0.0.1:8001", AllowedHosts: []string{"localhost", "127.0.0.1", "Ops.Example.com", "::1"}}
	if auth {
		c.User, c.Password = testUser, testPassword
	}
	var logs proctest.SyncBuffer
	return admin.Protect(h, c, slog.New(slog.NewJSONHandler(&logs, nil))), &logs, &calls
}

func TestProtectHosts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host, path string
		want       int
	}{
		{"127.0.0.1:8001", "/", http.StatusNoContent},
		{"localhost:8001", "/monitoring/", http.StatusNoContent},
		{"LOCALHOST", "/", http.StatusNoContent},
		{"localhost.:9999", "/", http.StatusNoContent},
		{"ops.example.com", "/metrics", http.StatusNoContent},
		{"OPS.EXAMPLE.COM:443", "/", http.StatusNoContent},
		{"[::1]:8001", "/", http.StatusNoContent},
		{"rebind.attacker.example:8001", "/monitoring/api/queues", http.StatusMisdirectedRequest},
		{"127.0.0.2:8001", "/", http.StatusMisdirectedRequest},
		{"ops.example.com.attacker.example", "/", http.StatusMisdirectedRequest},
		{"", "/", http.StatusMisdirectedRequest},
		// Probes carry no data and orchestrators call them by IP.
		{"10.1.2.3:8001", "/healthz", http.StatusNoContent},
		{"10.1.2.3:8001", "/readyz", http.StatusNoContent},
	} {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			h, logs, calls := protected(t, false)
			r := httptest.NewRequest("GET", tc.path, nil)
			r.Host = tc.host
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tc.want, w.Code, w.Body.String())
			if tc.want == http.StatusMisdirectedRequest {
				assert.Zero(t, calls.Load(), "the dashboard never sees the request")
				assert.Contains(t, w.Body.String(), "ADMIN_ALLOWED_HOSTS")
				assert.Contains(t, logs.String(), `"reason":"host not allowed"`)
			}
		})
	}

	t.Run("checked before credentials", func(t *testing.T) {
		h, _, _ := protected(t, true)
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = "rebind.attacker.example"
		r.SetBasicAuth(testUser, testPassword)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, http.StatusMisdirectedRequest, w.Code)
	})

	t.Run("no list, no check", func(t *testing.T) {
		h := admin.Protect(http.NotFoundHandler(), admin.ServerConfig{Name: "WORKER_METRICS_ADDR"}, nil)
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Host = "10.1.2.3:8002"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, http.StatusNotFound, w.Code)
	})
}

func TestProtectSameOrigin(t *testing.T) {
	t.Parallel()
	const path = "/monitoring/api/queues/critical:pause"
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string]string
		want    int
	}{
		{"same-origin fetch", "POST", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8001"}, http.StatusNoContent},
		{"old browser, own origin", "POST", map[string]string{"Origin": "http://127.0.0.1:8001"}, http.StatusNoContent},
		{"no browser headers (curl)", "POST", nil, http.StatusNoContent},
		{"cross-site fetch", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"}, http.StatusForbidden},
		{"same-site, other port", "POST", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:3000"}, http.StatusForbidden},
		{"old browser, other origin", "POST", map[string]string{"Origin": "http://attacker.example"}, http.StatusForbidden},
		{"old browser, other port", "DELETE", map[string]string{"Origin": "http://127.0.0.1:3000"}, http.StatusForbidden},
		{"null origin (sandboxed frame)", "PUT", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross-site read", "GET", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"}, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, logs, calls := protected(t, true)
			r := httptest.NewRequest(tc.method, path, nil)
			r.Host = "127.0.0.1:8001"
			r.SetBasicAuth(testUser, testPassword)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tc.want, w.Code, w.Body.String())
			if tc.want == http.StatusForbidden {
				assert.Zero(t, calls.Load())
				assert.Contains(t, w.Body.String(), "cross-origin request detected")
				assert.Contains(t, logs.String(), `"msg":"admin request refused"`)
				assert.Contains(t, logs.String(), `"reason":"cross-origin request detected`)
				assert.NotContains(t, logs.String(), `"msg":"admin action"`)
			}
		})
	}
}

func TestProtectLogsEveryChange(t *testing.T) {
	t.Parallel()
	h, logs, _ := protected(t, true)
	send := func(method, path string) {
		r := httptest.NewRequest(method, path, nil)
		r.Host = "127.0.0.1:8001"
		r.SetBasicAuth(testUser, testPassword)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	send("GET", "/monitoring/api/queues")
	send("POST", "/monitoring/api/queues/critical:pause")
	send("DELETE", "/monitoring/api/queues/default/archived_tasks/overdue_scan:2026-11-30T10:00:00Z")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 2, "one line per change, none for a read:\n%s", logs.String())
	assert.Contains(t, lines[0], `"msg":"admin action","listener":"ADMIN_ADDR","user":"ops","method":"POST","path":"/monitoring/api/queues/critical:pause","status":204`)
	assert.Contains(t, lines[0], `"forwarded_for":"203.0.113.9","action":"pause","queue":"critical"`)
	assert.Contains(t, lines[1], `"method":"DELETE"`)
	assert.Contains(t, lines[1], `"action":"delete","queue":"default","task_id":"overdue_scan:2026-11-30T10:00:00Z"`)
	assert.NotContains(t, logs.String(), testPassword)
}

func TestDashboardTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path string
		want         admin.Target
	}{
		{"POST", "/monitoring/api/queues/critical:pause", admin.Target{Action: "pause", Queue: "critical"}},
		{"DELETE", "/monitoring/api/queues/low", admin.Target{Action: "delete", Queue: "low"}},
		{"POST", "/monitoring/api/queues/default/archived_tasks/evt_123:run", admin.Target{Action: "run", Queue: "default", TaskID: "evt_123"}},
		{"POST", "/monitoring/api/queues/default/retry_tasks/weekly_summary:2026-11-30:archive", admin.Target{Action: "archive", Queue: "default", TaskID: "weekly_summary:2026-11-30"}},
		{"DELETE", "/monitoring/api/queues/default/pending_tasks/welcome:42", admin.Target{Action: "delete", Queue: "default", TaskID: "welcome:42"}},
		{"POST", "/monitoring/api/queues/critical/active_tasks/abc:cancel", admin.Target{Action: "cancel", Queue: "critical", TaskID: "abc"}},
		{"DELETE", "/monitoring/api/queues/critical/archived_tasks:delete_all", admin.Target{Action: "delete_all", Queue: "critical"}},
		{"POST", "/monitoring/api/queues/critical/archived_tasks:batch_delete", admin.Target{Action: "batch_delete", Queue: "critical"}},
		{"POST", "/monitoring/api/queues/q/groups/g/aggregating_tasks:run_all", admin.Target{Action: "run_all", Queue: "q", Group: "g"}},
		{"POST", "/monitoring/api/queues/q/groups/g/aggregating_tasks/t1:archive", admin.Target{Action: "archive", Queue: "q", Group: "g", TaskID: "t1"}},
		{"POST", "/somewhere/else", admin.Target{}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			assert.Equal(t, tc.want, admin.DashboardTarget(tc.method, tc.path))
		})
	}
}

// startSlow starts a listener with the given timeouts whose handler reads the
// whole body; bodyErr receives what that read returned.
func startSlow(t *testing.T, timeouts admin.Timeouts) (*admin.Server, chan error) {
	t.Helper()
	bodyErr := make(chan error, 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		bodyErr <- err
		w.WriteHeader(http.StatusNoContent)
	})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := admin.Start(ctx, admin.ServerConfig{
		Name: "ADMIN_ADDR", Addr: "127.0.0.1:0", AllowedHosts: []string{"127.0.0.1"},
		Timeouts: timeouts,
	}, h, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		_ = s.Wait()
	})
	return s, bodyErr
}

// closedByServer reads from conn until the server closes it, or fails after
// a generous bound that only a missing timeout would reach.
func closedByServer(t *testing.T, conn net.Conn, r *bufio.Reader) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
}

func TestAdminListenerClosesIdleConnections(t *testing.T) {
	t.Parallel()
	// Only the idle timeout is short: the others would close the
	// connection too.
	s, _ := startSlow(t, admin.Timeouts{Idle: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	assert.False(t, res.Close, "the connection is kept alive after the first request")
	// Now idle: the server hangs up after its idle timeout.
	closedByServer(t, conn, r)
}

func TestAdminListenerCutsSlowBodies(t *testing.T) {
	t.Parallel()
	s, bodyErr := startSlow(t, admin.Timeouts{Read: 500 * time.Millisecond})
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer conn.Close()
	// A body announced as 1,000 bytes, of which 10 arrive, and then nothing.
	_, err = io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n0123456789")
	require.NoError(t, err)
	closedByServer(t, conn, bufio.NewReader(conn))
	select {
	case err := <-bodyErr:
		var ne net.Error
		require.True(t, errors.As(err, &ne) && ne.Timeout(), "the handler's read ends in a timeout, got %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("the handler is still reading the body")
	}
}

func TestAdminListenerCutsSlowHeaders(t *testing.T) {
	t.Parallel()
	s, bodyErr := startSlow(t, admin.Timeouts{ReadHeader: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
	require.NoError(t, err)
	closedByServer(t, conn, bufio.NewReader(conn))
	assert.Empty(t, bodyErr, "no handler ran")
}
