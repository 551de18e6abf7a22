//go:build bench || drills

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

// ResendFake is an httptest Resend that records every send's Idempotency-Key
// and answers 200 with an id, or what Status says. Like Resend, a key that was
// already answered 200 gets the first answer again and is not counted as a
// second delivery.
type ResendFake struct {
	*httptest.Server
	mu        sync.Mutex
	requests  map[string]int // per key, every request
	delivered map[string]int // per key, the 200 that delivered it (at most 1)
	first     time.Time
	last      time.Time
	n         int
	inFlight  int
	statuses  map[int]int
	// Status, when set, answers instead of 200 (for drills): it gets the
	// request number and returns the status and extra headers.
	Status func(n int) (int, map[string]string)
	// Delay, when set, holds each request that long before answering.
	Delay time.Duration
}

// NewResendFake starts the fake; Close it when done.
func NewResendFake() *ResendFake {
	f := &ResendFake{requests: map[string]int{}, delivered: map[string]int{}, statuses: map[int]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *ResendFake) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	f.n++
	n := f.n
	f.requests[key]++
	f.inFlight++
	delay := f.Delay
	status, headers := http.StatusOK, map[string]string(nil)
	if f.Status != nil {
		status, headers = f.Status(n)
	}
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}
	f.mu.Lock()
	f.inFlight--
	f.statuses[status]++
	now := time.Now()
	if status == http.StatusOK && f.delivered[key] == 0 {
		f.delivered[key] = 1
		if f.first.IsZero() {
			f.first = now
		}
		f.last = now
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	switch status {
	case http.StatusOK:
		fmt.Fprintf(w, `{"id":"re_fake_%x"}`, key)
	case http.StatusTooManyRequests:
		fmt.Fprint(w, `{"statusCode":429,"name":"rate_limit_exceeded","message":"Too many requests. You can only make 2 requests per second."}`)
	default:
		fmt.Fprintf(w, `{"statusCode":%d,"name":"internal_server_error","message":"Something went wrong"}`, status)
	}
}

// Delivered returns how many distinct keys were delivered (answered 200).
func (f *ResendFake) Delivered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.delivered)
}

// Keys returns, per idempotency key, how many requests carried it.
func (f *ResendFake) Keys() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make(map[string]int, len(f.requests))
	for k, v := range f.requests {
		keys[k] = v
	}
	return keys
}

// Requests is the number of requests received, whatever was answered.
func (f *ResendFake) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Statuses returns how many answers of each HTTP status were given.
func (f *ResendFake) Statuses() map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[int]int, len(f.statuses))
	for k, v := range f.statuses {
		out[k] = v
	}
	return out
}

// DeliveredKeys returns the keys that were delivered.
func (f *ResendFake) DeliveredKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]string, 0, len(f.delivered))
	for k := range f.delivered {
		keys = append(keys, k)
	}
	return keys
}

// InFlight is the number of requests being held (see Delay).
func (f *ResendFake) InFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight
}

// SetBehaviour changes Status and Delay while the fake runs.
func (f *ResendFake) SetBehaviour(status func(n int) (int, map[string]string), delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Status, f.Delay = status, delay
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
