//go:build drills

package drill

import (
	"context"
	"net/http"
	"time"

	"github.com/cleantrack/jobs/internal/bench"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/tasks"
)

// Drill 6: Resend answers 429 (Retry-After 1) and 500 in turn for a minute:
// afterwards every email is delivered once and none is marked failed.
func drillResend(ctx context.Context, c *Case) error {
	const n = 20
	fake := resendtest.NewServer()
	defer fake.Close()
	until := time.Now().Add(time.Minute)
	fake.SetHook(func(i int, _ resendtest.Request) *resendtest.Reply {
		if time.Now().After(until) {
			return nil
		}
		if i%2 == 1 {
			return &resendtest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "1",
				Header: map[string]string{"ratelimit-limit": "2", "ratelimit-remaining": "0", "ratelimit-reset": "1"}}
		}
		return &resendtest.Reply{Status: http.StatusInternalServerError}
	})
	if _, err := c.Start(ctx, "worker", "worker", bench.ResendEnv(fake.URL(), 1000)); err != nil {
		return err
	}
	if err := bench.EnqueueWelcomeEmails(ctx, c.W.Redis.URL(), "drill6/welcome", n); err != nil {
		return err
	}
	c.Injected("%d emails enqueued while Resend answers 429 (Retry-After: 1) and 500 in turn for one minute", n)
	ok := c.Until(ctx, 5*time.Minute, func() bool { return fake.DeliveredCount() >= n })
	st := fake.Statuses()
	c.Verified("Resend answered %d x 429, %d x 500, %d x 200", st[429], st[500], st[200])
	c.Check(st[429] > 0 && st[500] > 0, "the faults were hit")
	c.Check(ok, "every email delivered after Resend recovered (%d of %d)", fake.DeliveredCount(), n)
	time.Sleep(2 * time.Second)
	c.Check(len(fake.Keys()) == n, "one idempotency key per email (%d keys for %d emails)", len(fake.Keys()), n)
	c.Check(st[200] == n, "each email delivered once (%d successful requests for %d emails)", st[200], n)
	c.Check(c.Int(ctx, `SELECT count(*) FROM email_deliveries WHERE status = 'sent'`) == n, "%d delivery rows sent", n)
	c.Check(c.Int(ctx, `SELECT count(*) FROM email_deliveries WHERE status = 'failed'`) == 0, "none marked failed")
	insp := c.Inspector()
	defer insp.Close()
	archived, _ := insp.ListArchivedTasks(tasks.QueueDefault)
	c.Check(len(archived) == 0, "no archived email task (%d)", len(archived))
	return nil
}
