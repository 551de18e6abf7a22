//go:build drills

package drill

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cleantrack/jobs/internal/bench"
	"github.com/cleantrack/jobs/internal/pgbouncertest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/resendtest"
)

// pqProtocolErrors are the errors lib/pq gets when PgBouncer splits its two
// round trips: the unnamed statement gone, or another client's Bind on it.
var pqProtocolErrors = regexp.MustCompile(`unnamed prepared statement does not exist|\(26000\)|\(08P01\)|bind message supplies`)

// CLI runs the cleantrack binary with the case's environment plus extra and
// returns its output; err is how it exited.
func (c *Case) CLI(ctx context.Context, extra map[string]string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p, err := proctest.Start(proctest.Config{Name: "cleantrack", Path: filepath.Join(c.W.Bin, "cleantrack"), Args: args, Env: c.Env(extra)})
	if err != nil {
		return "", err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Kill()
	}
	return p.Log(), p.Err()
}

// postBurst posts the subscription updates from..to-1 of prefix all at once,
// each dup times, and counts the answers by status (0: no answer).
func postBurst(ctx context.Context, c *Case, prefix string, from, to, dup int, created time.Time) map[int]int {
	var mu sync.Mutex
	status := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := from; i < to; i++ {
		_, body := subscriptionUpdate(prefix, i, created)
		for d := 0; d < dup; d++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				a := c.Post(ctx, body)
				mu.Lock()
				status[a.Status]++
				mu.Unlock()
			}()
		}
	}
	close(start)
	wg.Wait()
	return status
}

