// Package admin serves the operator-facing HTTP endpoints of CleanTrack's
// processes: the Asynqmon dashboard, the Schedules page, Prometheus metrics
// and health checks, behind HTTP basic auth, on listeners kept apart from the public webhook port.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cleantrack/jobs/internal/health"
)

// shutdownTimeout bounds how long in-flight admin requests (a dashboard page,
// a scrape) get to finish once the process is asked to stop.
const shutdownTimeout = 10 * time.Second

// ServerConfig says where an admin or metrics listener binds and who may use it.
type ServerConfig struct {
	// Name is the environment variable that set Addr (ADMIN_ADDR,
	// WORKER_METRICS_ADDR ...); errors and logs name it.
	Name string
	// Addr is host:port to listen on.
	Addr string
	// User and Password turn on HTTP basic auth. Both empty means no auth,
	// which is allowed on a loopback address only.
	User     string
	Password string
	// AllowedHosts, when set, are the host names (any port) the listener
	// answers to; see Protect. The web process's admin listener sets them
	// from ADMIN_ALLOWED_HOSTS; the worker's and scheduler's metrics
	// listeners serve only GETs of metrics and probes and leave them empty.
	AllowedHosts []string
	// Timeouts bound slow and idle clients; zero fields take
	// DefaultTimeouts.
	Timeouts Timeouts
}

func (c ServerConfig) authEnabled() bool { return c.User != "" || c.Password != "" }

// CheckBind reports an error, naming the variable, when c would serve without
// credentials on an address other people can reach. Start calls it; it is
// exported so a process can fail at start before opening anything else.
func CheckBind(c ServerConfig) error {
	if c.authEnabled() {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port", c.Name, c.Addr)
	}
	if isLoopback(host) {
		return nil
	}
	return fmt.Errorf("%s=%s is not a loopback address and ADMIN_USER/ADMIN_PASSWORD are not set: "+
		"refusing to serve admin endpoints without authentication; set ADMIN_USER and ADMIN_PASSWORD, "+
		"or bind to 127.0.0.1", c.Name, c.Addr)
}

// isLoopback is true for "localhost" and loopback IPs. An empty host or
// 0.0.0.0 means every interface, and a host name other than localhost may
// resolve to anything, so both count as reachable from outside.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// BasicAuth wraps h so every request needs user and password, compared in
// constant time. Health checks (/healthz, /readyz) stay open so orchestrators
// can probe without credentials; they reveal nothing but "ok". With both
// user and password empty, h is returned unchanged.
func BasicAuth(h http.Handler, user, password string) http.Handler {
	if user == "" && password == "" {
		return h
	}
	// Comparing fixed-size digests keeps the comparison time independent of
	// the lengths of what was sent and what is expected.
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			h.ServeHTTP(w, r)
			return
		}
		u, p, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="CleanTrack admin", charset="UTF-8"`)
			http.Error(w, "unauthorized: this endpoint needs the ADMIN_USER/ADMIN_PASSWORD credentials", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Server is a running admin or metrics listener.
type Server struct {
	ln     net.Listener
	cancel context.CancelFunc
	done   chan struct{} // closed once the server has stopped
	err    error         // why it stopped, set before done is closed
}

// Start checks c (see CheckBind), binds c.Addr at once, so a taken port or a
// refused address is an error here and not later, and serves h behind
// Protect's rules (allowed hosts, basic auth, same-origin changes, an audit
// log line per change) and c's timeouts until ctx is done or Stop is called. It then shuts down gracefully,
// giving in-flight requests up to ten seconds.
func Start(ctx context.Context, c ServerConfig, h http.Handler, log *slog.Logger) (*Server, error) {
	if err := CheckBind(c); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", c.Name, err)
	}
	t := c.Timeouts.orDefaults()
	srv := &http.Server{
		Handler:           Protect(h, c, log),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{ln: ln, cancel: cancel, done: make(chan struct{})}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() {
		defer close(s.done)
		defer cancel()
		select {
		case err := <-serveErr:
			s.err = fmt.Errorf("%s: serve: %w", c.Name, err)
			return
		case <-ctx.Done():
		}
		// The parent context is done; shutdown needs a fresh one to wait in.
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			s.err = fmt.Errorf("%s: shut down: %w", c.Name, err)
		}
		<-serveErr // http.ErrServerClosed after Shutdown
	}()
	attrs := []any{slog.String("listener", c.Name), slog.String("addr", ln.Addr().String()), slog.Bool("auth", c.authEnabled())}
	if len(c.AllowedHosts) > 0 {
		attrs = append(attrs, slog.String("allowed_hosts", strings.Join(c.AllowedHosts, ",")))
	}
	log.Info("admin listener started", attrs...)
	return s, nil
}

// Addr is the address actually bound (useful when Addr asked for port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Wait blocks until the server has stopped: after its context is done or Stop
// was called and in-flight requests finished, or after it failed on its own.
// It returns nil after a clean shutdown. It may be called any number of times.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}

// Stop shuts the server down and waits for it, at most until ctx is done.
func (s *Server) Stop(ctx context.Context) error {
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return fmt.Errorf("stop admin listener %s: %w", s.Addr(), ctx.Err())
	}
}

// Serve is Start followed by Wait: it serves h on c until ctx is done.
func Serve(ctx context.Context, c ServerConfig, h http.Handler, log *slog.Logger) error {
	s, err := Start(ctx, c, h, log)
	if err != nil {
		return err
	}
	return s.Wait()
}

// Forward sends s's error, if it stops with one, on errc, so a process can
// select on one channel for all its listeners. It never blocks: when errc is
// full the process is stopping already.
func (s *Server) Forward(errc chan<- error) {
	go func() {
		if err := s.Wait(); err != nil {
			select {
			case errc <- err:
			default: // the process is already stopping for another reason
			}
		}
	}()
}

// StartMetrics serves the worker's or scheduler's /metrics (metrics.Registry
// with the Go and process series), /healthz and /readyz on sc's address, with
// the admin listener's rules: basic auth from sc's credentials, and no public
// address without them. It fails at once when the address is taken or
// refused. A later serve error is sent on errc. stop shuts the listener down
// gracefully, waiting at most until its context is done; the listener also
// stops when ctx is done.
func StartMetrics(ctx context.Context, sc ServerConfig, g prometheus.Gatherer, ready health.Check, log *slog.Logger, errc chan<- error) (stop func(context.Context), err error) {
	srv, err := Start(ctx, sc, MetricsHandler(g, ready, log), log)
	if err != nil {
		return nil, err
	}
	srv.Forward(errc)
	return func(sctx context.Context) {
		if err := srv.Stop(sctx); err != nil {
			log.Warn("metrics listener shutdown", slog.String("listener", sc.Name), slog.String("error", err.Error()))
		}
	}, nil
}
