//go:build drills

package drill

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cleantrack/jobs/internal/bench"
	"github.com/cleantrack/jobs/internal/enginetest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// sentinelLoad is the steady webhook load of drill 9.
const (
	sentinelAccounts = 150
	sentinelRate     = 20 // webhooks a second
	sentinelKillAt   = 5 * time.Second
)

// sent is one webhook of a load and how it was answered.
type sent struct {
	id     string
	body   []byte
	at     time.Time
	took   time.Duration
	status int // 0: no answer
}

// Drill 9: Redis behind Sentinel (a primary, a replica, three sentinels),
// two web, two worker and two scheduler processes, a steady load of signed
// webhooks, and the primary SIGKILLed mid-load. It prints the promotion
// time, the 503 window and the drain time, and checks that every event
// answered 200 was applied once and every email requested under one key.
func drillSentinel(ctx context.Context, c *Case) error {
	g, err := enginetest.StartSentinel(ctx, c.W.Dir, enginetest.SentinelOptions{AppendOnly: true})
	if err != nil {
		return err
	}
	defer g.Stop()
	fake := resendtest.NewServer()
	defer fake.Close()
	const prefix = "sf"
	if err := c.SeedAccounts(ctx, prefix, sentinelAccounts); err != nil {
		return err
	}
	env := bench.ResendEnv(fake.URL(), 1000)
	env["REDIS_URL"] = g.URL()
	webs, err := startMany(ctx, c, env)
	if err != nil {
		return err
	}
	c.Injected("Sentinel group up (%s), 2 web, 2 worker, 2 scheduler", g.URL())

	// Every account gets a subscription.created (a welcome email) and, later
	// in the load, a subscription.updated to past_due.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var load []*sent
	for round := 0; round < 2; round++ {
		for i := 0; i < sentinelAccounts; i++ {
			s := strconv.Itoa(i)
			o := stripetest.EventOptions{ID: fmt.Sprintf("evt_%s_%d_%s", prefix, round, s), Shape: stripetest.Shapes[i%2],
				CustomerID: "cus_" + prefix + "_" + s, SubscriptionID: "sub_" + prefix + "_" + s,
				PriceID: "price_trial_monthly", PeriodEnd: base.AddDate(0, 1, 0)}
			if round == 0 {
				o.Type, o.Status, o.Created = "customer.subscription.created", "active", base
			} else {
				o.Type, o.Status, o.Created = "customer.subscription.updated", "past_due", base.Add(time.Minute)
			}
			load = append(load, &sent{id: o.ID, body: stripetest.MustBuildEvent(o)})
		}
	}

	// The load: one webhook every 1/rate seconds, each in its own goroutine
	// so that a slow answer does not slow the rate, alternating between the
	// web processes. The primary dies sentinelKillAt into it.
	start := time.Now()
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / sentinelRate)
	var killedAt time.Time
	var promotion time.Duration
	var failoverErr error
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		if !sleepCtx(ctx, sentinelKillAt) {
			return
		}
		old, err := g.KillPrimary(ctx)
		if err != nil {
			failoverErr = err
			return
		}
		killedAt = time.Now()
		if _, err := g.WaitPromotion(ctx, old.Addr(), time.Minute); err != nil {
			failoverErr = err
			return
		}
		promotion = time.Since(killedAt)
		failoverErr = g.Restart(ctx, old)
	}()
	for i, s := range load {
		select {
		case <-ctx.Done():
			tick.Stop()
			return ctx.Err()
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.at = time.Now()
			a := postTo(ctx, webs[i%len(webs)], c.Secret, s.body)
			s.took, s.status = time.Since(s.at), a.Status
		}()
	}
	tick.Stop()
	wg.Wait()
	loadEnd := time.Now()
	<-killed
	if failoverErr != nil {
		return fmt.Errorf("failover: %w", failoverErr)
	}
	c.Injected("%d webhooks at %d/s over %s; primary SIGKILLed %s in, replica promoted after %s, old primary back as a replica",
		len(load), sentinelRate, loadEnd.Sub(start).Round(100*time.Millisecond), sentinelKillAt, promotion.Round(100*time.Millisecond))

	var refused []*sent
	var slowest time.Duration
	var firstBad, lastBad time.Time
	for _, s := range load {
		slowest = max(slowest, s.took)
		if s.status == http.StatusOK {
			continue
		}
		refused = append(refused, s)
		if firstBad.IsZero() || s.at.Before(firstBad) {
			firstBad = s.at
		}
		if end := s.at.Add(s.took); end.After(lastBad) {
			lastBad = end
		}
	}
	statuses := map[int]int{}
	for _, s := range refused {
		statuses[s.status]++
	}
	if len(refused) > 0 {
		c.Verified("503 window: %s (first refused %s after the kill, %d webhooks refused: %v by status, 0 = no answer); slowest answer %s",
			lastBad.Sub(firstBad).Round(100*time.Millisecond), firstBad.Sub(killedAt).Round(100*time.Millisecond), len(refused), statuses, slowest.Round(10*time.Millisecond))
	} else {
		c.Verified("no webhook refused during the failover; slowest answer %s", slowest.Round(10*time.Millisecond))
	}
	for st := range statuses {
		c.Check(st == http.StatusServiceUnavailable, "a refused webhook answers 503 so that Stripe retries it (got %d)", st)
	}

	// Stripe retries what was refused; after the promotion it is accepted.
	var notAccepted []string
	for _, s := range refused {
		if !c.Until(ctx, 30*time.Second, func() bool { return postTo(ctx, webs[0], c.Secret, s.body).Status == http.StatusOK }) {
			notAccepted = append(notAccepted, s.id)
		}
	}
	c.Check(len(notAccepted) == 0, "each of the %d refused webhooks accepted when Stripe retries it (not accepted: %v)", len(refused), notAccepted)
	retried := time.Now()

	ids := make([]string, len(load))
	for i, s := range load {
		ids[i] = s.id
	}
	pending := func() int64 {
		return c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = ANY($1) AND processed_at IS NULL`, pqArray(ids))
	}
	welcomes := func() int {
		n := 0
		for k := range fake.Keys() {
			if strings.HasPrefix(k, "welcome/sub_"+prefix+"_") {
				n++
			}
		}
		return n
	}
	drained := c.Until(ctx, 3*time.Minute, func() bool { return pending() == 0 && welcomes() >= sentinelAccounts })
	c.Check(drained, "every event processed and every welcome email sent (%d events pending, %d of %d emails)", pending(), welcomes(), sentinelAccounts)
	c.Verified("drained %s after the load ended (%s after the retries)", time.Since(loadEnd).Round(100*time.Millisecond), time.Since(retried).Round(100*time.Millisecond))
	time.Sleep(3 * time.Second) // room for a late duplicate

	recorded := c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = ANY($1)`, pqArray(ids))
	c.Check(recorded == int64(len(ids)), "every event in the inbox once (%d of %d)", recorded, len(ids))
	c.Check(c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE failed_at IS NOT NULL`) == 0, "no event failed")
	newest := c.Int(ctx, `SELECT count(*) FROM accounts WHERE status = 'past_due' AND stripe_subscription_id = 'sub_' || $1 || '_' || substr(stripe_customer_id, length($1) + 6)`, prefix)
	c.Check(newest == sentinelAccounts, "every account holds its newest event's state, past_due (%d of %d)", newest, sentinelAccounts)

	keys := fake.Keys()
	var twice []string
	for k, n := range keys {
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s x%d", k, n))
		}
	}
	sort.Strings(twice)
	kinds := map[string]int{}
	for k := range keys {
		kind, _, _ := strings.Cut(k, "/")
		kinds[kind]++
	}
	// A batch request delivers up to 100 emails under one key: an email is
	// its request's key and its place in the batch, and each is one sent row.
	emails := map[string]int{}
	for _, e := range fake.Delivered() {
		emails[fmt.Sprintf("%s#%d", e.Key, e.Index)]++
	}
	sentRows := c.Int(ctx, `SELECT count(*) FROM email_deliveries WHERE status = 'sent'`)
	c.Check(welcomes() == sentinelAccounts && fake.DeliveredCount() == len(emails) && int64(len(emails)) == sentRows,
		"one welcome email per subscription; every email delivered once (%d request keys by kind %v, %d emails delivered, %d distinct, %d sent rows)",
		len(keys), kinds, fake.DeliveredCount(), len(emails), sentRows)
	c.Verified("emails requested more than once, always under the same key: %d %v", len(twice), twice)
	rows := c.Int(ctx, `SELECT count(*) FROM email_deliveries WHERE idempotency_key LIKE 'welcome/sub_' || $1 || '_%' AND status = 'sent'`, prefix)
	c.Check(rows == sentinelAccounts, "one sent delivery row per welcome email (%d)", rows)
	for name := range c.procs {
		if p := c.procs[name]; p.Exited() {
			c.Check(false, "%s still running after the failover (exited: %v)", name, p.Err())
		}
	}
	return nil
}

// startMany starts two web, two worker and two scheduler processes on env
// (the inbox sweep every minute) and returns the two webhook URLs.
func startMany(ctx context.Context, c *Case, env map[string]string) ([]string, error) {
	sched := map[string]string{"INBOX_REDRIVE_MIN_AGE": "10s"}
	for k, v := range everyMinute {
		sched[k] = v
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range env {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	if _, err := c.Start(ctx, "web", "web", with(nil)); err != nil {
		return nil, err
	}
	port2, err := proctest.FreePort()
	if err != nil {
		return nil, err
	}
	web2, err := c.Start(ctx, "web-2", "web", with(map[string]string{"PORT": strconv.Itoa(port2)}))
	if err != nil {
		return nil, err
	}
	url2 := "http://127.0.0.1:" + strconv.Itoa(port2)
	if err := proctest.WaitHTTP(ctx, url2+"/healthz", 20*time.Second, web2); err != nil {
		return nil, fmt.Errorf("web-2: %w", err)
	}
	for _, name := range []string{"worker-a", "worker-b"} {
		if _, err := c.Start(ctx, name, "worker", with(nil)); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"scheduler-a", "scheduler-b"} {
		if _, err := c.Start(ctx, name, "scheduler", with(sched)); err != nil {
			return nil, err
		}
	}
	hook := "/billing/webhooks/stripe/"
	return []string{c.URL(hook), url2 + hook}, nil
}

// postTo signs body with secret and posts it to url.
func postTo(ctx context.Context, url, secret string, body []byte) Answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return Answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripetest.Sign(body, secret, time.Now()))
	resp, err := httpClient.Do(req)
	if err != nil {
		return Answer{Err: err}
	}
	resp.Body.Close()
	return Answer{Status: resp.StatusCode}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
