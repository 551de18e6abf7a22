package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/resend/resend-go/v2"

	"github.com/cleantrack/jobs/internal/address"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// Outcomes of a send, the "outcome" label of metrics.EmailsTotal.
const (
	OutcomeSent        = "sent"
	OutcomeOutbox      = "outbox"
	OutcomeFailed      = "failed"
	OutcomeSuppressed  = "suppressed"
	OutcomeRateLimited = "rate_limited"
	OutcomeRetried     = "retried"
)

// rateLimitKey is the Redis key of the sending rate shared by every worker:
// the time of the next free request slot (hash-tagged, see queue.Key).
var rateLimitKey = queue.Key("email", "resend_next_slot")

// Defaults for Options left empty.
const (
	DefaultFrom          = "CleanTrack <notifications@cleantrack.local>"
	DefaultOutboxDir     = "./tmp/outbox"
	DefaultRatePerSecond = 2
	DefaultMaxRateWait   = 4 * time.Second
	DefaultHTTPTimeout   = 30 * time.Second
)

// Options configure a Sender; zero fields take their defaults.
type Options struct {
	// APIKey is Resend's API key. Empty selects the dev outbox: emails are
	// written to OutboxDir instead of sent.
	APIKey string
	// BaseURL points the client at a Resend-compatible endpoint (a fake in
	// tests, a proxy in staging); empty means Resend's API.
	BaseURL   string
	From      string
	OutboxDir string
	// RatePerSecond is the sending rate shared through Redis by all workers.
	RatePerSecond int
	// MaxRateWait is how long a send may wait in the worker for its turn
	// under the shared rate before it hands the task back to the queue
	// (rate limited, not counted as a failure).
	MaxRateWait time.Duration
	// HTTPTimeout bounds one call to Resend.
	HTTPTimeout time.Duration
}

// Sender is the email:send handler: it renders a logical email and delivers
// it at most once, through Resend or, without an API key, to the dev outbox.
// Build it with New.
type Sender struct {
	opt      Options
	store    *postgres.Store
	renderer *Renderer
	client   *resend.Client        // nil in outbox mode
	rdb      redis.UniversalClient // the shared rate; nil: no limit
	log      *slog.Logger
}

// New builds a Sender. rdb carries the shared rate limiter; nil disables it
// (tests and the outbox do not need one). It fails when the templates do not
// parse or BaseURL is not a URL.
func New(store *postgres.Store, rdb redis.UniversalClient, log *slog.Logger, opt Options) (*Sender, error) {
	if opt.MaxRateWait == 0 {
		opt.MaxRateWait = DefaultMaxRateWait
	}
	if opt.HTTPTimeout == 0 {
		opt.HTTPTimeout = DefaultHTTPTimeout
	}
	if opt.RatePerSecond <= 0 {
		opt.RatePerSecond = DefaultRatePerSecond
	}
	if opt.OutboxDir == "" {
		opt.OutboxDir = DefaultOutboxDir
	}
	if opt.From == "" {
		opt.From = DefaultFrom
	}
	r, err := NewRenderer()
	if err != nil {
		return nil, err
	}
	s := &Sender{opt: opt, store: store, renderer: r, log: log}
	if opt.APIKey != "" {
		if s.client, err = newResendClient(opt.APIKey, opt.BaseURL, opt.HTTPTimeout); err != nil {
			return nil, err
		}
	}
	if rdb != nil {
		s.rdb = rdb
	}
	return s, nil
}

// Register adds the email:send and email:batch handlers to mux.
func (s *Sender) Register(mux *asynq.ServeMux) {
	mux.Handle(tasks.TypeEmailSend, s)
	mux.HandleFunc(tasks.TypeEmailBatch, s.ProcessBatch)
}

// Outbox reports whether the Sender writes to the dev outbox instead of
// sending (no RESEND_API_KEY).
func (s *Sender) Outbox() bool { return s.client == nil }

// Result is what became of one logical email.
type Result struct {
	DeliveryID int64
	Status     string // a postgres.Email* status
	MessageID  string // Resend's id, when sent
	OutboxPath string // the .html file, when written to the outbox
	// AlreadyDone is true when an earlier run had already sent, written or
	// suppressed this email, and this one did nothing.
	AlreadyDone bool
}

