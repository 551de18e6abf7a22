//go:build bench || drills

package bench

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// EnqueueWelcomeEmails enqueues n welcome emails with keys <prefix>/<i>.
func EnqueueWelcomeEmails(ctx context.Context, redisURL, prefix string, n int) error {
	opt, err := queue.RedisOpt(redisURL)
	if err != nil {
		return err
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	for i := 0; i < n; i++ {
		data, _ := json.Marshal(email.WelcomeData{
			UserName: "Owner " + strconv.Itoa(i), AccountName: "Bench Hospital " + strconv.Itoa(i), PlanName: "Trial",
			SubscriptionEndDate: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), MaxLocations: 5, MaxUsers: 10,
			DashboardURL: "https://app.cleantrack.local/dashboard", HelpURL: "https://app.cleantrack.local/help", Timezone: "UTC",
		})
		t, err := tasks.NewEmailSend(tasks.EmailSendPayload{
			Key: prefix + "/" + strconv.Itoa(i), Template: email.TemplateWelcome,
			To: "owner-" + strconv.Itoa(i) + "@bench.cleantrack.local", Data: data,
		})
		if err != nil {
			return err
		}
		if _, _, err := queue.Enqueue(ctx, client, t); err != nil {
			return err
		}
	}
	return nil
}

// ResendEnv is the worker environment that points it at the Resend fake at
// baseURL (resendtest.Server.URL) with the worker's own rate limit lifted to
// perSecond.
func ResendEnv(baseURL string, perSecond int) map[string]string {
	return map[string]string{
		"RESEND_API_KEY":        "re_bench_key",
		"RESEND_BASE_URL":       baseURL,
		"EMAIL_RATE_PER_SECOND": strconv.Itoa(perSecond),
		"DEFAULT_FROM_EMAIL":    "CleanTrack <bench@cleantrack.local>",
	}
}
