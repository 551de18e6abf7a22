package admin

import (
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Timeouts bound how long a listener waits for a client. Zero fields take
// DefaultTimeouts' values.
type Timeouts struct {
	// ReadHeader is the time to read a request's headers.
	ReadHeader time.Duration
	// Read is the time to read a whole request, body included: a slow
	// body is cut.
	Read time.Duration
	// Write is the time from the end of the request's headers to the end of
	// the response.
	Write time.Duration
	// Idle is how long a keep-alive connection may wait for its next
	// request.
	Idle time.Duration
}

// DefaultTimeouts are the public listener's timeouts, except Write: a bulk
// dashboard action (delete or run every archived task of a large queue)
// works inside its request, so it gets a minute rather than 15 seconds.
var DefaultTimeouts = Timeouts{
	ReadHeader: 5 * time.Second,
	Read:       15 * time.Second,
	Write:      60 * time.Second,
	Idle:       60 * time.Second,
}

func (t Timeouts) orDefaults() Timeouts {
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	return Timeouts{
		ReadHeader: pick(t.ReadHeader, DefaultTimeouts.ReadHeader),
		Read:       pick(t.Read, DefaultTimeouts.Read),
		Write:      pick(t.Write, DefaultTimeouts.Write),
		Idle:       pick(t.Idle, DefaultTimeouts.Idle),
	}
}

// Protect wraps h with the admin listener's rules, outermost first:
//
//  1. with c.AllowedHosts set, a request whose Host (any port) is not one of
//     them is refused with 421 Misdirected Request, which stops DNS
//     rebinding; /healthz and /readyz are exempt, so orchestrators can
//     probe by IP;
//  2. basic auth with c.User and c.Password (see BasicAuth);
//  3. a mutating request (any method but GET, HEAD and OPTIONS) that a
//     browser sent from another origin is refused with 403: it must carry
//     Sec-Fetch-Site: same-origin, or an Origin equal to the listener's own
//     (net/http's CrossOriginProtection). Requests with neither header do
//     not come from a browser and pass, as they need the credentials anyway;
//  4. every mutating request that gets through is logged at info when
//     answered: user, method, path, status, and the queue, group and task id
//     when the Asynqmon API path names them.
//
// Each refusal is logged at warn with its reason.
func Protect(h http.Handler, c ServerConfig, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("listener", c.Name))
	h = audit(h, c.authEnabled(), log)
	h = sameOrigin(h, log)
	h = BasicAuth(h, c.User, c.Password)
	if len(c.AllowedHosts) > 0 {
		h = allowHosts(h, c.Name, c.AllowedHosts, log)
	}
	return h
}

// allowHosts refuses requests whose Host is not in allowed.
func allowHosts(h http.Handler, name string, allowed []string, log *slog.Logger) http.Handler {
	list := make([]string, 0, len(allowed))
	for _, a := range allowed {
		list = append(list, normalHost(a))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || slices.Contains(list, normalHost(r.Host)) {
			h.ServeHTTP(w, r)
			return
		}
		log.Warn("admin request refused",
			slog.String("reason", "host not allowed"),
			slog.String("host", shorten(r.Host)),
			slog.String("method", r.Method),
			slog.String("path", shorten(r.URL.Path)),
			slog.String("remote_addr", r.RemoteAddr),
			slog.String("allowed_hosts", strings.Join(list, ",")))
		msg := "misdirected request: this admin listener does not answer to host " + quote(r.Host) +
			"; the names it answers to are set by ADMIN_ALLOWED_HOSTS"
		if name != "ADMIN_ADDR" {
			msg = "misdirected request: this listener does not answer to host " + quote(r.Host)
		}
		http.Error(w, msg, http.StatusMisdirectedRequest)
	})
}