// ProcessTask handles email:send (Sender is an asynq.Handler). A malformed payload, a template that does
// not render and a request Resend refuses archive at once (SkipRetry); a rate
// limit retries later without counting a failure; anything else retries with
// backoff. On the last retry the delivery row is marked failed.
func (s *Sender) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.EmailSendPayload](t)
	if err != nil {
		return err
	}
	_, err = s.Deliver(ctx, p, lastAttempt(ctx))
	return err
}

// lastAttempt reports whether this run is the task's last: its failure will
// archive it.
func lastAttempt(ctx context.Context) bool {
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && retried >= maxRetry
}

// Deliver sends the logical email p once: a key already sent, in the outbox
// or suppressed returns AlreadyDone without a call. final says that a failure
// now will not be retried, so the row is marked failed. The CLI's send-test
// calls it directly; the worker calls it through ProcessTask.
func (s *Sender) Deliver(ctx context.Context, p tasks.EmailSendPayload, final bool) (Result, error) {
	d, err := s.store.StartEmailDelivery(ctx, p.Key, p.Template, p.To)
	if err != nil {
		return Result{}, err
	}
	res := Result{DeliveryID: d.ID, Status: d.Status, MessageID: d.ProviderMessageID.String}
	if !strings.EqualFold(d.ToEmail, p.To) || d.Template != p.Template {
		// A caller reused a key for another email. The row belongs to the
		// first one, so it is left alone.
		metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeFailed).Inc()
		// Addresses stay out of the error (it is logged): the delivery id
		// leads to them.
		return res, fmt.Errorf("email %s: idempotency key was first used by delivery %d for %s to another recipient or template, not this %s: %w",
			p.Key, d.ID, d.Template, p.Template, asynq.SkipRetry)
	}
	if d.Done() {
		res.AlreadyDone = true
		s.log.DebugContext(ctx, "email already handled", slog.String("idempotency_key", p.Key),
			slog.Int64("delivery_id", d.ID), slog.String("status", d.Status))
		return res, nil
	}

	if err := address.Check(p.To); err != nil {
		return res, s.fail(ctx, d, "", err.Error())
	}
	data, err := DecodeData(p.Template, p.Data)
	if err != nil {
		return res, s.fail(ctx, d, "", err.Error())
	}
	msg, err := s.renderer.Render(p.Template, data)
	if err != nil {
		return res, s.fail(ctx, d, "", err.Error())
	}

	sup, err := s.store.EmailSuppressionFor(ctx, p.To)
	switch {
	case err == nil:
		if err := s.store.MarkEmailSuppressed(ctx, d.ID, msg.Subject, "suppressed: "+sup.Reason); err != nil {
			return res, err
		}
		metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeSuppressed).Inc()
		s.log.InfoContext(ctx, "email suppressed",
			slog.String("idempotency_key", p.Key), slog.String("template", p.Template),
			slog.Int64("delivery_id", d.ID), slog.String("reason", sup.Reason))
		res.Status = postgres.EmailSuppressed
		return res, nil
	case !errors.Is(err, postgres.ErrNotFound):
		return res, err
	}

	if s.Outbox() {
		return s.writeOutbox(ctx, d, p, msg, res)
	}
	return s.send(ctx, d, p, msg, res, final)
}

// fail marks the row failed with reason and returns a SkipRetry error.
func (s *Sender) fail(ctx context.Context, d postgres.EmailDelivery, subject, reason string) error {
	if err := s.store.RecordEmailAttempt(ctx, d.ID, subject, reason, true); err != nil {
		return err
	}
	metrics.EmailsTotal.WithLabelValues(d.Template, OutcomeFailed).Inc()
	return fmt.Errorf("email %s: %s: %w", d.IdempotencyKey, reason, asynq.SkipRetry)
}

