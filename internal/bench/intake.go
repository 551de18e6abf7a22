//go:build bench

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// IntakeStep is one load level against the webhook endpoint.
type IntakeStep struct {
	Concurrency int     `json:"concurrency,omitempty"`
	TargetRate  float64 `json:"target_rate,omitempty"`
	Seconds     float64 `json:"seconds"`
	Accepted    int64   `json:"accepted"`
	Errors      int64   `json:"errors"`
	PerSec      float64 `json:"accepted_per_sec"`
	P50ms       float64 `json:"p50_ms"`
	P95ms       float64 `json:"p95_ms"`
	P99ms       float64 `json:"p99_ms"`
	// Where the two cores went during the step, in percent of one core.
	MachineCPU float64 `json:"machine_cpu_percent"`
	WebCPU     float64 `json:"web_cpu_percent"`
	LoaderCPU  float64 `json:"loader_cpu_percent"`
}

// IntakeResult is the webhook intake figures: closed-loop steps at rising
// concurrency, then an open-loop run at half the peak rate.
type IntakeResult struct {
	Steps          []IntakeStep `json:"steps"`
	PeakPerSec     float64      `json:"peak_per_sec"`
	RatioToCeiling float64      `json:"ratio_to_lower_ceiling"`
	HalfPeak       IntakeStep   `json:"half_peak"`
	Accepted       int64        `json:"accepted_total"`
	InboxRows      int64        `json:"inbox_rows"`
	Enqueued       int64        `json:"tasks_enqueued"`
	// Baseline is this intake next to the minimal receiver.
	Baseline *Baseline `json:"minimal_receiver,omitempty"`
}

var intakeSeq atomic.Int64

// signedSubscriptionUpdate builds a fresh signed event for a made-up customer:
// the intake records and enqueues without looking the customer up.
func signedSubscriptionUpdate(now time.Time) (body []byte, sig string) {
	n := intakeSeq.Add(1)
	id := "evt_bench_" + strconv.FormatInt(n, 10)
	body = stripetest.MustBuildEvent(stripetest.EventOptions{
		Type: "customer.subscription.updated", ID: id, Created: now, Shape: stripetest.Shape2025,
		SubscriptionID: "sub_bench_" + strconv.FormatInt(n%5000, 10), CustomerID: "cus_bench_" + strconv.FormatInt(n%5000, 10),
		Status: "active", PriceID: "price_trial_monthly", PeriodEnd: now.AddDate(0, 1, 0),
	})
	return body, stripetest.Sign(body, webhookSecret, now)
}

type poster struct {
	url    string
	client *http.Client
}

func newPoster(url string, conns int) *poster {
	tr := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}
	return &poster{url: url, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// post sends one signed event and reports whether it was accepted (200).
func (p *poster) post(ctx context.Context, body []byte, sig string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", sig)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func phaseIntake(ctx context.Context, e *env, res *Results) error {
	if err := e.resetData(ctx); err != nil {
		return err
	}
	e.stop("worker") // the intake is measured alone: the queue just grows
	if _, err := e.start(ctx, "web", nil); err != nil {
		return err
	}
	p := newPoster(e.webURL("/billing/webhooks/stripe/"), 128)
	// Warm up connections and the process.
	warm, err := closedLoop(ctx, p, 8, time.Second)
	if err != nil {
		return err
	}
	r := &IntakeResult{Accepted: warm.Accepted}
	web := e.procs["web"].Pid()
	for _, c := range []int{1, 4, 16, 32, 64} {
		cpu := startCPU(web)
		step, err := closedLoop(ctx, p, c, e.o.Step)
		if err != nil {
			return err
		}
		step.MachineCPU, step.WebCPU, step.LoaderCPU = cpu.stop()
		fmt.Fprintf(e.out, "  intake c=%-3d %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  cpu: machine %.0f%%, web %.0f%%, loader %.0f%%\n",
			c, step.PerSec, step.P50ms, step.P99ms, step.Errors, step.MachineCPU, step.WebCPU, step.LoaderCPU)
		r.Steps = append(r.Steps, step)
		r.Accepted += step.Accepted
		r.PeakPerSec = max(r.PeakPerSec, step.PerSec)
	}
	half, err := openLoop(ctx, p, r.PeakPerSec/2, 2*e.o.Step)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "  intake at %.0f/s (half peak): p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  errors %d\n", half.TargetRate, half.P50ms, half.P95ms, half.P99ms, half.Errors)
	r.HalfPeak = half
	r.Accepted += half.Accepted
	if res.Ceilings != nil && res.Ceilings.Lower() > 0 {
		r.RatioToCeiling = r.PeakPerSec / res.Ceilings.Lower()
	}
	// Every 200 must be a row: the figures count durable acceptances only.
	if err := e.sql.QueryRowContext(ctx, `SELECT count(*) FROM stripe_events`).Scan(&r.InboxRows); err != nil {
		return err
	}
	r.Enqueued, _ = e.redis.Client.LLen(ctx, "asynq:{critical}:pending").Result()
	res.Intake = r
	if r.InboxRows != r.Accepted || r.Enqueued != r.Accepted {
		return fmt.Errorf("%d events answered 200 but %d inbox rows and %d queued tasks", r.Accepted, r.InboxRows, r.Enqueued)
	}
	b, err := receiverBaseline(ctx, e, r.Steps)
	if err != nil {
		return fmt.Errorf("minimal receiver baseline: %w", err)
	}
	r.Baseline = b
	return nil
}

