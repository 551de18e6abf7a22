package web

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"

	"github.com/cleantrack/jobs/internal/inbox"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/tasks"
)

// MaxWebhookBody is the largest webhook body read; Stripe's are far smaller.
const MaxWebhookBody = 1 << 20

// recordTimeout bounds a webhook's write to PostgreSQL: the webhook's
// provider waits for the answer, and a stalled database must turn into a
// 503, not a hung request.
const recordTimeout = inbox.DefaultRecordTimeout

// stripeWebhook verifies, records and enqueues one Stripe event, snapshot or
// thin, through the shared intake (internal/inbox), for the types the worker
// applies (tasks.StripeEventTypes and tasks.StripeThinEventTypes); others
// are acknowledged and dropped, so Stripe stops retrying them.
func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	answer(w, r, s.Log, "stripe", "event_id", s.stripeIntake(r), time.Since(start))
}

// webhookTypes are the event types each provider's intake handles: the only
// values the "type" label of cleantrack_webhooks_received_total takes,
// besides "other" (a verified type not handled) and "unknown" (no type read).
var webhookTypes = map[string][]string{
	"stripe": slices.Concat(tasks.StripeEventTypes, tasks.StripeThinEventTypes),
	"resend": {resend.EventEmailBounced, resend.EventEmailComplained},
}

// typeLabel bounds the label values: a sender choosing the type cannot
// create series.
func typeLabel(provider, typ string) string {
	switch {
	case typ == "":
		return "unknown"
	case slices.Contains(webhookTypes[provider], typ):
		return typ
	}
	return "other"
}

// maxLogValue bounds a value from the request in a log line.
const maxLogValue = 200

// clipLog shortens a value from the request for the log, saying how long it
// was, so a hostile id or type cannot fill the logs.
func clipLog(s string) string { return shorten(s, maxLogValue) }

// shorten cuts a value from a request to at most max bytes (at a rune
// boundary) for a log line or a stored reason, saying how long it was.
func shorten(v string, max int) string {
	if len(v) <= max {
		return v
	}
	return fmt.Sprintf("%s… (%d bytes)", strings.ToValidUTF8(v[:max], ""), len(v))
}

// answer writes an intake result as the response, counts it in the webhook
// metrics under provider, and logs it as one line, with the delivery's id
// under idKey and, for a refusal, the reason the caller was given.
func answer(w http.ResponseWriter, r *http.Request, log *slog.Logger, provider, idKey string, res intakeResult, elapsed time.Duration) {
	if res.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, res.status, res.body)

	metrics.WebhooksReceived.WithLabelValues(provider, typeLabel(provider, res.eventType), res.outcome).Inc()
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
		slog.String(idKey, clipLog(res.eventID)),
		slog.String("event_type", clipLog(res.eventType)),
		slog.String("outcome", res.outcome),
		slog.Int("status", res.status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	}
	if m, ok := res.body.(map[string]string); ok && m["error"] != "" {
		attrs = append(attrs, slog.String("reason", clipLog(m["error"])))
	}
	if res.err != nil {
		attrs = append(attrs, slog.String("error", clipLog(res.err.Error())))
	}
	log.LogAttrs(r.Context(), level, provider+" webhook", attrs...)
}

type intakeResult struct {
	status    int
	body      any // map[string]string{"error": reason} for a refusal
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

func (s *Server) stripeIntake(r *http.Request) intakeResult {
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
	in := &inbox.Intake{
		Store:    s.Store,
		Queue:    s.Queue,
		Verifier: inbox.Verifier{Secrets: s.StripeSecrets, Tolerance: s.StripeTolerance, Now: s.Now},
	}
	got := in.Receive(r.Context(), header, body)
	res := intakeResult{eventID: got.Event.ID, eventType: got.Event.Type, err: got.Err}
	switch got.Outcome {
	case inbox.Accepted, inbox.Duplicate:
		res.status, res.outcome = http.StatusOK, metrics.OutcomeAccepted
		if got.Outcome == inbox.Duplicate {
			res.outcome = metrics.OutcomeDuplicate
		}
		res.body = map[string]any{"received": true, "duplicate": got.Outcome == inbox.Duplicate}
	case inbox.Ignored:
		res.status, res.outcome = http.StatusOK, metrics.OutcomeIgnored
		res.body = map[string]any{"received": true, "ignored": true}
	case inbox.Unavailable:
		res.status, res.outcome = http.StatusServiceUnavailable, metrics.OutcomeUnavailable
		res.body = map[string]string{"error": got.Reason}
	default:
		res.status, res.outcome = http.StatusBadRequest, metrics.OutcomeRejected
		res.body = map[string]string{"error": got.Reason}
	}
	return res
}