func (s *Sender) send(ctx context.Context, d postgres.EmailDelivery, p tasks.EmailSendPayload, msg Message, res Result, final bool) (Result, error) {
	req := &resend.SendEmailRequest{
		From:    s.opt.From,
		To:      []string{p.To},
		Subject: msg.Subject,
		Html:    msg.HTML,
		Text:    msg.Text,
		Tags:    []resend.Tag{{Name: "template", Value: p.Template}},
	}
	var resp apiResponse
	sent, err := s.client.Emails.SendWithOptions(withTurn(withResponse(ctx, &resp), s.waitTurn), req, &resend.SendEmailOptions{IdempotencyKey: p.Key})
	var turn turnError
	if errors.As(err, &turn) {
		// No turn of the shared rate: the request never left.
		err = turn.err
		if final {
			// Asynq archives a task on its last try whatever the error.
			if merr := s.store.MarkEmailFailed(ctx, d.ID, "retries exhausted: "+err.Error()); merr != nil {
				return res, merr
			}
			metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeFailed).Inc()
			return res, err
		}
		if !queue.IsFailure(err) {
			metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeRateLimited).Inc()
		}
		return res, err
	}
	if err == nil {
		if err := s.store.MarkEmailSent(ctx, d.ID, msg.Subject, sent.Id); err != nil {
			// Resend has the email; a retry with the same key gets the same
			// answer back without sending again.
			return res, err
		}
		metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeSent).Inc()
		s.log.InfoContext(ctx, "email sent",
			slog.String("idempotency_key", p.Key), slog.String("template", p.Template),
			slog.Int64("delivery_id", d.ID), slog.String("message_id", sent.Id))
		res.Status, res.MessageID = postgres.EmailSent, sent.Id
		return res, nil
	}

	class, delay := classify(resp, err)
	reason := describe(resp, err)
	permanent := class == classPermanent || final
	if rerr := s.store.RecordEmailAttempt(ctx, d.ID, msg.Subject, reason, permanent); rerr != nil {
		return res, rerr
	}
	cause := fmt.Errorf("email %s: %s", p.Key, reason)
	switch {
	case class == classPermanent:
		metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeFailed).Inc()
		return res, fmt.Errorf("%w: %w", cause, asynq.SkipRetry)
	case final:
		metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeFailed).Inc()
		return res, cause
	case class == classQuota:
		// The one failure logged here as well as returned: the worker's
		// error handler reports rate limits at info, and an exhausted quota
		// stops all email until someone acts.
		s.log.ErrorContext(ctx, "resend sending quota exhausted; emails wait until it resets",
			slog.String("idempotency_key", p.Key), slog.String("error", reason), slog.Duration("retry_in", delay))
		metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeRateLimited).Inc()
		return res, queue.RateLimited(delay, cause)
	case class == classRateLimited:
		metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeRateLimited).Inc()
		return res, queue.RateLimited(delay, cause)
	}
	metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeRetried).Inc()
	return res, cause
}

// waitTurn takes one request from the rate shared by all workers. Requests
// are spaced evenly, with no burst, at 95% of RatePerSecond: Resend counts
// requests in a one-second window, and a burst (or the jitter of requests on
// their way) would cross it and cost a 429. The next free slot is reserved
// in Redis (reserveSlot); when it is within MaxRateWait the send waits for it
// in place. When it is further, nothing is reserved and the task goes back
// to the queue, timed to return while half of MaxRateWait's slots are still
// ahead, so the senders keep every slot busy without holding worker slots
// for long (a rate-limited error: not a failure).
func (s *Sender) waitTurn(ctx context.Context) error {
	if s.rdb == nil {
		return nil
	}
	interval := time.Second * 105 / time.Duration(100*s.opt.RatePerSecond)
	wait, err := reserveSlot.Run(ctx, s.rdb, []string{rateLimitKey},
		interval.Microseconds(), s.opt.MaxRateWait.Microseconds()).Int64()
	if err != nil {
		return fmt.Errorf("email rate limiter: %w", err)
	}
	if wait < 0 {
		next := time.Duration(-wait) * time.Microsecond
		back := max(next-s.opt.MaxRateWait/2, interval) + time.Duration(rand.Int64N(int64(interval)))
		return queue.RateLimited(back, fmt.Errorf("email rate limit of %d per second reached", s.opt.RatePerSecond))
	}
	timer := time.NewTimer(time.Duration(wait) * time.Microsecond)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// reserveSlot reserves the next free request slot of the shared rate when
// it is at most ARGV[2] µs away, and returns the wait until it (>= 0); when
// it is further, it reserves nothing and returns minus the wait. KEYS[1]
// holds the next free slot, in µs of Redis's clock; ARGV[1] is the interval
// between requests in µs.
var reserveSlot = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nextSlot = tonumber(redis.call('GET', KEYS[1]) or '0')
if nextSlot < now then nextSlot = now end
local wait = nextSlot - now
if wait > tonumber(ARGV[2]) then return -wait end
local after = nextSlot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1000)
return wait
`)
