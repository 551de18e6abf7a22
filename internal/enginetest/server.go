// Package enginetest starts the distributed Redis setups CleanTrack supports,
// from Debian's redis-server, for drills, the chaos run, CI and tests: a
// Sentinel group (a primary, a replica and three sentinels) and a Redis
// Cluster of three masters. Every server runs on loopback, on a free port, with
// its files in a temporary folder, and is stopped by its process id. Nothing
// here needs a build tag, so any package may use it.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoRedisServer is returned when redis-server is not on PATH.
var ErrNoRedisServer = errors.New("redis-server not found: install it (Debian: apt-get install redis-server)")

// Available reports ErrNoRedisServer when redis-server (or, for clusters,
// redis-cli) is missing, nil otherwise.
func Available() error {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w (%s missing)", ErrNoRedisServer, bin)
		}
	}
	return nil
}

// Server is one redis-server process (a data node or a sentinel). Its port
// and folder stay the same across Kill and Start.
type Server struct {
	Port int
	Dir  string
	// args are the command-line arguments it was started with, reused by
	// Start after a Kill.
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is 127.0.0.1:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// PID is the process id, or 0 when the server is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// LogPath is the server's log file.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "redis.log") }

func newServer(parent, prefix string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, prefix+"-"+strconv.Itoa(port)+"-")
	if err != nil {
		return nil, err
	}
	return &Server{Port: port, Dir: dir}, nil
}

// Start starts the server with the arguments of its first start plus extra
// (for example "--replicaof", "127.0.0.1 7001"), and waits until it answers
// PING. Calling it on a running server is an error.
func (s *Server) Start(ctx context.Context, extra ...string) error {
	if s.Running() {
		return fmt.Errorf("redis on %s already runs (pid %d)", s.Addr(), s.PID())
	}
	args := append(append([]string{}, s.args...), extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.Dir
	// A group of its own: a Ctrl-C at the terminal reaches only the caller,
	// which stops its servers itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return ErrNoRedisServer
		}
		return fmt.Errorf("start redis-server on %s: %w", s.Addr(), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return s.waitPing(ctx, 10*time.Second)
}

func (s *Server) waitPing(ctx context.Context, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if !s.Running() {
			return fmt.Errorf("redis-server on %s exited at start; see %s", s.Addr(), s.LogPath())
		}
		if err = c.Ping(ctx).Err(); err == nil {
			return nil
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("redis-server on %s did not answer within %s: %w", s.Addr(), timeout, err)
}

// Kill sends SIGKILL to the process and waits until it is gone: whatever it
// had not written to disk is lost.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Client opens a go-redis client on this one server (not cluster-aware).
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
}

// freePort asks the kernel for a loopback TCP port nothing listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dataArgs are the arguments every data node shares: loopback, its own
// folder and log, and the persistence asked for.
func dataArgs(s *Server, appendOnly bool) []string {
	aof := "no"
	if appendOnly {
		aof = "yes"
	}
	return []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.Port), "--dir", s.Dir,
		"--logfile", s.LogPath(), "--save", "", "--appendonly", aof,
		"--maxmemory-policy", "noeviction", "--protected-mode", "no",
		// A replica (re)joining syncs at once rather than after 5 s.
		"--repl-diskless-sync-delay", "0"}
}
