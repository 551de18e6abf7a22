//go:build drills

package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/bench"
	"github.com/cleantrack/jobs/internal/enginetest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// Drill 10: the whole flow on a Redis Cluster of three masters: an event
// applied with one welcome email, `cleantrack queues` and the dashboard API
// reading the cluster, two schedulers enqueuing each cron slot once, and a
// FLUSHALL on every master recovered by the inbox sweep. Every key the
// processes leave is hash-tagged.
func drillCluster(ctx context.Context, c *Case) error {
	cl, err := enginetest.StartCluster(ctx, c.W.Dir, enginetest.ClusterOptions{})
	if err != nil {
		return err
	}
	defer cl.Stop()
	fake := resendtest.NewServer()
	defer fake.Close()
	env := bench.ResendEnv(fake.URL(), 1000)
	env["REDIS_URL"] = cl.URL()
	env["ADMIN_USER"], env["ADMIN_PASSWORD"] = "ops", "drill-admin-password"
	env["INBOX_REDRIVE_MIN_AGE"] = "0s"
	if env["ADMIN_ADDR"], err = proctest.FreeAddr(); err != nil {
		return err
	}
	sched := map[string]string{}
	for k, v := range env {
		sched[k] = v
	}
	for k, v := range everyMinute {
		sched[k] = v
	}
	web, err := c.Start(ctx, "web", "web", env)
	if err != nil {
		return err
	}
	if _, err := c.Start(ctx, "worker", "worker", env); err != nil {
		return err
	}
	for _, name := range []string{"scheduler-a", "scheduler-b"} {
		if _, err := c.Start(ctx, name, "scheduler", sched); err != nil {
			return err
		}
	}
	c.Injected("Redis Cluster of 3 masters (%s); web, worker, 2 schedulers", cl.URL())

	// Apply, one welcome email.
	if _, err := c.SeedAccount(ctx, "cluster", "cus_cluster"); err != nil {
		return err
	}
	created := stripetest.MustBuildEvent(stripetest.EventOptions{Type: "customer.subscription.created", ID: "evt_cluster_created",
		Created: time.Now().Add(-time.Minute).Truncate(time.Second), CustomerID: "cus_cluster", SubscriptionID: "sub_cluster",
		Status: "active", PriceID: "price_trial_monthly", Shape: stripetest.Shape2025})
	for i := 0; i < 3; i++ {
		if a := c.Post(ctx, created); a.Status != http.StatusOK {
			return fmt.Errorf("post subscription.created: %d %s %v", a.Status, a.Body, a.Err)
		}
	}
	ok := c.Until(ctx, 30*time.Second, func() bool {
		return c.Str(ctx, `SELECT status FROM accounts WHERE slug = 'cluster'`) == "active" && fake.DeliveredCount() >= 1
	})
	c.Check(ok, "subscription.created (delivered 3 times) applied: account active, welcome email sent")
	time.Sleep(2 * time.Second)
	// The schedulers fire every minute, so weekly summaries may go out too.
	welcome := 0
	for k, n := range fake.Keys() {
		if strings.HasPrefix(k, "welcome/") {
			welcome += n
		}
	}
	c.Check(welcome == 1 && fake.Keys()["welcome/sub_cluster"] == 1, "one welcome email, one request (%v)", fake.Keys())

	// The CLI and the dashboard read the cluster.
	cli := exec.CommandContext(ctx, filepath.Join(c.W.Bin, "cleantrack"), "queues", "--json")
	cli.Env = proctest.Environ(env)
	out, err := cli.CombinedOutput()
	var queues []struct {
		Queue string `json:"queue"`
	}
	jerr := json.Unmarshal(out, &queues)
	var names []string
	for _, q := range queues {
		names = append(names, q.Queue)
	}
	c.Check(err == nil && jerr == nil && len(queues) >= 3, "cleantrack queues --json lists the queues from the cluster: %v (%v %v %s)", names, err, jerr, firstLine(out))
	status, body := adminGet(ctx, env, "/monitoring/api/queues")
	c.Check(status == http.StatusOK && strings.Contains(body, `"critical"`), "the dashboard API (/monitoring/api/queues) lists the queues from the cluster (%d %s)", status, truncate(body, 80))

	// Two schedulers, one enqueue per slot and entry.
	slot, err := waitPast(ctx, 8*time.Second)
	if err != nil {
		return err
	}
	var perEntry []struct {
		entry            string
		enqueued, firing int64
	}
	for _, entry := range []string{"overdue-scan", "weekly-summary", "inbox-redrive"} {
		e := c.Int(ctx, `SELECT count(*) FROM scheduler_firings WHERE slot = $1 AND entry = $2 AND outcome = 'enqueued'`, slot, entry)
		f := c.Int(ctx, `SELECT count(DISTINCT scheduler_id) FROM scheduler_firings WHERE slot = $1 AND entry = $2`, slot, entry)
		perEntry = append(perEntry, struct {
			entry            string
			enqueued, firing int64
		}{entry, e, f})
	}
	for _, p := range perEntry {
		c.Check(p.enqueued == 1 && p.firing == 2, "slot %s of %s: both schedulers fired, one enqueued (%d enqueued, %d schedulers)", slot.Format("15:04"), p.entry, p.enqueued, p.firing)
	}

	// FLUSHALL on every master with accepted events not yet applied.
	c.Stop("worker")
	const prefix = "cf"
	const flushed = 10
	if err := c.SeedAccounts(ctx, prefix, flushed); err != nil {
		return err
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var ids []string
	for i := 0; i < flushed; i++ {
		id, body := subscriptionUpdate(prefix, i, base)
		if a := c.Post(ctx, body); a.Status != http.StatusOK {
			return fmt.Errorf("post %s: %d %s %v", id, a.Status, a.Body, a.Err)
		}
		ids = append(ids, id)
	}
	if err := cl.FlushAll(ctx); err != nil {
		return err
	}
	keys, _ := cl.DBSize(ctx)
	c.Injected("%d events accepted with the worker stopped, then FLUSHALL on every master (%d keys left)", flushed, keys)
	if _, err := c.Start(ctx, "worker", "worker", env); err != nil {
		return err
	}
	pending := func() int64 {
		return c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = ANY($1) AND processed_at IS NULL`, pqArray(ids))
	}
	done := c.Until(ctx, 3*time.Minute, func() bool { return pending() == 0 })
	c.Check(done && applied(ctx, c, prefix) == flushed, "the inbox sweep re-drove every flushed event (%d pending, %d of %d applied)", pending(), applied(ctx, c, prefix), flushed)

	// Every key the processes wrote is hash-tagged.
	var untagged []string
	for _, n := range cl.Nodes {
		nc := n.Client()
		all, err := nc.Keys(ctx, "*").Result()
		nc.Close()
		if err != nil {
			return err
		}
		for _, k := range all {
			open := strings.IndexByte(k, '{')
			if (open < 0 || strings.IndexByte(k[open:], '}') < 2) && !asynqGlobal(k) {
				untagged = append(untagged, k)
			}
		}
	}
	c.Check(len(untagged) == 0, "every key in the cluster is hash-tagged or one of Asynq's global keys (untagged: %v)", untagged)
	c.Check(!web.Exited(), "web still running")
	return nil
}

// asynqGlobal reports Asynq's keys outside any queue, each read and written
// alone.
func asynqGlobal(k string) bool {
	switch k {
	case "asynq:servers", "asynq:workers", "asynq:schedulers", "asynq:queues":
		return true
	}
	return false
}

// adminGet GETs path on the admin listener with the basic auth of env.
func adminGet(ctx context.Context, env map[string]string, path string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+env["ADMIN_ADDR"]+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	req.SetBasicAuth(env["ADMIN_USER"], env["ADMIN_PASSWORD"])
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return truncate(s, 200)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