type recorder struct {
	mu       sync.Mutex
	lat      []time.Duration
	accepted atomic.Int64
	errors   atomic.Int64
}

func (r *recorder) add(local []time.Duration) {
	r.mu.Lock()
	r.lat = append(r.lat, local...)
	r.mu.Unlock()
}

func (r *recorder) step(elapsed time.Duration) IntakeStep {
	slices.Sort(r.lat)
	q := func(f float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		i := int(f * float64(len(r.lat)-1))
		return float64(r.lat[i].Microseconds()) / 1000
	}
	return IntakeStep{
		Seconds: elapsed.Seconds(), Accepted: r.accepted.Load(), Errors: r.errors.Load(),
		PerSec: float64(r.accepted.Load()) / elapsed.Seconds(),
		P50ms:  q(0.50), P95ms: q(0.95), P99ms: q(0.99),
	}
}

// closedLoop runs c clients, each posting the next event as soon as the last
// was answered, for d.
func closedLoop(ctx context.Context, p *poster, c int, d time.Duration) (IntakeStep, error) {
	rec := &recorder{}
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < c; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				now := time.Now()
				body, sig := signedSubscriptionUpdate(now)
				t0 := time.Now()
				status, err := p.post(ctx, body, sig)
				local = append(local, time.Since(t0))
				if err == nil && status == http.StatusOK {
					rec.accepted.Add(1)
				} else {
					rec.errors.Add(1)
				}
			}
			rec.add(local)
		}()
	}
	wg.Wait()
	s := rec.step(time.Since(start))
	s.Concurrency = c
	return s, ctx.Err()
}

// openLoop sends at a fixed rate regardless of answers, and measures each
// latency from the moment the request was due, so a stall is not hidden.
func openLoop(ctx context.Context, p *poster, rate float64, d time.Duration) (IntakeStep, error) {
	rec := &recorder{}
	due := make(chan time.Time, 4096)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	go func() {
		defer close(due)
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.After(start.Add(d)) || ctx.Err() != nil {
				return
			}
			time.Sleep(time.Until(at))
			due <- at
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for at := range due {
				body, sig := signedSubscriptionUpdate(time.Now())
				status, err := p.post(ctx, body, sig)
				local = append(local, time.Since(at))
				if err == nil && status == http.StatusOK {
					rec.accepted.Add(1)
				} else {
					rec.errors.Add(1)
				}
			}
			rec.add(local)
		}()
	}
	wg.Wait()
	s := rec.step(time.Since(start))
	s.TargetRate = rate
	return s, ctx.Err()
}

// cpuSample measures, over a step, the machine's busy CPU (all cores, from
// /proc/stat), the web process's and this load generator's, each in percent
// of one core.
type cpuSample struct {
	pid                int
	start              time.Time
	busy0, web0, self0 int64
}

func startCPU(pid int) cpuSample {
	s := cpuSample{pid: pid, start: time.Now()}
	s.busy0 = machineBusyTicks()
	s.web0, _ = proctest.CPUTicks(pid)
	s.self0, _ = proctest.CPUTicks(os.Getpid())
	return s
}

func (s cpuSample) stop() (machine, web, self float64) {
	secs := time.Since(s.start).Seconds()
	pct := func(t0, t1 int64) float64 { return float64(t1-t0) / proctest.TicksPerSecond / secs * 100 }
	w, _ := proctest.CPUTicks(s.pid)
	me, _ := proctest.CPUTicks(os.Getpid())
	return pct(s.busy0, machineBusyTicks()), pct(s.web0, w), pct(s.self0, me)
}

// machineBusyTicks sums the non-idle ticks of all cores from /proc/stat.
func machineBusyTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 7 { // steal, guest: not ours
			break
		}
		busy += n
	}
	return busy
}
