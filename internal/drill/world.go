//go:build drills

package drill

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cleantrack/jobs/internal/bench"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// webhookSecret signs every event the drills send.
const webhookSecret = "whsec_drill_0123456789abcdef"

// World is what all drills share: the built binaries, the private PostgreSQL
// and Redis, and where logs go.
type World struct {
	Root  string
	Bin   string
	Dir   string
	PG    *PrivatePG
	Redis *PrivateRedis
	Out   io.Writer
}

// Case is one drill's run: a fresh database on the private cluster, the
// flushed private Redis, and the processes it started.
type Case struct {
	W      *World
	Name   string
	DB     *bench.ScratchDB
	SQL    *sql.DB
	Store  *postgres.Store // for seeding rows
	Port   int
	Logs   string
	procs  map[string]*proctest.Proc
	fails  []string
	Secret string
}

func (w *World) newCase(ctx context.Context, name string) (*Case, error) {
	db, err := bench.CreateDatabase(ctx, w.PG.AdminURL(), "drill")
	if err != nil {
		return nil, err
	}
	s, err := db.Open()
	if err != nil {
		db.Drop(ctx)
		return nil, err
	}
	store, err := postgres.Open(ctx, db.URL)
	if err != nil {
		s.Close()
		db.Drop(ctx)
		return nil, err
	}
	rc := redis.NewClient(&redis.Options{Addr: w.Redis.Addr()})
	rc.FlushAll(ctx)
	rc.Close()
	port, err := proctest.FreePort()
	if err != nil {
		store.Close()
		s.Close()
		db.Drop(ctx)
		return nil, err
	}
	return &Case{W: w, Name: name, DB: db, SQL: s, Store: store, Port: port, Secret: webhookSecret,
		Logs: filepath.Join(w.Dir, "logs", name), procs: map[string]*proctest.Proc{}}, nil
}

func (c *Case) close() {
	for name, p := range c.procs {
		p.Kill()
		delete(c.procs, name)
	}
	c.Store.Close()
	c.SQL.Close()
	c.DB.Drop(context.Background())
}

// Injected prints what the drill did to the system.
func (c *Case) Injected(format string, args ...any) {
	fmt.Fprintf(c.W.Out, "  injected: "+format+"\n", args...)
}

// Verified prints a check that held.
func (c *Case) Verified(format string, args ...any) {
	fmt.Fprintf(c.W.Out, "  verified: "+format+"\n", args...)
}

// Check prints a check and records it as failed when ok is false.
func (c *Case) Check(ok bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ok {
		fmt.Fprintf(c.W.Out, "  verified: %s\n", msg)
		return
	}
	fmt.Fprintf(c.W.Out, "  FAILED:   %s\n", msg)
	c.fails = append(c.fails, msg)
}

