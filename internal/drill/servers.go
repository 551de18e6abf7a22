//go:build drills

package drill

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PrivatePG is a PostgreSQL cluster of the drills' own, in a temporary
// folder on its own port, so restarting it disturbs nothing else.
type PrivatePG struct {
	Dir  string
	Port int
	bin  string
	log  string
}

// pgBinDir finds the PostgreSQL server binaries (initdb, pg_ctl).
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", fmt.Errorf("pg_ctl not found: install PostgreSQL server binaries (Debian: postgresql)")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// asPostgres runs a PostgreSQL tool; as root it runs it as the postgres user,
// since PostgreSQL refuses to run as root.
func asPostgres(ctx context.Context, bin string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	return exec.CommandContext(ctx, bin, args...)
}

// StartPrivatePG initialises a cluster under parent and starts it on port.
func StartPrivatePG(ctx context.Context, parent string, port int) (*PrivatePG, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "pg-")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	pg := &PrivatePG{Dir: dir, Port: port, bin: bin, log: filepath.Join(dir, "server.log")}
	out, err := asPostgres(ctx, filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return pg, pg.Start(ctx)
}

func (pg *PrivatePG) ctl(ctx context.Context, args ...string) error {
	full := append([]string{"-D", filepath.Join(pg.Dir, "data"), "-w", "-t", "30"}, args...)
	out, err := asPostgres(ctx, filepath.Join(pg.bin, "pg_ctl"), full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Start starts the server and waits until it accepts connections.
func (pg *PrivatePG) Start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c max_connections=200", pg.Port, pg.Dir)
	return pg.ctl(ctx, "start", "-l", pg.log, "-o", opts)
}

// Restart stops the server the fast way (open connections are cut, running
// transactions roll back) and starts it again.
func (pg *PrivatePG) Restart(ctx context.Context) error {
	if err := pg.ctl(ctx, "stop", "-m", "fast"); err != nil {
		return err
	}
	return pg.Start(ctx)
}

// Stop stops the server at once and removes the cluster.
func (pg *PrivatePG) Stop() {
	_ = pg.ctl(context.Background(), "stop", "-m", "immediate")
	_ = os.RemoveAll(pg.Dir)
}

// AdminURL is the URL of the cluster's postgres database.
func (pg *PrivatePG) AdminURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port)
}

// PrivateRedis is a redis-server of the drills' own, without persistence, so
// a restart loses every key, as a flush does.
type PrivateRedis struct {
	Port int
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPrivateRedis starts redis-server on port with its files under parent.
func StartPrivateRedis(parent string, port int) (*PrivateRedis, error) {
	dir, err := os.MkdirTemp(parent, "redis-")
	if err != nil {
		return nil, err
	}
	r := &PrivateRedis{Port: port, Dir: dir}
	return r, r.Start()
}

// Start starts the server (again) with the extra arguments (for example
// "--requirepass", "x") and waits until it answers.
func (r *PrivateRedis) Start(extra ...string) error {
	args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port), "--save", "", "--appendonly", "no",
		"--dir", r.Dir, "--logfile", filepath.Join(r.Dir, "redis.log")}, extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", r.Addr()); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not come up", r.Addr())
}

// Kill stops the server with SIGKILL: without persistence, every key is gone.
func (r *PrivateRedis) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Addr is host:port.
func (r *PrivateRedis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the redis:// URL of logical database 0.
func (r *PrivateRedis) URL() string { return "redis://" + r.Addr() + "/0" }

// Stop kills the server and removes its folder.
func (r *PrivateRedis) Stop() {
	r.Kill()
	_ = os.RemoveAll(r.Dir)
}
