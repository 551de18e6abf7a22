// Package proctest builds CleanTrack's binaries and runs them as child
// processes: the end-to-end tests (through the testing.TB helpers, StartT and
// WaitHTTPT), the benchmark and the drills (through the plain functions,
// which return errors). A process gets exactly the environment it is given
// (plus PATH and HOME), its output goes to a log file or a buffer, and it is
// stopped as an operator would: SIGTERM, then SIGKILL after a timeout.
package proctest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ModuleRoot walks up from the working directory to the folder holding
// go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Build builds every command under cmd/ of the module at root into dir, so
// what runs is what a deploy would run.
func Build(ctx context.Context, root, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), "./cmd/...")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/...: %w\n%s", err, out)
	}
	return nil
}

// BuildTemp builds the binaries of the module above the working directory
// once, into a new temporary directory, for a TestMain. The caller removes
// the directory.
func BuildTemp(ctx context.Context) (dir string, err error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if dir, err = os.MkdirTemp("", "cleantrack-bin-"); err != nil {
		return "", err
	}
	if err := Build(ctx, root, dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// Config describes a process to start.
type Config struct {
	Name string // in logs and errors; the log file's name; default the binary's base name
	Path string // the binary
	Args []string
	// Env is the process's whole environment; PATH and HOME are added
	// from this process.
	Env map[string]string
	// LogDir, when set, receives the process's stdout and stderr, appended
	// to LogDir/<Name>.log; otherwise they are kept in memory.
	LogDir string
	// Dir is the working directory. Empty means a fresh empty directory,
	// removed when the process ends: the binaries read a .env from their
	// working directory, and a developer's must never reach a test.
	Dir string
}

// Proc is a running (or ended) process.
type Proc struct {
	name    string
	logPath string
	buf     *SyncBuffer
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// Start starts the process described by cfg. It runs in a process group of
// its own, so a Ctrl-C at the terminal reaches only the caller, which then
// stops its children in order.
func Start(cfg Config) (*Proc, error) {
	if cfg.Name == "" {
		cfg.Name = filepath.Base(cfg.Path)
	}
	p := &Proc{name: cfg.Name, done: make(chan struct{})}
	var out io.Writer
	var logFile *os.File
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
			return nil, err
		}
		p.logPath = filepath.Join(cfg.LogDir, cfg.Name+".log")
		f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		out, logFile = f, f
	} else {
		p.buf = &SyncBuffer{}
		out = p.buf
	}
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = Environ(cfg.Env)
	cmd.Dir = cfg.Dir
	if cmd.Dir == "" {
		dir, err := os.MkdirTemp("", "proctest-"+cfg.Name+"-")
		if err != nil {
			if logFile != nil {
				logFile.Close()
			}
			return nil, err
		}
		cmd.Dir = dir
		defer func() {
			if p.cmd == nil { // not started
				os.RemoveAll(dir)
			}
		}()
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		if cfg.Dir == "" {
			os.RemoveAll(cmd.Dir)
		}
		close(p.done)
	}()
	return p, nil
}

// Environ is env as a process environment, with PATH and HOME of this
// process added.
func Environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// Name is the name the process was started under.
func (p *Proc) Name() string { return p.name }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended (nil for exit status 0); nil while it runs.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stop sends SIGTERM and waits up to timeout for the process to end, then
// SIGKILLs it and says so.
func (p *Proc) Stop(timeout time.Duration) error {
	if p == nil || p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM", p.name, timeout)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	if p == nil || p.Exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// LogPath is the log file, or "" when the output is kept in memory.
func (p *Proc) LogPath() string { return p.logPath }

// Log returns the process's output so far.
func (p *Proc) Log() string {
	if p.buf != nil {
		return p.buf.String()
	}
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// LogContains reports whether the process's output holds s.
func (p *Proc) LogContains(s string) bool { return strings.Contains(p.Log(), s) }

// LogTail returns the last n lines of the process's output, for failure
// reports.
func (p *Proc) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitHTTP polls url until it answers 2xx, timeout passes or ctx ends. When
// p is given and ends first, it fails at once with the end of p's log.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, p *Proc) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited (%v) before %s answered:\n%s", p.name, p.err, url, p.LogTail(30))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("%s not ready after %s: %w", url, timeout, err)
			if p != nil {
				err = fmt.Errorf("%w\n%s", err, p.LogTail(30))
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreePort asks the kernel for a TCP port on loopback nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is FreePort as a 127.0.0.1:port address.
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}

// PeakRSSKiB reads VmHWM (peak resident set size) from /proc/<pid>/status.
func PeakRSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				return strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("VmHWM not found for pid %d", pid)
}

// TicksPerSecond is USER_HZ, fixed at 100 on Linux.
const TicksPerSecond = 100

// CPUTicks is utime+stime of pid in clock ticks (TicksPerSecond), from
// /proc/<pid>/stat.
func CPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields start after its ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	// After ")": state(0) ppid ... utime is field 14 overall, index 11 here.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + st, nil
}

// CPUPercentOver samples the CPU ticks of pid over d and returns the share of
// one core used, in percent.
func CPUPercentOver(ctx context.Context, pid int, d time.Duration) (float64, error) {
	t0, err := CPUTicks(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	t1, err := CPUTicks(pid)
	if err != nil {
		return 0, err
	}
	return float64(t1-t0) / TicksPerSecond / time.Since(start).Seconds() * 100, nil
}

// SyncBuffer is a bytes.Buffer that one goroutine (a process, a logger) may
// write while another reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
