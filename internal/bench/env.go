//go:build bench

package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/proctest"
)

// webhookSecret signs every event the bench sends.
const webhookSecret = "whsec_bench_0123456789abcdef"

// env is the bench's world: the built binaries, a scratch database, a borrowed
// Redis database and the processes running on them.
type env struct {
	o      Options
	out    io.Writer
	root   string
	bin    string
	logs   string
	db     *ScratchDB
	sql    *sql.DB
	store  *postgres.Store
	redis  *RedisDB
	port   int
	procs  map[string]*proctest.Proc
	peakKB map[string]int64
	extra  map[string]map[string]string
	// minimalBuilt: the minimal baseline binary is in bin (buildMinimal).
	minimalBuilt bool
}

func newEnv(ctx context.Context, o Options, root string, out io.Writer) (*env, error) {
	e := &env{o: o, out: out, root: root, bin: filepath.Join(o.OutDir, "bin"), logs: filepath.Join(o.OutDir, "logs"),
		procs: map[string]*proctest.Proc{}, peakKB: map[string]int64{}, extra: map[string]map[string]string{}}
	fmt.Fprintln(out, "bench: building binaries")
	if err := proctest.Build(ctx, root, e.bin); err != nil {
		return nil, err
	}
	var err error
	if e.db, err = CreateDatabase(ctx, o.AdminDBURL, "cleantrack_bench"); err != nil {
		return nil, err
	}
	if e.sql, err = e.db.Open(); err != nil {
		e.close()
		return nil, err
	}
	if e.store, err = postgres.Open(ctx, e.db.URL); err != nil {
		e.close()
		return nil, err
	}
	if e.redis, err = LockRedisDB(ctx, o.RedisServer); err != nil {
		e.close()
		return nil, err
	}
	if e.port, err = proctest.FreePort(); err != nil {
		e.close()
		return nil, err
	}
	fmt.Fprintf(out, "bench: database %s, redis %s\n", e.db.Name, e.redis.URL)
	return e, nil
}

func (e *env) close() {
	for name := range e.procs {
		e.stop(name)
	}
	if e.store != nil {
		e.store.Close()
	}
	if e.sql != nil {
		e.sql.Close()
	}
	if e.redis != nil {
		e.redis.Release()
	}
	if e.db != nil {
		e.db.Drop(context.Background())
	}
}

// baseEnv is the environment every CleanTrack process of the bench gets.
func (e *env) baseEnv() map[string]string {
	adminPort, _ := proctest.FreePort()
	workerPort, _ := proctest.FreePort()
	schedPort, _ := proctest.FreePort()
	return map[string]string{
		"DATABASE_URL":           e.db.URL,
		"REDIS_URL":              e.redis.URL,
		"PORT":                   strconv.Itoa(e.port),
		"STRIPE_WEBHOOK_SECRET":  webhookSecret,
		"ADMIN_ADDR":             "127.0.0.1:" + strconv.Itoa(adminPort),
		"WORKER_METRICS_ADDR":    "127.0.0.1:" + strconv.Itoa(workerPort),
		"SCHEDULER_METRICS_ADDR": "127.0.0.1:" + strconv.Itoa(schedPort),
		"WORKER_CONCURRENCY":     "32",
		"LOG_LEVEL":              "info",
		"LOG_FORMAT":             "json",
		"EMAIL_OUTBOX_DIR":       filepath.Join(e.o.OutDir, "outbox"),
		"SITE_URL":               "http://127.0.0.1:" + strconv.Itoa(e.port),
	}
}

// start starts (or restarts, when extra differs) the named binary.
func (e *env) start(ctx context.Context, name string, extra map[string]string) (*proctest.Proc, error) {
	if p := e.procs[name]; p != nil && !p.Exited() && sameEnv(e.extra[name], extra) {
		return p, nil
	}
	e.stop(name)
	vars := e.baseEnv()
	for k, v := range extra {
		vars[k] = v
	}
	p, err := proctest.Start(proctest.Config{Name: name, Path: filepath.Join(e.bin, name), Env: vars, LogDir: e.logs})
	if err != nil {
		return nil, err
	}
	e.procs[name], e.extra[name] = p, extra
	if name == "web" {
		if err := proctest.WaitHTTP(ctx, e.webURL("/healthz"), 20*time.Second, p); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
	} else {
		time.Sleep(time.Second)
		if p.Exited() {
			return nil, fmt.Errorf("%s exited at start:\n%s", name, p.LogTail(20))
		}
	}
	return p, nil
}

func sameEnv(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// stop records the process's peak memory and stops it.
func (e *env) stop(name string) {
	p := e.procs[name]
	if p == nil {
		return
	}
	e.notePeak(name)
	_ = p.Stop(30 * time.Second)
	delete(e.procs, name)
}

func (e *env) notePeak(name string) {
	p := e.procs[name]
	if p == nil || p.Exited() {
		return
	}
	if kb, err := proctest.PeakRSSKiB(p.Pid()); err == nil && kb > e.peakKB[name] {
		e.peakKB[name] = kb
	}
}

func (e *env) collectMemory(res *Results) {
	for name := range e.procs {
		e.notePeak(name)
	}
	for name, kb := range e.peakKB {
		s := res.Processes[name]
		s.PeakRSSMB = float64(kb) / 1024
		res.Processes[name] = s
	}
}

func (e *env) webURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(e.port) + path
}

// resetData empties the inbox, the accounts and Redis between phases.
func (e *env) resetData(ctx context.Context) error {
	const q = `TRUNCATE stripe_events, invoice_payment_failures, account_members, accounts, users RESTART IDENTITY CASCADE`
	if _, err := e.sql.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("reset data: %w", err)
	}
	e.redis.Flush(ctx)
	return nil
}

func phaseCeilings(ctx context.Context, e *env, res *Results) error {
	c, err := MeasureCeilings(ctx, e.redis, e.sql, 16, 32, e.o.Step+time.Second)
	if err != nil {
		return err
	}
	e.redis.Flush(ctx)
	res.Ceilings = &c
	return nil
}