// Env is the environment of every process in the drill, plus extra.
func (c *Case) Env(extra map[string]string) map[string]string {
	p := func() string { n, _ := proctest.FreePort(); return "127.0.0.1:" + strconv.Itoa(n) }
	env := map[string]string{
		"DATABASE_URL":           c.DB.URL,
		"REDIS_URL":              c.W.Redis.URL(),
		"PORT":                   strconv.Itoa(c.Port),
		"STRIPE_WEBHOOK_SECRET":  c.Secret,
		"ADMIN_ADDR":             p(),
		"WORKER_METRICS_ADDR":    p(),
		"SCHEDULER_METRICS_ADDR": p(),
		"WORKER_CONCURRENCY":     "10",
		"LOG_LEVEL":              "debug",
		"LOG_FORMAT":             "json",
		"EMAIL_OUTBOX_DIR":       filepath.Join(c.Logs, "outbox"),
		"SITE_URL":               "http://127.0.0.1:" + strconv.Itoa(c.Port),
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// Start starts a binary (web, worker, scheduler) under a name (so two
// schedulers can run), waiting for the web process to answer /healthz.
func (c *Case) Start(ctx context.Context, name, bin string, extra map[string]string) (*proctest.Proc, error) {
	if old := c.procs[name]; old != nil {
		old.Kill()
	}
	p, err := proctest.Start(proctest.Config{Name: name, Path: filepath.Join(c.W.Bin, bin), Env: c.Env(extra), LogDir: c.Logs})
	if err != nil {
		return nil, err
	}
	c.procs[name] = p
	if bin == "web" {
		if err := proctest.WaitHTTP(ctx, c.URL("/healthz"), 20*time.Second, p); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		return p, nil
	}
	time.Sleep(500 * time.Millisecond)
	if p.Exited() {
		return nil, fmt.Errorf("%s exited at start:\n%s", name, p.LogTail(20))
	}
	return p, nil
}

// Proc returns a started process by name.
func (c *Case) Proc(name string) *proctest.Proc { return c.procs[name] }

// Kill SIGKILLs a process.
func (c *Case) Kill(name string) {
	if p := c.procs[name]; p != nil {
		p.Kill()
		delete(c.procs, name)
	}
}

// Stop SIGTERMs a process and waits for it.
func (c *Case) Stop(name string) {
	if p := c.procs[name]; p != nil {
		_ = p.Stop(40 * time.Second)
		delete(c.procs, name)
	}
}

// URL is a URL on the web process.
func (c *Case) URL(path string) string { return "http://127.0.0.1:" + strconv.Itoa(c.Port) + path }

// Answer is the web process's reply to one webhook.
type Answer struct {
	Status    int
	Duplicate bool
	Body      string
	Err       error
}

var httpClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// Post signs body with the case's secret at the current time and posts it to
// the Stripe webhook.
func (c *Case) Post(ctx context.Context, body []byte) Answer {
	return c.PostURL(ctx, c.URL("/billing/webhooks/stripe/"), body)
}

// PostURL signs body with the case's secret at the current time and posts
// it to url (a Stripe webhook of one of several web processes).
func (c *Case) PostURL(ctx context.Context, url string, body []byte) Answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripetest.Sign(body, c.Secret, time.Now()))
	resp, err := httpClient.Do(req)
	if err != nil {
		return Answer{Err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct {
		Duplicate bool `json:"duplicate"`
	}
	_ = json.Unmarshal(b, &v)
	return Answer{Status: resp.StatusCode, Duplicate: v.Duplicate, Body: strings.TrimSpace(string(b))}
}

// PostConcurrently posts body n times at once and returns the answers.
func (c *Case) PostConcurrently(ctx context.Context, body []byte, n int) []Answer {
	out := make([]Answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = c.Post(ctx, body)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// Int runs a query returning one integer.
func (c *Case) Int(ctx context.Context, q string, args ...any) int64 {
	var n sql.NullInt64
	if err := c.SQL.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return -1
	}
	return n.Int64
}

// Str runs a query returning one string.
func (c *Case) Str(ctx context.Context, q string, args ...any) string {
	var s sql.NullString
	if err := c.SQL.QueryRowContext(ctx, q, args...).Scan(&s); err != nil {
		return "error: " + err.Error()
	}
	return s.String
}

// SeedAccount inserts an account with an owner (email owner@<slug>.test)
// linked to Stripe customer cus, and returns its id.
func (c *Case) SeedAccount(ctx context.Context, slug, cus string) (int64, error) {
	ids, err := c.Store.CreateAccounts(ctx, []postgres.OwnedAccount{{
		Owner:   postgres.NewUser{Email: "owner@" + slug + ".test", FirstName: "Olive", LastName: "Owner"},
		Account: postgres.NewAccount{Name: "Drill " + slug, Slug: slug, StripeCustomerID: cus},
	}})
	if err != nil {
		return 0, fmt.Errorf("seed account %s: %w", slug, err)
	}
	return ids[0], nil
}

// SeedAccounts inserts n accounts whose customers are cus_<prefix>_<i>.
func (c *Case) SeedAccounts(ctx context.Context, prefix string, n int) error {
	accounts := make([]postgres.OwnedAccount, n)
	for i := range accounts {
		s := strconv.Itoa(i)
		accounts[i] = postgres.OwnedAccount{
			Owner:   postgres.NewUser{Email: prefix + "-" + s + "@drill.test", FirstName: "Owner", LastName: "No" + s},
			Account: postgres.NewAccount{Name: "Drill " + s, Slug: prefix + "-" + s, StripeCustomerID: "cus_" + prefix + "_" + s},
		}
	}
	if _, err := c.Store.CreateAccounts(ctx, accounts); err != nil {
		return fmt.Errorf("seed accounts: %w", err)
	}
	return nil
}

// Inspector opens an asynq inspector on the private Redis.
func (c *Case) Inspector() *asynq.Inspector {
	return asynq.NewInspector(asynq.RedisClientOpt{Addr: c.W.Redis.Addr()})
}

// Until polls cond until it holds or timeout passes.
func (c *Case) Until(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	return bench.Eventually(ctx, timeout, 200*time.Millisecond, cond)
}

// pqArray formats ids as a PostgreSQL text[] literal.
func pqArray(ids []string) string {
	b, _ := json.Marshal(ids)
	s := string(b)
	return "{" + s[1:len(s)-1] + "}"
}
