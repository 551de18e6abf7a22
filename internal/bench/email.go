//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// EmailResult is the email path figures: N emails through the worker into a
// local Resend fake with the rate limit lifted.
type EmailResult struct {
	Emails       int     `json:"emails"`
	Seconds      float64 `json:"seconds"`
	PerSec       float64 `json:"emails_per_sec"`
	RatioToNoop  float64 `json:"ratio_to_noop_ceiling"`
	Requests     int     `json:"resend_requests"`
	DistinctKeys int     `json:"distinct_idempotency_keys"`
}

// ResendFake is an httptest Resend that answers every send with 200 and an id,
// and records each request's Idempotency-Key and arrival time.
type ResendFake struct {
	*httptest.Server
	mu    sync.Mutex
	keys  map[string]int
	first time.Time
	last  time.Time
	n     int
	// Status, when set, answers instead of 200 (for drills): it gets the
	// request number and returns the status and extra headers.
	Status func(n int) (int, map[string]string)
}

// NewResendFake starts the fake; Close it when done.
func NewResendFake() *ResendFake {
	f := &ResendFake{keys: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *ResendFake) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	f.mu.Lock()
	f.n++
	n := f.n
	now := time.Now()
	if f.first.IsZero() {
		f.first = now
	}
	f.last = now
	status, headers := http.StatusOK, map[string]string(nil)
	if f.Status != nil {
		status, headers = f.Status(n)
	}
	if status == http.StatusOK {
		f.keys[r.Header.Get("Idempotency-Key")]++
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	switch status {
	case http.StatusOK:
		fmt.Fprintf(w, `{"id":"re_fake_%d"}`, n)
	case http.StatusTooManyRequests:
		fmt.Fprint(w, `{"statusCode":429,"name":"rate_limit_exceeded","message":"Too many requests. You can only make 2 requests per second."}`)
	default:
		fmt.Fprintf(w, `{"statusCode":%d,"name":"internal_server_error","message":"Something went wrong"}`, status)
	}
}

// Delivered returns how many 200s were sent and per idempotency key how many.
func (f *ResendFake) Delivered() (int, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make(map[string]int, len(f.keys))
	total := 0
	for k, v := range f.keys {
		keys[k] = v
		total += v
	}
	return total, keys
}

// Requests is the number of requests received, whatever was answered.
func (f *ResendFake) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *ResendFake) span() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last.Sub(f.first)
}

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
		t, opts, err := tasks.NewEmailSend(tasks.EmailSendPayload{
			Key: prefix + "/" + strconv.Itoa(i), Template: email.TemplateWelcome,
			To: "owner-" + strconv.Itoa(i) + "@bench.cleantrack.local", Data: data,
		})
		if err != nil {
			return err
		}
		if _, _, err := queue.Enqueue(ctx, client, t, opts...); err != nil {
			return err
		}
	}
	return nil
}

// ResendEnv is the worker environment that points it at fake with the rate
// limit lifted to perSecond.
func ResendEnv(fake *ResendFake, perSecond int) map[string]string {
	return map[string]string{
		"RESEND_API_KEY":        "re_bench_key",
		"RESEND_BASE_URL":       fake.URL + "/",
		"EMAIL_RATE_PER_SECOND": strconv.Itoa(perSecond),
		"DEFAULT_FROM_EMAIL":    "CleanTrack <bench@cleantrack.local>",
	}
}

func phaseEmail(ctx context.Context, e *env, res *Results) error {
	n := e.o.Emails
	if err := e.resetData(ctx); err != nil {
		return err
	}
	fake := NewResendFake()
	defer fake.Close()
	e.stop("worker")
	if err := EnqueueWelcomeEmails(ctx, e.redis.URL, "bench/welcome", n); err != nil {
		return err
	}
	if _, err := e.start(ctx, "worker", ResendEnv(fake, 1000000)); err != nil {
		return err
	}
	r := &EmailResult{Emails: n}
	ok := Eventually(ctx, 5*time.Minute, 100*time.Millisecond, func() bool {
		got, _ := fake.Delivered()
		return got >= n
	})
	if !ok {
		got, _ := fake.Delivered()
		return fmt.Errorf("only %d of %d emails reached the Resend fake in 5 minutes", got, n)
	}
	time.Sleep(500 * time.Millisecond) // let any duplicate show
	got, keys := fake.Delivered()
	r.Requests, r.DistinctKeys = got, len(keys)
	r.Seconds = fake.span().Seconds()
	if r.Seconds > 0 {
		r.PerSec = float64(n-1) / r.Seconds
	}
	if res.Ceilings != nil && res.Ceilings.NoopPerSec > 0 {
		r.RatioToNoop = r.PerSec / res.Ceilings.NoopPerSec
	}
	fmt.Fprintf(e.out, "  email: %d emails in %.2f s: %.0f emails/s (%d requests, %d keys)\n", n, r.Seconds, r.PerSec, r.Requests, r.DistinctKeys)
	res.Email = r
	e.stop("worker") // back to the default environment for the idle phase
	return nil
}
