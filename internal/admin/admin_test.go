package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/admin"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/tasks"
)

const (
	testUser     = "ops"
	testPassword = "correct horse battery staple"
)

// fixture is a Redis with CleanTrack-like queues and an admin handler on it.
type fixture struct {
	redisOpt  asynq.RedisConnOpt
	inspector *asynq.Inspector
	url       string // base URL of the admin handler behind basic auth
}

func newFixture(t *testing.T, o admin.Options) *fixture {
	t.Helper()
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	o.RedisOpt = opt
	if o.Gatherer == nil {
		o.Gatherer = metrics.Registry
	}
	h := admin.NewHandler(o)
	srv := httptest.NewServer(admin.BasicAuth(h, testUser, testPassword))
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { _ = insp.Close() })
	return &fixture{redisOpt: opt, inspector: insp, url: srv.URL}
}

// seed enqueues one pending task per queue, with JSON payloads.
func (f *fixture) seed(t *testing.T) {
	t.Helper()
	c := asynq.NewClient(f.redisOpt)
	defer c.Close()
	for _, q := range []string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueLow} {
		payload := fmt.Sprintf(`{"event_id":"evt_%s","type":"invoice.paid"}`, q)
		_, err := c.Enqueue(asynq.NewTask(tasks.TypeStripeEvent, []byte(payload)), asynq.Queue(q), asynq.TaskID("seed-"+q))
		require.NoError(t, err)
	}
}

// do sends a request with or without the admin credentials.
func (f *fixture) do(t *testing.T, method, path string, auth bool) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, nil)
	require.NoError(t, err)
	if auth {
		req.SetBasicAuth(testUser, testPassword)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

func TestDashboardAPIThroughMount(t *testing.T) {
	t.Parallel()
	f := newFixture(t, admin.Options{})
	f.seed(t)

	// A scheduler entry, as an asynq.Scheduler publishes it, to show the
	// scheduler route is reachable through the mount as well.
	sch := asynq.NewScheduler(f.redisOpt, &asynq.SchedulerOpts{HeartbeatInterval: 50 * time.Millisecond, LogLevel: asynq.FatalLevel})
	_, err := sch.Register("@every 1h", asynq.NewTask(tasks.TypeStripeEvent, []byte(`{}`)))
	require.NoError(t, err)
	require.NoError(t, sch.Start())
	t.Cleanup(sch.Shutdown)
	require.Eventually(t, func() bool {
		e, err := f.inspector.SchedulerEntries()
		return err == nil && len(e) == 1
	}, 5*time.Second, 20*time.Millisecond)

	t.Run("queues", func(t *testing.T) {
		res, body := f.do(t, "GET", "/monitoring/api/queues", true)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		var got struct {
			Queues []struct {
				Queue   string `json:"queue"`
				Pending int    `json:"pending"`
			} `json:"queues"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		names := map[string]int{}
		for _, q := range got.Queues {
			names[q.Queue] = q.Pending
		}
		assert.Equal(t, map[string]int{"critical": 1, "default": 1, "low": 1}, names)
	})

	t.Run("pending tasks with pretty payload", func(t *testing.T) {
		res, body := f.do(t, "GET", "/monitoring/api/queues/critical/pending_tasks", true)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		var got struct {
			Tasks []struct {
				ID      string `json:"id"`
				Payload string `json:"payload"`
			} `json:"tasks"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		require.Len(t, got.Tasks, 1)
		assert.Equal(t, "seed-critical", got.Tasks[0].ID)
		assert.Equal(t, "{\n  \"event_id\": \"evt_critical\",\n  \"type\": \"invoice.paid\"\n}", got.Tasks[0].Payload)
	})

	t.Run("one task", func(t *testing.T) {
		res, body := f.do(t, "GET", "/monitoring/api/queues/low/tasks/seed-low", true)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		assert.Contains(t, body, `"state":"pending"`)
	})

	t.Run("scheduler entries", func(t *testing.T) {
		res, body := f.do(t, "GET", "/monitoring/api/scheduler_entries", true)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		assert.Contains(t, body, `"spec":"@every 1h"`)
		assert.Contains(t, body, `"task_type":"stripe:event"`)
	})

	t.Run("UI sub-paths serve the app", func(t *testing.T) {
		for _, p := range []string{"/monitoring/", "/monitoring/queues/critical", "/monitoring/scheduler"} {
			res, body := f.do(t, "GET", p, true)
			require.Equal(t, http.StatusOK, res.StatusCode, p)
			assert.Contains(t, body, "<div id=\"root\">", p)
		}
	})

	t.Run("refused without credentials", func(t *testing.T) {
		for _, p := range []string{"/monitoring/", "/monitoring/api/queues", "/monitoring/api/scheduler_entries", "/metrics"} {
			res, body := f.do(t, "GET", p, false)
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode, p)
			assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Basic", p)
			assert.NotContains(t, body, "critical", p)
		}
	})

	t.Run("refused with a wrong password", func(t *testing.T) {
		req, err := http.NewRequest("GET", f.url+"/monitoring/api/queues", nil)
		require.NoError(t, err)
		req.SetBasicAuth(testUser, "wrong")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	})

	t.Run("health checks need no credentials", func(t *testing.T) {
		res, body := f.do(t, "GET", "/healthz", false)
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "ok\n", body)
		res, _ = f.do(t, "GET", "/readyz", false)
		assert.Equal(t, http.StatusOK, res.StatusCode)
	})
}

