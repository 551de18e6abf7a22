// Package pgbouncertest runs a private PgBouncer in pool_mode=transaction in
// front of a PostgreSQL server, on a loopback port, for the tests, the drills,
// the chaos run and CI (`make e2e-pgbouncer`). It writes its configuration to
// a folder of its own, runs pgbouncer in the foreground as a child process (as
// the postgres user when it runs as root, since PgBouncer refuses root) and
// stops it by its process id. Every database name on the server is reachable
// through it (a "*" entry), so a database created directly on PostgreSQL can
// be used through the pooler at once.
package pgbouncertest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// InstallHint says how to get pgbouncer when it is missing.
const InstallHint = "apt-get install pgbouncer (Debian/Ubuntu; .ci/run, make drills and make chaos install it)"

// Options describe a PgBouncer to start.
type Options struct {
	// Upstream is a URL of the PostgreSQL server to pool (host, port and
	// user are used; the database name is not).
	Upstream string
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// PoolSize is the number of server connections per database and user
	// (default_pool_size); 0 means 10. A small pool makes clients share
	// server connections, which is what transaction mode is about.
	PoolSize int
	// Dir receives the configuration and the log; "" makes a temporary
	// folder, removed by Stop.
	Dir string
	// Install runs apt-get install pgbouncer when the binary is missing.
	Install bool
}

// Server is a running private PgBouncer.
type Server struct {
	Port     int
	Dir      string
	upstream *url.URL
	bin      string
	conf     string
	cred     *syscall.Credential
	ownDir   bool
	cmd      *exec.Cmd
	done     chan struct{}
}

// Find returns the pgbouncer binary, installing it with apt-get when install
// is true and it is missing.
func Find(install bool) (string, error) {
	if p, err := lookPath(); err == nil {
		return p, nil
	}
	if !install {
		return "", fmt.Errorf("pgbouncer is not installed: %s", InstallHint)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("pgbouncer is not installed and there is no apt-get: install PgBouncer 1.18 or newer")
	}
	cmd := exec.Command("apt-get", "install", "-y", "-qq", "pgbouncer")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get install pgbouncer: %w\n%s", err, out)
	}
	return lookPath()
}

func lookPath() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("pgbouncer not found")
}

// Start writes the configuration and starts PgBouncer, waiting until it
// accepts connections.
func Start(o Options) (*Server, error) {
	bin, err := Find(o.Install)
	if err != nil {
		return nil, err
	}
	up, err := url.Parse(o.Upstream)
	if err != nil || up.Host == "" {
		return nil, errors.New("pgbouncertest: Upstream is not a postgres:// URL")
	}
	s := &Server{Port: o.Port, Dir: o.Dir, upstream: up, bin: bin}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "pgbouncer-"); err != nil {
			return nil, err
		}
		s.ownDir = true
	} else if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	if s.Port == 0 {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := s.writeConfig(o.PoolSize); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgbouncer refuses root and there is no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{s.Dir, s.conf, filepath.Join(s.Dir, "users.txt")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, err
			}
		}
		if f, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			f.Close()
			_ = os.Chown(s.LogPath(), uid, gid)
		}
	}
	return s, s.Restart()
}

func (s *Server) writeConfig(poolSize int) error {
	if poolSize <= 0 {
		poolSize = 10
	}
	host, port := s.upstream.Hostname(), s.upstream.Port()
	if port == "" {
		port = "5432"
	}
	users := map[string]bool{"postgres": true}
	if u := s.upstream.User.Username(); u != "" {
		users[u] = true
	}
	var auth strings.Builder
	for u := range users {
		fmt.Fprintf(&auth, "%q \"\"\n", u)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "users.txt"), []byte(auth.String()), 0o600); err != nil {
		return err
	}
	// The settings a production PgBouncer in front of CleanTrack needs are
	// pool_mode = transaction and pool sizes; the rest keeps a private
	// server quiet, on loopback only, and quick to reconnect after
	// PostgreSQL restarts (server_login_retry defaults to 15 s).
	conf := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = postgres
pool_mode = transaction
default_pool_size = %d
max_client_conn = 900
server_login_retry = 1
server_connect_timeout = 5
query_wait_timeout = 60
ignore_startup_parameters = extra_float_digits
logfile = %s
log_connections = 0
log_disconnections = 0
`, host, port, s.Port, filepath.Join(s.Dir, "users.txt"), poolSize, s.LogPath())
	s.conf = filepath.Join(s.Dir, "pgbouncer.ini")
	return os.WriteFile(s.conf, []byte(conf), 0o644)
}

// Restart starts PgBouncer, killing the running one first: clients lose
// their connections, as in a crash or a redeploy of the pooler.
func (s *Server) Restart() error {
	s.Kill()
	cmd := exec.Command(s.bin, s.conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pgbouncer: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.cmd = nil
			return fmt.Errorf("pgbouncer exited at start:\n%s", s.LogTail(10))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("pgbouncer on %s did not come up:\n%s", s.Addr(), s.LogTail(10))
}

// Kill stops PgBouncer with SIGKILL and waits for it; clients' connections
// break.
func (s *Server) Kill() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Pid is the running PgBouncer's process id, 0 when it is stopped.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop kills PgBouncer and removes its folder when Start made it.
func (s *Server) Stop() {
	s.Kill()
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// LogPath is PgBouncer's log file.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "pgbouncer.log") }

// LogTail returns the last n lines of the log, for failure reports.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(s.LogPath())
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// URL rewrites a URL of the upstream server (any database on it) to go
// through PgBouncer: same user, database and parameters, PgBouncer's address.
func (s *Server) URL(direct string) string {
	u, err := url.Parse(direct)
	if err != nil {
		return direct
	}
	u.Host = s.Addr()
	return u.String()
}

// StartT starts a PgBouncer in front of the server of upstream for the test
// and stops it when the test ends. Without pgbouncer installed the test is
// skipped, naming the install command.
func StartT(t testing.TB, upstream string, poolSize int) *Server {
	t.Helper()
	if _, err := lookPath(); err != nil {
		t.Skip("pgbouncer is not installed: " + InstallHint)
	}
	s, err := Start(Options{Upstream: upstream, PoolSize: poolSize})
	if err != nil {
		t.Fatalf("pgbouncertest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
