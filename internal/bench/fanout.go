//go:build bench

package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/tasks"
)

// Resend's limits the fan-out phase runs against: 2 requests a second, 100
// emails a request, so at most 200 emails a second.
const (
	resendRequestsPerSec = 2
	resendLimitPerSec    = resendRequestsPerSec * resendtest.MaxBatch
	// TargetFanOutRatio is the share of Resend's limit a fan-out must reach.
	TargetFanOutRatio = 0.9
)

// FanOutRun is one fan-out through the Resend fake.
type FanOutRun struct {
	Name     string  `json:"name"`
	Emails   int     `json:"emails"`
	Seconds  float64 `json:"seconds_first_to_last"`
	Wall     float64 `json:"seconds_enqueue_to_last"`
	PerSec   float64 `json:"emails_per_sec"`
	Ratio    float64 `json:"ratio_to_provider_limit"`
	Requests int     `json:"requests"`
	Refused  int     `json:"answered_429"`
}

// FanOutResult is the fan-out figures: the weekly summaries of Accounts
// accounts (owner and one admin each), then a scan opening an alert per
// account (emailed to both), through a Resend fake that enforces Resend's
// 2 requests a second and 100 emails a batch.
type FanOutResult struct {
	Accounts int         `json:"accounts"`
	Runs     []FanOutRun `json:"runs"`
}

// seedFanOut inserts n active accounts, each with an owner, one admin, a
// location and one piece of equipment overdue since yesterday (unassigned,
// so its alert goes to both).
func seedFanOut(ctx context.Context, e *env, n int) error {
	steps := []string{
		`TRUNCATE alerts, weekly_reports, email_deliveries, email_batches RESTART IDENTITY CASCADE`,
		`INSERT INTO users (email, first_name, last_name)
		 SELECT r || a || '@fanout.bench.example', initcap(r), 'No ' || a
		 FROM generate_series(1, $1) a, unnest(ARRAY['owner', 'admin']) r`,
		`INSERT INTO accounts (name, slug, owner_id, status, timezone)
		 SELECT 'Fanout ' || a, 'fanout-' || a, u.id, 'active', 'UTC'
		 FROM generate_series(1, $1) a JOIN users u ON u.email = 'owner' || a || '@fanout.bench.example'`,
		`INSERT INTO account_members (account_id, user_id, role)
		 SELECT ac.id, u.id, CASE WHEN u.email LIKE 'owner%' THEN 'owner' ELSE 'admin' END
		 FROM accounts ac JOIN users u ON u.email IN ('owner' || substr(ac.slug, 8) || '@fanout.bench.example',
		                                              'admin' || substr(ac.slug, 8) || '@fanout.bench.example')
		 WHERE $1 > 0`,
		`INSERT INTO locations (account_id, name) SELECT id, 'Ward' FROM accounts WHERE $1 > 0`,
		`INSERT INTO equipment (account_id, location_id, name, serial_number, cleaning_interval_hours, active, created_at)
		 SELECT l.account_id, l.id, 'Monitor ' || l.account_id, 'SN-' || l.account_id, 24, true, now() - interval '3 days'
		 FROM locations l WHERE $1 > 0`,
	}
	for _, q := range steps {
		var args []any
		if q[:8] != "TRUNCATE" {
			args = []any{n}
		}
		if _, err := e.sql.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("seed fan-out: %w", err)
		}
	}
	_, err := e.sql.ExecContext(ctx, `VACUUM ANALYZE`)
	return err
}

func phaseFanOut(ctx context.Context, e *env, res *Results) error {
	n := e.o.FanOutAccounts
	if err := e.resetData(ctx); err != nil {
		return err
	}
	e.stop("worker")
	if err := seedFanOut(ctx, e, n); err != nil {
		return err
	}
	fake := resendtest.NewServer()
	defer fake.Close()
	fake.DropBodies()
	fake.SetRateLimit(resendRequestsPerSec)
	if _, err := e.start(ctx, "worker", ResendEnv(fake.URL(), resendRequestsPerSec)); err != nil {
		return err
	}
	defer e.stop("worker") // back to the default environment for the next phases
	opt, err := queue.RedisOpt(e.redis.URL)
	if err != nil {
		return err
	}
	client := asynq.NewClient(opt)
	defer client.Close()

	r := &FanOutResult{Accounts: n}
	runs := []struct {
		name string
		task func() (*asynq.Task, error)
	}{
		{"weekly summaries", func() (*asynq.Task, error) { return tasks.NewWeeklySummary(tasks.WeeklySummaryPayload{}) }},
		{"overdue alerts of one scan", func() (*asynq.Task, error) { return tasks.NewOverdueScan(tasks.OverdueScanPayload{}) }},
	}
	for _, run := range runs {
		want := 2 * n
		before, reqsBefore, refusedBefore := fake.DeliveredCount(), fake.RequestCount(), fake.Statuses()[http.StatusTooManyRequests]
		task, err := run.task()
		if err != nil {
			return err
		}
		start := time.Now()
		if _, _, err := queue.Enqueue(ctx, client, task); err != nil {
			return err
		}
		ok := Eventually(ctx, 10*time.Minute, 100*time.Millisecond, func() bool { return fake.DeliveredCount() >= before+want })
		if !ok {
			return fmt.Errorf("%s: only %d of %d emails reached the Resend fake in 10 minutes", run.name, fake.DeliveredCount()-before, want)
		}
		time.Sleep(time.Second) // let any duplicate show
		sent := fake.Delivered()[before:]
		if len(sent) != want {
			return fmt.Errorf("%s: %d emails delivered, want %d: some went twice", run.name, len(sent), want)
		}
		fr := FanOutRun{Name: run.name, Emails: want, Requests: fake.RequestCount() - reqsBefore,
			Refused: fake.Statuses()[http.StatusTooManyRequests] - refusedBefore}
		fr.Seconds = sent[len(sent)-1].At.Sub(sent[0].At).Seconds()
		fr.Wall = sent[len(sent)-1].At.Sub(start).Seconds()
		if fr.Seconds > 0 {
			// The first request's emails arrive at once: count the rest
			// over the span, as a rate.
			fr.PerSec = float64(want-len(firstRequest(sent))) / fr.Seconds
		}
		fr.Ratio = fr.PerSec / resendLimitPerSec
		fmt.Fprintf(e.out, "  fan-out: %s: %d emails in %.1f s (%.1f s from enqueue): %.0f emails/s = %.2f x %d/s; %d requests, %d answered 429\n",
			run.name, want, fr.Seconds, fr.Wall, fr.PerSec, fr.Ratio, resendLimitPerSec, fr.Requests, fr.Refused)
		r.Runs = append(r.Runs, fr)
	}
	res.FanOut = r
	return nil
}

// firstRequest is the leading run of sent delivered by the first request.
func firstRequest(sent []resendtest.Email) []resendtest.Email {
	i := 0
	for i < len(sent) && sent[i].Request == sent[0].Request {
		i++
	}
	return sent[:i]
}