// Drill 11: every process and the CLI through PgBouncer in
// pool_mode=transaction with a pool smaller than the clients. First lib/pq
// as it comes (binary_parameters=no) to show the failure the store avoids,
// then the store's own setting: every webhook answered 200 and applied once,
// slots claimed, the commands working, and no protocol error in any log.
func drillPgBouncer(ctx context.Context, c *Case) error {
	pgb, err := pgbouncertest.Start(pgbouncertest.Options{
		Upstream: c.W.PG.AdminURL(), PoolSize: 4, Install: true, Dir: filepath.Join(c.Logs, "pgbouncer"),
	})
	if err != nil {
		return err
	}
	defer pgb.Stop()
	through := pgb.URL(c.DB.URL)
	c.Injected("PgBouncer (pool_mode=transaction, default_pool_size=4) on %s in front of the private PostgreSQL", pgb.Addr())

	const prefix = "pgb"
	const n = 40
	if err := c.SeedAccounts(ctx, prefix, n); err != nil {
		return err
	}
	created := time.Now().Add(-time.Hour).Truncate(time.Second)

	// Before: lib/pq's two round trips per statement, split by the pooler.
	if _, err := c.Start(ctx, "web-unfixed", "web", map[string]string{"DATABASE_URL": through + "&binary_parameters=no"}); err != nil {
		return err
	}
	var before map[int]int
	for round := 0; round < 5; round++ {
		before = postBurst(ctx, c, prefix+"x", round*30, round*30+30, 1, created)
		if before[http.StatusOK] < 30 {
			break
		}
	}
	unfixedLog := c.Proc("web-unfixed").Log()
	c.Stop("web-unfixed")
	errs := len(pqProtocolErrors.FindAllString(unfixedLog, -1))
	c.Check(before[http.StatusOK] < 30 && errs > 0,
		"without binary_parameters 30 concurrent webhooks through PgBouncer fail: %d answered 200, %d 503; %d lib/pq protocol errors logged (26000/08P01)",
		before[http.StatusOK], before[http.StatusServiceUnavailable], errs)

	// After: the same system as deployed, every process through PgBouncer.
	viaPgb := map[string]string{"DATABASE_URL": through, "MIGRATE_DATABASE_URL": c.DB.URL, "DATABASE_MAX_CONNS": "20"}
	out, err := c.CLI(ctx, viaPgb, "migrate")
	c.Check(err == nil && strings.Contains(out, "nothing to apply"), "cleantrack migrate takes MIGRATE_DATABASE_URL (direct) while DATABASE_URL is PgBouncer: %q %v", strings.TrimSpace(out), err)
	fake := resendtest.NewServer()
	defer fake.Close()
	procEnv := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range viaPgb {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	if _, err := c.Start(ctx, "web", "web", procEnv(nil)); err != nil {
		return err
	}
	if _, err := c.Start(ctx, "worker", "worker", procEnv(bench.ResendEnv(fake.URL(), 1000))); err != nil {
		return err
	}
	for _, name := range []string{"scheduler-1", "scheduler-2"} {
		if _, err := c.Start(ctx, name, "scheduler", procEnv(map[string]string{"INBOX_REDRIVE_CRON": "* * * * *"})); err != nil {
			return err
		}
	}
	after := postBurst(ctx, c, prefix, 0, n, 2, created)
	c.Check(after[http.StatusOK] == 2*n, "%d webhooks at once (%d events, each twice) through PgBouncer: %d answered 200 (%v)", 2*n, n, after[http.StatusOK], after)
	done := c.Until(ctx, 90*time.Second, func() bool { return applied(ctx, c, prefix) == n })
	c.Check(done, "every event applied by the worker through PgBouncer (%d of %d accounts)", applied(ctx, c, prefix), n)
	c.Check(c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_pgb\_%' AND processed_at IS NOT NULL AND attempts = 1`) == n,
		"each event applied once (one inbox row each, one attempt)")

	claimed := c.Until(ctx, 30*time.Second, func() bool {
		return c.Int(ctx, `SELECT count(*) FROM scheduler_slots WHERE enqueued_at IS NOT NULL`) > 0
	})
	c.Check(claimed, "the two schedulers claimed and enqueued cron slots through PgBouncer (%d slots)", c.Int(ctx, `SELECT count(*) FROM scheduler_slots WHERE enqueued_at IS NOT NULL`))
	c.Check(c.Int(ctx, `SELECT count(*) FROM (SELECT task_id FROM scheduler_slots GROUP BY task_id HAVING count(*) > 1) d`) == 0, "no slot claimed twice")

	for _, args := range [][]string{
		{"migrate", "status"},
		{"stripe", "events", "--limit", "3"},
		{"stripe", "replay", "evt_pgb_0"},
		{"schedule"},
		{"queues"},
		{"seed", "demo"},
		{"enqueue", "overdue-scan"},
		{"email", "deliveries"},
	} {
		out, err := c.CLI(ctx, viaPgb, args...)
		c.Check(err == nil && !pqProtocolErrors.MatchString(out), "cleantrack %s through PgBouncer exits 0%s", strings.Join(args, " "), failTail(out, err))
	}

	// The demo account has overdue equipment: the scan (enqueued above)
	// finds it and the worker sends its alerts, through PgBouncer too.
	sent := c.Until(ctx, 60*time.Second, func() bool { return len(fake.Requests()) > 0 })
	c.Check(sent, "the overdue scan's emails reached Resend (%d requests; %d deliveries recorded, %d keys repeated)", len(fake.Requests()),
		c.Int(ctx, `SELECT count(*) FROM email_deliveries`),
		c.Int(ctx, `SELECT count(*) - count(DISTINCT idempotency_key) FROM email_deliveries`))

	var logged []string
	for _, name := range []string{"web", "worker", "scheduler-1", "scheduler-2"} {
		if k := len(pqProtocolErrors.FindAllString(c.Proc(name).Log(), -1)); k > 0 {
			logged = append(logged, fmt.Sprintf("%s: %d", name, k))
		}
	}
	c.Check(len(logged) == 0, "no lib/pq protocol error in any process's log %v", logged)
	return nil
}

func failTail(out string, err error) string {
	if err == nil && !pqProtocolErrors.MatchString(out) {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return fmt.Sprintf(" (%v: %s)", err, strings.Join(lines, " | "))
}
