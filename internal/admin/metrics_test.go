package admin_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/internal/admin"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/web"
	"github.com/cleantrack/jobs/tasks"
)

// TestMetricsAfterWebhookTaskAndEmail follows a Stripe event from the webhook
// to the worker, and a welcome email from the email service to the sender,
// then scrapes the admin listener's /metrics as Prometheus would.
func TestMetricsAfterWebhookTaskAndEmail(t *testing.T) {
	f := newFixture(t, admin.Options{})
	store, _ := pgtest.NewStore(t)
	client := asynq.NewClient(f.redisOpt)
	t.Cleanup(func() { client.Close() })

	// A webhook through the real intake: verified, recorded, enqueued.
	const secret = "whsec_admin_metrics"
	intake := httptest.NewServer((&web.Server{
		Store:           store,
		Queue:           client,
		StripeSecrets:   []string{secret},
		StripeTolerance: 5 * time.Minute,
		Log:             slog.New(slog.DiscardHandler),
	}).Handler())
	t.Cleanup(intake.Close)
	body := fmt.Sprintf(`{"id":"evt_metrics_1","object":"event","type":"customer.subscription.updated","api_version":"2023-10-16","created":%d,"livemode":false,"data":{"object":{"id":"sub_1","object":"subscription","customer":"cus_1"}}}`, time.Now().Unix())
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(body), Secret: secret, Timestamp: time.Now()})
	req, err := http.NewRequest(http.MethodPost, intake.URL+"/billing/webhooks/stripe/", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Stripe-Signature", signed.Header)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	// A welcome email, requested as billing requests it.
	_, err = email.NewService(client, store).SendWelcomeEmail(context.Background(), "owner@example.com", email.WelcomeData{
		AccountName: "Demo Hospital", PlanName: "Pro", SubscriptionEndDate: time.Now().AddDate(0, 1, 0),
		DashboardURL: "https://app.example.com", HelpURL: "https://help.example.com",
	}, "welcome/sub_metrics")
	require.NoError(t, err)
	// Without an API key the sender writes to the dev outbox: a real delivery
	// with outcome "outbox", no Resend needed.
	sender, err := email.New(store, nil, slog.New(slog.DiscardHandler), email.Options{OutboxDir: t.TempDir()})
	require.NoError(t, err)

	// A poison task next to them, so the archived series have something to show.
	_, err = client.Enqueue(asynq.NewTask("test:poison", []byte(`{}`)), asynq.Queue(tasks.QueueDefault))
	require.NoError(t, err)

	// The worker side: a real Asynq server with the metrics middleware. The
	// stripe:event handler stands in for billing's; what is measured is the
	// middleware around it.
	mux := asynq.NewServeMux()
	mux.Use(metrics.TaskMiddleware(queue.IsFailure))
	mux.HandleFunc(tasks.TypeStripeEvent, func(context.Context, *asynq.Task) error { return nil })
	mux.Handle(tasks.TypeEmailSend, sender)
	mux.HandleFunc("test:poison", func(context.Context, *asynq.Task) error {
		return fmt.Errorf("payload names no account: %w", asynq.SkipRetry)
	})
	srv := asynq.NewServer(f.redisOpt, asynq.Config{Concurrency: 2, Queues: queue.Weights, IsFailure: queue.IsFailure, LogLevel: asynq.FatalLevel})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
	require.Eventually(t, func() bool {
		c, err1 := f.inspector.GetQueueInfo(tasks.QueueCritical)
		d, err2 := f.inspector.GetQueueInfo(tasks.QueueDefault)
		return err1 == nil && err2 == nil && c.Completed == 1 && d.Archived == 1 && d.Completed == 1
	}, 10*time.Second, 20*time.Millisecond)

	resp, scrape := f.do(t, "GET", "/metrics", true)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, line := range []string{
		`cleantrack_webhooks_received_total{outcome="accepted",provider="stripe",type="customer.subscription.updated"} 1`,
		`cleantrack_webhook_duration_seconds_count{provider="stripe"} 1`,
		`cleantrack_tasks_processed_total{queue="critical",task_type="stripe:event"} 1`,
		`cleantrack_task_duration_seconds_count{task_type="stripe:event"} 1`,
		`cleantrack_tasks_failed_total{queue="default",task_type="test:poison"} 1`,
		`cleantrack_tasks_archived_total{queue="default",task_type="test:poison"} 1`,
		`cleantrack_emails_total{outcome="outbox",template="welcome"} 1`,
		`cleantrack_tasks_processed_total{queue="default",task_type="email:send"} 1`,
		`asynq_tasks_enqueued_total{queue="default",state="archived"} 1`,
		`asynq_tasks_enqueued_total{queue="critical",state="completed"} 1`,
		`asynq_queue_size{queue="critical"} 1`,
		`asynq_tasks_processed_total{queue="critical"} 1`,
		`asynq_queue_paused_total{queue="critical"} 0`,
	} {
		assert.Contains(t, scrape, line+"\n")
	}
	for _, name := range []string{"asynq_queue_latency_seconds", "go_goroutines", "process_cpu_seconds_total"} {
		assert.Contains(t, scrape, "\n"+name, name)
	}
}

// TestDashboardRendersInChromium loads /monitoring/ in headless Chromium and
// checks that the queue list rendered (the app fetched its API through the
// mount and drew the table). It leaves a screenshot in tmp/test-output.
func TestDashboardRendersInChromium(t *testing.T) {
	t.Parallel()
	needChromium(t)
	f := newFixture(t, admin.Options{})
	f.seed(t)
	// Queue names the browser can only learn from the API, not from the HTML.
	c := asynq.NewClient(f.redisOpt)
	defer c.Close()
	_, err := c.Enqueue(asynq.NewTask("email:send", []byte(`{}`)), asynq.Queue("browsercheck"))
	require.NoError(t, err)

	dom := inChromium(t, f.browserURL(t, "/monitoring/"), "--dump-dom")
	for _, q := range []string{"critical", "default", "low", "browsercheck"} {
		assert.Contains(t, dom, ">"+q+"<", "queue %q in the rendered dashboard", q)
	}
	screenshot(t, f.browserURL(t, "/monitoring/"), "monitoring.png")
}
