package admin

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/scheduler"
)

// SchedulesPath is where the Schedules page is served.
const SchedulesPath = "/schedules"

// StatusFunc reads what the schedulers recorded (scheduler.ReadStatus, with
// the reading process's configuration for when none is live).
type StatusFunc func(ctx context.Context) (scheduler.Status, error)

// pages serves the admin listener's own HTML: the landing page and the
// Schedules page.
type pages struct {
	schedules StatusFunc // nil: no Schedules page
	log       *slog.Logger
}

func (p pages) landing(w http.ResponseWriter, _ *http.Request) {
	render(w, http.StatusOK, landingTmpl, struct{ Schedules bool }{p.schedules != nil})
}

func (p pages) schedulesPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := p.schedules(ctx)
	if err != nil {
		// The reason goes to the log, the page says what to look at.
		p.log.Error("schedules page", slog.String("error", err.Error()))
		render(w, http.StatusServiceUnavailable, unavailableTmpl, nil)
		return
	}
	render(w, http.StatusOK, schedulesTmpl, st)
}

func render(w http.ResponseWriter, status int, t *template.Template, data any) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "page failed to render", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

var funcs = template.FuncMap{
	"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"plural": func(n int, noun string) string {
		if n == 1 {
			return "1 " + noun
		}
		return fmt.Sprintf("%d %ss", n, noun)
	},
	"join": strings.Join,
}

const layout = `{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · CleanTrack admin</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2730}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #d8dee4;vertical-align:top;white-space:nowrap}
td.wrap{white-space:normal}
th{background:#f3f5f7;font-weight:600}
code,td.mono{font-family:ui-monospace,monospace;font-size:.9em}
.note{background:#fff8e1;border:1px solid #f0d98c;padding:.6rem .8rem;border-radius:4px}
.error{color:#a3221b}.ok{color:#1b6e32}
nav a{margin-right:1rem}
ul.links li{margin:.4rem 0}
</style></head><body>
{{end}}{{define "nav"}}<nav><a href="/">Admin</a><a href="` + DashboardPath + `/">Queues</a><a href="/metrics">Metrics</a></nav>{{end}}`

var (
	landingTmpl = template.Must(template.New("landing").Funcs(funcs).Parse(layout + `{{template "head" "Admin"}}
<h1>CleanTrack admin</h1>
<ul class="links">
<li><a href="` + DashboardPath + `/">Queues and tasks</a>: the Asynqmon dashboard (queues, tasks of each state, workers, Redis).</li>
{{if .Schedules}}<li><a href="` + SchedulesPath + `">Schedules</a>: the live schedulers, their entries, last and next runs.</li>{{end}}
<li><a href="/metrics">Metrics</a>: Prometheus series of this process and the queue gauges.</li>
</ul>
</body></html>`))

	unavailableTmpl = template.Must(template.New("unavailable").Funcs(funcs).Parse(layout + `{{template "head" "Schedules"}}{{template "nav"}}
<h1>Schedules</h1>
<p class="error">The schedulers' records could not be read from PostgreSQL. The web process's log says why.</p>
</body></html>`))

	schedulesTmpl = template.Must(template.New("schedules").Funcs(funcs).Parse(layout + `{{template "head" "Schedules"}}{{template "nav"}}
<h1>Schedules</h1>
<p>As of {{time .GeneratedAt}}. Times are UTC.</p>
{{if .Live}}
<h2 id="schedulers">{{plural (len .Live) "live scheduler"}}</h2>
<table><thead><tr><th>ID</th><th>Host</th><th>PID</th><th>Started</th><th>Last heartbeat</th></tr></thead><tbody>
{{range .Live}}<tr><td class="mono">{{.ID}}</td><td>{{.Host}}</td><td>{{.PID}}</td><td>{{time .StartedAt}}</td><td>{{time .HeartbeatAt}}</td></tr>
{{end}}</tbody></table>
<h2 id="entries">Entries</h2>
{{else}}
<p class="note" id="none-live">No scheduler is live.
{{with .LastSeen}}The last one seen: <code>{{.ID}}</code> on {{.Host}} (pid {{.PID}}), {{if .StoppedAt}}stopped {{time .StoppedAt}}, last heartbeat{{else}}no heartbeat since{{end}} {{time .HeartbeatAt}}.
{{else}}None has recorded itself in this database.{{end}}
The entries below are what this web process's configuration would run, not a running scheduler.</p>
<h2 id="entries">Entries (from this process's configuration)</h2>
{{end}}
<table><thead><tr><th>Entry</th><th>Spec</th><th>Zone</th><th>Next run</th><th>Last slot</th><th>Last outcome</th><th>Task id</th></tr></thead><tbody>
{{range .Entries}}<tr><td>{{.Entry}}</td><td class="mono">{{.Spec}}</td><td>{{.Timezone}}</td><td>{{time .NextRun}}</td>
{{with .Last}}<td>{{time .Slot}}</td><td class="{{if eq .Outcome "error"}}error wrap{{else}}ok{{end}}">{{.Outcome}}{{if .Error}}: {{.Error}}{{end}}</td><td class="mono">{{.TaskID}}</td>
{{else}}<td>-</td><td>never fired</td><td></td>{{end}}</tr>
{{end}}</tbody></table>
{{with .Disagreements}}<p class="note">The live schedulers run {{join . ", "}} with different specs or zones: one was started with another environment.</p>{{end}}
</body></html>`))
)
