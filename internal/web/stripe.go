package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// MaxWebhookBody is the largest webhook body read; Stripe's are far smaller.
const MaxWebhookBody = 1 << 20

// Time limits for the two writes behind a 200: Stripe waits for the answer,
// and a stalled dependency must turn into a 503, not a hung request.
const (
	recordTimeout  = 3 * time.Second
	enqueueTimeout = 2 * time.Second
)

// stripeWebhook verifies, records and enqueues one Stripe event of a type the
// worker applies (tasks.StripeEventTypes); others are acknowledged and dropped, so
// Stripe stops retrying them.
func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	answer(w, r, s.Log, "stripe", "event_id", s.intake(r), time.Since(start))
}

// answer writes an intake result as the response, counts it in the webhook
// metrics under provider, and logs it as one line, with the delivery's id
// under idKey.
func answer(w http.ResponseWriter, r *http.Request, log *slog.Logger, provider, idKey string, res intakeResult, elapsed time.Duration) {
	if res.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, res.status, res.body)

	typ := res.eventType
	if typ == "" {
		typ = "unknown"
	}
	metrics.WebhooksReceived.WithLabelValues(provider, typ, res.outcome).Inc()
	metrics.WebhookDuration.WithLabelValues(provider).Observe(elapsed.Seconds())
	level := slog.LevelInfo
	switch res.outcome {
	case metrics.OutcomeIgnored:
		level = slog.LevelDebug
	case metrics.OutcomeRejected:
		level = slog.LevelWarn
	case metrics.OutcomeUnavailable:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String(idKey, res.eventID),
		slog.String("event_type", res.eventType),
		slog.String("outcome", res.outcome),
		slog.Int("status", res.status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	}
	if res.err != nil {
		attrs = append(attrs, slog.String("error", res.err.Error()))
	}
	log.LogAttrs(r.Context(), level, provider+" webhook", attrs...)
}

type intakeResult struct {
	status    int
	body      any
	outcome   string
	eventID   string
	eventType string
	err       error // for the log only
}

func rejected(status int, msg string) intakeResult {
	return intakeResult{status: status, body: map[string]string{"error": msg}, outcome: metrics.OutcomeRejected}
}

// readBody reads a webhook body of at most MaxWebhookBody bytes, or returns
// the 413 or 400 to answer.
func readBody(r *http.Request) ([]byte, *intakeResult) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		res := rejected(http.StatusBadRequest, "could not read body")
		if errors.As(err, &tooBig) {
			res = rejected(http.StatusRequestEntityTooLarge, "body larger than 1 MiB")
		}
		return nil, &res
	}
	return body, nil
}

func (s *Server) intake(r *http.Request) intakeResult {
	if r.Method != http.MethodPost {
		return rejected(http.StatusMethodNotAllowed, "method not allowed: use POST")
	}
	header := r.Header.Get("Stripe-Signature")
	if header == "" {
		return rejected(http.StatusBadRequest, "missing Stripe-Signature header")
	}
	body, refused := readBody(r)
	if refused != nil {
		return *refused
	}
	event, msg := s.verify(body, header)
	if msg != "" {
		return rejected(http.StatusBadRequest, msg)
	}
	res := intakeResult{eventID: event.ID, eventType: string(event.Type)}
	if !slices.Contains(tasks.StripeEventTypes, res.eventType) {
		res.status, res.outcome = http.StatusOK, metrics.OutcomeIgnored
		res.body = map[string]any{"received": true, "ignored": true}
		return res
	}

	ctx, cancel := context.WithTimeout(r.Context(), recordTimeout)
	defer cancel()
	dup, err := s.Store.InsertStripeEvent(ctx, postgres.StripeEvent{
		ID:         event.ID,
		Type:       res.eventType,
		APIVersion: event.APIVersion,
		Livemode:   event.Livemode,
		CreatedAt:  time.Unix(event.Created, 0),
		Payload:    body,
	})
	if errors.Is(err, postgres.ErrInvalidPayload) {
		res.status, res.outcome, res.err = http.StatusBadRequest, metrics.OutcomeRejected, err
		res.body = map[string]string{"error": "event body is JSON that cannot be stored"}
		return res
	}
	if err != nil {
		res.status, res.outcome, res.err = http.StatusServiceUnavailable, metrics.OutcomeUnavailable, err
		res.body = map[string]string{"error": "could not record the event; retry later"}
		return res
	}

	// Enqueue even for a duplicate: the first delivery may have been recorded
	// while Redis was down. The TaskID keeps a queued event from doubling.
	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: event.ID, Type: res.eventType})
	if err == nil {
		ectx, ecancel := context.WithTimeout(r.Context(), enqueueTimeout)
		_, _, err = queue.Enqueue(ectx, s.Queue, task)
		ecancel()
	}
	if err != nil {
		// The row is durable and the inbox sweep will re-drive it, but the
		// queue is down: a 503 makes Stripe retry, which re-enqueues sooner.
		res.status, res.outcome, res.err = http.StatusServiceUnavailable, metrics.OutcomeUnavailable, err
		res.body = map[string]string{"error": "could not queue the event; retry later"}
		return res
	}
	res.status, res.outcome = http.StatusOK, metrics.OutcomeAccepted
	if dup {
		res.outcome = metrics.OutcomeDuplicate
	}
	res.body = map[string]any{"received": true, "duplicate": dup}
	return res
}

// verify checks the signature against every configured secret and the
// timestamp against the tolerance in both directions (stripe-go accepts any
// future timestamp). It returns the event, or a short reason for a 400.
func (s *Server) verify(body []byte, header string) (stripe.Event, string) {
	ts, ok := signatureTime(header)
	if !ok {
		return stripe.Event{}, "malformed Stripe-Signature header"
	}
	now := s.now()
	if ts.After(now.Add(s.StripeTolerance)) {
		return stripe.Event{}, "signature timestamp is in the future beyond the tolerance"
	}
	if now.Sub(ts) > s.StripeTolerance {
		return stripe.Event{}, "signature timestamp is older than the tolerance"
	}
	for _, secret := range s.StripeSecrets {
		// The tolerance was checked above against our clock, so the library's
		// own check (against time.Now) is switched off.
		event, err := webhook.ConstructEventWithOptions(body, header, secret, webhook.ConstructEventOptions{
			IgnoreTolerance:          true,
			IgnoreAPIVersionMismatch: true,
		})
		switch {
		case err == nil:
			if event.ID == "" || event.Type == "" {
				return stripe.Event{}, "signed body is not a Stripe event: missing id or type"
			}
			return event, ""
		case errors.Is(err, webhook.ErrNoValidSignature):
			continue
		case errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNotSigned):
			return stripe.Event{}, "malformed Stripe-Signature header"
		default:
			// The signature matched but the body is not an event.
			return stripe.Event{}, "signed body is not a Stripe event: invalid JSON"
		}
	}
	return stripe.Event{}, "no valid signature for any configured secret"
}

// signatureTime reads t= from a Stripe-Signature header.
func signatureTime(header string) (time.Time, bool) {
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == "t" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return time.Time{}, false
			}
			return time.Unix(n, 0), true
		}
	}
	return time.Time{}, false
}