func TestPause(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		readOnly   bool
		wantStatus int
		wantPaused bool
	}{
		{"read-only refuses", true, http.StatusMethodNotAllowed, false},
		{"read-write pauses", false, http.StatusNoContent, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, admin.Options{ReadOnly: tc.readOnly})
			f.seed(t)
			res, body := f.do(t, "POST", "/monitoring/api/queues/critical:pause", true)
			assert.Equal(t, tc.wantStatus, res.StatusCode, body)
			info, err := f.inspector.GetQueueInfo("critical")
			require.NoError(t, err)
			assert.Equal(t, tc.wantPaused, info.Paused)
		})
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	ready := true
	f := newFixture(t, admin.Options{Ready: func(context.Context) error {
		if ready {
			return nil
		}
		return errors.New("postgres: connection refused")
	}})
	res, _ := f.do(t, "GET", "/readyz", false)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	ready = false
	res, body := f.do(t, "GET", "/readyz", false)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.NotContains(t, body, "postgres", "the reason is logged, not shown unauthenticated")
}

func TestFormatPayload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"json object", `{"a":1,"b":[true]}`, "{\n  \"a\": 1,\n  \"b\": [\n    true\n  ]\n}"},
		{"plain text", `hello`, "hello"},
		{"binary", "\x00\x01", "non-printable bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, admin.FormatPayload("t", []byte(tc.in)))
		})
	}
}

func TestCheckBind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, user, pass string
		wantErr          bool
	}{
		{"127.0.0.1:8001", "", "", false},
		{"localhost:8001", "", "", false},
		{"[::1]:8001", "", "", false},
		{"0.0.0.0:8001", "", "", true},
		{":8001", "", "", true},
		{"10.0.0.5:8001", "", "", true},
		{"admin.internal:8001", "", "", true},
		{"0.0.0.0:8001", "ops", "secret", false},
	} {
		t.Run(tc.addr+"/"+tc.user, func(t *testing.T) {
			err := admin.CheckBind(admin.ServerConfig{Name: "ADMIN_ADDR", Addr: tc.addr, User: tc.user, Password: tc.pass})
			if !tc.wantErr {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "ADMIN_ADDR="+tc.addr)
			assert.Contains(t, err.Error(), "set ADMIN_USER and ADMIN_PASSWORD")
		})
	}
}

func TestStartServesWithAuthAndShutsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	s, err := admin.Start(ctx, admin.ServerConfig{Name: "WORKER_METRICS_ADDR", Addr: "127.0.0.1:0", User: testUser, Password: testPassword},
		admin.MetricsHandler(metrics.Registry, nil, log), log)
	require.NoError(t, err)

	get := func(auth bool) int {
		req, err := http.NewRequest("GET", "http://"+s.Addr()+"/metrics", nil)
		require.NoError(t, err)
		if auth {
			req.SetBasicAuth(testUser, testPassword)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, get(false))
	assert.Equal(t, http.StatusOK, get(true))

	cancel()
	require.NoError(t, s.Wait())
	_, err = http.Get("http://" + s.Addr() + "/healthz")
	assert.Error(t, err, "the listener is closed after shutdown")
}

func TestStartRefusesPublicAddressWithoutCredentials(t *testing.T) {
	t.Parallel()
	_, err := admin.Start(context.Background(), admin.ServerConfig{Name: "ADMIN_ADDR", Addr: "0.0.0.0:0"},
		http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "ADMIN_ADDR=0.0.0.0:0 is not a loopback address"), err.Error())
}

func TestMetricsViewQueriesPrometheus(t *testing.T) {
	t.Parallel()
	// A stand-in Prometheus that records the queries the dashboard sends.
	var mu sync.Mutex
	var queries []string
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+" "+r.URL.Query().Get("query"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"queue":"critical"},"values":[[1700000000,"3"]]}]}}`)
	}))
	t.Cleanup(prom.Close)

	f := newFixture(t, admin.Options{PrometheusURL: prom.URL})
	res, body := f.do(t, "GET", "/monitoring/", true)
	require.Equal(t, http.StatusOK, res.StatusCode)
	// The page's script carries the address (JS-escaped), which makes the UI
	// show its metrics view.
	assert.Contains(t, body, `window.FLAG_PROMETHEUS_SERVER_ADDRESS="`+strings.ReplaceAll(prom.URL, "/", `\/`)+`"`)

	res, body = f.do(t, "GET", "/monitoring/api/metrics?duration=3600", true)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Contains(t, string(got["queue_size"]), `"queue":"critical"`)
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, queries, "/api/v1/query_range asynq_queue_size{}")
	assert.Contains(t, queries, `/api/v1/query_range asynq_tasks_enqueued_total{state="archived",}`)
}
