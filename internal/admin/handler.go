package admin

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cleantrack/jobs/internal/health"
)

// DashboardPath is where the Asynqmon dashboard is mounted.
const DashboardPath = "/monitoring"

// Options configure the web process's admin handler.
type Options struct {
	// RedisOpt is the Redis the dashboard and queue gauges read. Required.
	RedisOpt asynq.RedisConnOpt
	// ReadOnly makes the dashboard refuse every change (ADMIN_READ_ONLY);
	// Asynqmon enforces it on its API, not only in the UI.
	ReadOnly bool
	// PrometheusURL, when set, turns on the dashboard's metrics view, which
	// queries that Prometheus server (PROMETHEUS_URL).
	PrometheusURL string
	// Gatherer is the process's own series; metrics.Registry in production.
	Gatherer prometheus.Gatherer
	// Ready backs /readyz (see health.Ready); nil means always ready.
	Ready health.Check
	// Log receives failed readiness checks.
	Log *slog.Logger
	// Schedules, when set, backs the Schedules page and its link on the
	// landing page.
	Schedules StatusFunc
}

// Handler serves a landing page at /, the dashboard at /monitoring/, the
// Schedules page, /metrics (the process's series plus Asynq's per-queue
// gauges), /healthz and /readyz. It holds Redis connections: Close it after
// the server using it has stopped.
type Handler struct {
	mux       *http.ServeMux
	dashboard *asynqmon.HTTPHandler
	inspector *asynq.Inspector
}

// NewHandler builds the admin handler. It does not authenticate: serve it
// through Start, which adds basic auth.
func NewHandler(o Options) *Handler {
	dashboard := asynqmon.New(asynqmon.Options{
		RootPath:          DashboardPath,
		RedisConnOpt:      o.RedisOpt,
		PayloadFormatter:  asynqmon.PayloadFormatterFunc(FormatPayload),
		ResultFormatter:   asynqmon.ResultFormatterFunc(FormatPayload),
		PrometheusAddress: o.PrometheusURL,
		ReadOnly:          o.ReadOnly,
	})
	inspector := asynq.NewInspector(o.RedisOpt)

	// The queue gauges live in a registry of their own, one per handler, so the
	// shared metrics.Registry never holds a collector tied to one Redis.
	queues := prometheus.NewRegistry()
	queues.MustRegister(metrics.NewQueueMetricsCollector(inspector))
	gatherers := prometheus.Gatherers{queues}
	if o.Gatherer != nil {
		gatherers = append(gatherers, o.Gatherer)
	}

	mux := http.NewServeMux()
	// Mounting the root path with its trailing slash hands every sub-path (UI
	// routes, static files, /monitoring/api/...) to Asynqmon's own router.
	mux.Handle(dashboard.RootPath()+"/", dashboard)
	addProbes(mux, gatherers, o.Ready, o.Log)
	p := pages{schedules: o.Schedules, log: o.Log}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	mux.HandleFunc("GET /{$}", p.landing)
	if o.Schedules != nil {
		mux.HandleFunc("GET "+SchedulesPath, p.schedulesPage)
	}
	return &Handler{mux: mux, dashboard: dashboard, inspector: inspector}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close releases the handler's Redis connections.
func (h *Handler) Close() error {
	err := h.dashboard.Close()
	if ierr := h.inspector.Close(); err == nil {
		err = ierr
	}
	return err
}

// MetricsHandler serves /metrics from g, plus /healthz and /readyz, for the
// worker's and scheduler's metrics listeners.
func MetricsHandler(g prometheus.Gatherer, ready health.Check, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	addProbes(mux, g, ready, log)
	return mux
}

func addProbes(mux *http.ServeMux, g prometheus.Gatherer, ready health.Check, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", health.Live)
	mux.Handle("GET /readyz", health.Ready(ready, log))
}

// FormatPayload shows a JSON payload indented, and anything else as Asynqmon
// would by default. CleanTrack payloads carry ids, never secrets, so showing
// them whole is safe.
func FormatPayload(taskType string, payload []byte) string {
	var buf bytes.Buffer
	if json.Valid(payload) && json.Indent(&buf, payload, "", "  ") == nil {
		return buf.String()
	}
	return asynqmon.DefaultPayloadFormatter.FormatPayload(taskType, payload)
}