// normalHost is host without port, brackets or a trailing dot, lower case.
func normalHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// sameOrigin refuses mutating requests a browser sent from another origin.
func sameOrigin(h http.Handler, log *slog.Logger) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := cop.Check(r)
		if err == nil {
			h.ServeHTTP(w, r)
			return
		}
		log.Warn("admin request refused",
			slog.String("reason", err.Error()),
			slog.String("user", user(r)),
			slog.String("method", r.Method),
			slog.String("path", shorten(r.URL.Path)),
			slog.String("origin", shorten(r.Header.Get("Origin"))),
			slog.String("sec_fetch_site", shorten(r.Header.Get("Sec-Fetch-Site"))),
			slog.String("host", shorten(r.Host)),
			slog.String("remote_addr", r.RemoteAddr))
		http.Error(w, "forbidden: "+err.Error()+"; changes are taken only from the dashboard's own pages", http.StatusForbidden)
	})
}

// audit logs every mutating request once it is answered.
func audit(h http.Handler, auth bool, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		who := user(r)
		if !auth {
			who = "(no auth configured)"
		}
		attrs := []any{
			slog.String("user", who),
			slog.String("method", r.Method),
			slog.String("path", shorten(r.URL.Path)),
			slog.Int("status", rec.status),
			slog.String("remote_addr", r.RemoteAddr),
		}
		if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
			// Informational only: nothing is decided on it.
			attrs = append(attrs, slog.String("forwarded_for", shorten(fwd)))
		}
		t := DashboardTarget(r.Method, r.URL.Path)
		for _, kv := range [][2]string{{"action", t.Action}, {"queue", t.Queue}, {"group", t.Group}, {"task_id", t.TaskID}} {
			if kv[1] != "" {
				attrs = append(attrs, slog.String(kv[0], shorten(kv[1])))
			}
		}
		log.Info("admin action", attrs...)
	})
}

// Target is what a dashboard API request acts on.
type Target struct {
	// Action is the verb in the path ("pause", "run", "delete_all", ...), or
	// "delete" for a DELETE that names none.
	Action string
	Queue  string
	Group  string
	TaskID string
}

// taskActions are the verbs Asynqmon appends to a task id.
var taskActions = []string{"run", "archive", "cancel"}

// DashboardTarget reads the queue, group and task id out of an Asynqmon API
// path (/monitoring/api/queues/{queue}[/groups/{group}]/{state}_tasks/{id}:run
// and its kin). Any other path gives a Target with only Action, if that.
func DashboardTarget(method, path string) Target {
	var t Target
	if method == http.MethodDelete {
		t.Action = "delete"
	}
	rest, ok := strings.CutPrefix(path, DashboardPath+"/api/queues/")
	if !ok || rest == "" {
		return t
	}
	segs := strings.Split(rest, "/")
	// A verb after the last segment: "critical:pause", "archived_tasks:run_all".
	last := &segs[len(segs)-1]
	cut := func(s string, verbs []string) (string, string) {
		i := strings.LastIndexByte(s, ':')
		if i < 0 || (verbs != nil && !slices.Contains(verbs, s[i+1:])) {
			return s, ""
		}
		return s[:i], s[i+1:]
	}
	switch {
	case len(segs) == 1:
		t.Queue, t.Action = cut(segs[0], nil)
	case len(segs) >= 4 && segs[1] == "groups":
		t.Queue, t.Group = segs[0], segs[2]
		if len(segs) == 4 {
			_, t.Action = cut(segs[3], nil)
		} else {
			t.TaskID, t.Action = cut(*last, taskActions)
		}
	case len(segs) == 2:
		t.Queue = segs[0]
		_, t.Action = cut(segs[1], nil)
	default:
		t.Queue = segs[0]
		t.TaskID, t.Action = cut(*last, taskActions)
	}
	if t.Action == "" && method == http.MethodDelete {
		t.Action = "delete"
	}
	return t
}

// user is the basic-auth user name the request carries, if any.
func user(r *http.Request) string {
	u, _, _ := r.BasicAuth()
	return shorten(u)
}

// shorten cuts a client-supplied value for a log line.
func shorten(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func quote(s string) string { return `"` + strings.ReplaceAll(shorten(s), `"`, `\"`) + `"` }

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection underneath.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
