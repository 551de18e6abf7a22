//go:build bench

package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// BillingResult is the billing apply figures: a backlog of subscription
// events, all accepted by the web process first, then applied by the worker.
type BillingResult struct {
	Events        int     `json:"events"`
	Concurrency   int     `json:"worker_concurrency"`
	Seconds       float64 `json:"seconds"`
	WallSeconds   float64 `json:"wall_seconds_incl_start"`
	PerSec        float64 `json:"events_per_sec"`
	RatioToPG     float64 `json:"ratio_to_pg_ceiling"`
	AccountsExact int64   `json:"accounts_with_effect"`
	ProcessedRows int64   `json:"processed_rows"`
	MachineCPU    float64 `json:"machine_cpu_percent"`
	WorkerCPU     float64 `json:"worker_cpu_percent"`
	// Baseline is this apply next to the minimal one-transaction apply.
	Baseline *Baseline `json:"minimal_apply,omitempty"`
}

// seedAccounts inserts n accounts, each with an owner, whose Stripe customer
// ids are cus_<prefix>_<i>, i from 0.
func seedAccounts(ctx context.Context, e *env, n int, prefix string) error {
	accounts := make([]postgres.OwnedAccount, n)
	for i := range accounts {
		s := strconv.Itoa(i)
		accounts[i] = postgres.OwnedAccount{
			Owner:   postgres.NewUser{Email: prefix + "-" + s + "@bench.cleantrack.local", FirstName: "Owner", LastName: "No" + s},
			Account: postgres.NewAccount{Name: "Bench " + s, Slug: prefix + "-" + s, StripeCustomerID: "cus_" + prefix + "_" + s},
		}
	}
	if _, err := e.store.CreateAccounts(ctx, accounts); err != nil {
		return fmt.Errorf("seed accounts: %w", err)
	}
	return nil
}

func phaseBilling(ctx context.Context, e *env, res *Results) error {
	n := e.o.BillingEvents
	if err := e.resetData(ctx); err != nil {
		return err
	}
	e.stop("worker")
	if _, err := e.start(ctx, "web", nil); err != nil {
		return err
	}
	if err := seedAccounts(ctx, e, n, "bill"); err != nil {
		return err
	}
	if err := postBacklog(ctx, e, n, "bill"); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "  billing: %d events in the inbox and queue; starting the worker\n", n)
	start := time.Now()
	worker, err := e.start(ctx, "worker", nil)
	if err != nil {
		return err
	}
	cpu := startCPU(worker.Pid())
	r := &BillingResult{Events: n, Concurrency: 32}
	ok := Eventually(ctx, 10*time.Minute, 100*time.Millisecond, func() bool {
		_ = e.sql.QueryRowContext(ctx, `SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_bill_%' AND processed_at IS NOT NULL`).Scan(&r.ProcessedRows)
		return r.ProcessedRows >= int64(n)
	})
	r.WallSeconds = time.Since(start).Seconds()
	r.MachineCPU, r.WorkerCPU, _ = cpu.stop()
	if !ok {
		return fmt.Errorf("only %d of %d events processed after %s", r.ProcessedRows, n, time.Since(start).Round(time.Second))
	}
	const spread = `SELECT EXTRACT(EPOCH FROM max(processed_at) - min(processed_at)) FROM stripe_events WHERE id LIKE 'evt_bill_%'`
	if err := e.sql.QueryRowContext(ctx, spread).Scan(&r.Seconds); err != nil {
		return err
	}
	if r.Seconds > 0 {
		r.PerSec = float64(n-1) / r.Seconds
	}
	const effect = `SELECT count(*) FROM accounts WHERE status = 'active' AND stripe_subscription_id = 'sub_bill_' || substr(stripe_customer_id, 10)`
	if err := e.sql.QueryRowContext(ctx, effect).Scan(&r.AccountsExact); err != nil {
		return err
	}
	if r.AccountsExact != int64(n) {
		return fmt.Errorf("%d events processed but only %d accounts show the change", n, r.AccountsExact)
	}
	if res.Ceilings != nil && res.Ceilings.PGInsertPerSec > 0 {
		r.RatioToPG = r.PerSec / res.Ceilings.PGInsertPerSec
	}
	fmt.Fprintf(e.out, "  billing: %d events applied in %.2f s: %.0f events/s; cpu: machine %.0f%%, worker %.0f%%\n", n, r.Seconds, r.PerSec, r.MachineCPU, r.WorkerCPU)
	res.Billing = r
	b, err := applyBaseline(ctx, e, n, r.PerSec)
	if err != nil {
		return fmt.Errorf("minimal apply baseline: %w", err)
	}
	r.Baseline = b
	return nil
}

// postBacklog posts n signed subscription updates for the accounts seeded
// with seedAccounts(..., "bill"), with event ids evt_<prefix>_<i>, through
// the real intake, as Stripe would send them.
func postBacklog(ctx context.Context, e *env, n int, prefix string) error {
	p := newPoster(e.webURL("/billing/webhooks/stripe/"), 16)
	now := time.Now().Add(-time.Minute)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				s := strconv.Itoa(i)
				body := stripetest.MustBuildEvent(stripetest.EventOptions{
					Type: "customer.subscription.updated", ID: minimalEventID(prefix, i), Created: now, Shape: stripetest.Shapes[i%2],
					SubscriptionID: "sub_bill_" + s, CustomerID: "cus_bill_" + s, Status: "active",
					PriceID: "price_trial_monthly", PeriodEnd: now.AddDate(0, 1, 0),
				})
				status, err := p.post(ctx, body, stripetest.Sign(body, webhookSecret, time.Now()))
				if err != nil || status != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d of %d backlog events were not accepted", f, n)
	}
	return nil
}
