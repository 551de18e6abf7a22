package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
)

// maxSvixIDLength bounds the svix-id header. Svix's message ids are "msg_"
// and 27 characters; a longer one is not Svix's, and the id is a primary key
// (an index entry cannot hold hundreds of kilobytes).
const maxSvixIDLength = 64

// resendEvent is the part of a Resend webhook body the suppression list needs.
type resendEvent struct {
	Type string `json:"type"`
	Data struct {
		EmailID string   `json:"email_id"`
		To      []string `json:"to"`
		Bounce  *struct {
			Type    string `json:"type"`    // Permanent, Transient, Undetermined
			SubType string `json:"subType"` // General, Suppressed, MailboxFull ...
			Message string `json:"message"`
		} `json:"bounce"`
	} `json:"data"`
}

// record returns what the store records for the event: every recipient,
// and for a permanent bounce or a complaint the reason to suppress them with.
func (e resendEvent) record(svixID string, body []byte) postgres.ResendWebhookEvent {
	rec := postgres.ResendWebhookEvent{
		SvixID: svixID, Type: e.Type, Payload: body,
		EmailID: e.Data.EmailID, Recipients: e.Data.To,
	}
	switch e.Type {
	case resend.EventEmailBounced:
		b := e.Data.Bounce
		if b == nil || !strings.EqualFold(b.Type, "Permanent") {
			return rec
		}
		rec.Reason = "bounce: Permanent"
		if b.SubType != "" {
			rec.Reason += "/" + shorten(b.SubType, 40)
		}
		if b.Message != "" {
			rec.Reason += ": " + shorten(b.Message, 300)
		}
	case resend.EventEmailComplained:
		rec.Reason = "complaint"
	default:
		return rec
	}
	rec.Suppress = true
	if e.Data.EmailID != "" {
		rec.Reason += " (resend email " + shorten(e.Data.EmailID, 64) + ")"
	}
	return rec
}

// resendWebhook serves POST /webhooks/resend/.
type resendWebhook struct {
	store  *postgres.Store
	secret string
	// secretErr says why secret cannot verify anything (empty, or not
	// "whsec_" and base64): every delivery is answered 503 until it is fixed.
	secretErr error
	verify    resend.WebhooksSvc
	log       *slog.Logger
}

// NewResendWebhook returns the handler of POST /webhooks/resend/. It verifies
// Resend's Svix signature (svix-id, svix-timestamp, svix-signature headers)
// with secret (RESEND_WEBHOOK_SECRET, "whsec_..."; timestamps older or newer
// than five minutes are refused) and records each email.bounced and
// email.complained delivery once by svix-id, with every recipient it names,
// in one statement (postgres.Store.RecordResendWebhook). Only the addresses
// CleanTrack sent that email to (found by Resend's email id) go on the
// suppression list, for a permanent bounce or a complaint. Other event types
// are acknowledged and dropped.
//
// Answers: 200 {"received":true,"duplicate":bool,"suppressed":n,
// "recipients":n[,"note":"..."]}. A request that can never succeed gets a 4xx
// and, when Svix would retry it, the header "webhook-delivery: abort-message"
// that stops Svix's retries: a missing header, a svix-id longer than 64
// characters, a svix-timestamp that is not a number, a signed body that is
// not an event or that PostgreSQL cannot store (400), a body over 1 MiB (413),
// not a POST (405). A bad signature or a timestamp out of tolerance is 400
// without it: a wrong secret or clock on this side would otherwise lose real
// deliveries. 503 (Svix retries) when the secret is missing or undecodable or
// PostgreSQL fails.
func NewResendWebhook(store *postgres.Store, secret string, log *slog.Logger) http.Handler {
	h := &resendWebhook{store: store, secret: secret, verify: resend.NewClient("").Webhooks, log: log}
	if secret == "" {
		h.secretErr = errors.New("RESEND_WEBHOOK_SECRET is not configured")
	} else if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); err != nil {
		h.secretErr = errors.New("RESEND_WEBHOOK_SECRET is not whsec_ followed by base64")
	}
	return h
}

func (h *resendWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	res, permanent := h.intake(r)
	if permanent {
		w.Header().Set("webhook-delivery", "abort-message")
	}
	// answer cuts values from the request short in the log and keeps
	// metric labels to known values.
	answer(w, r, h.log, "resend", "svix_id", res, time.Since(start))
}

// intake handles one delivery; permanent is true when the answer is a 4xx
// that no retry of the same message can change.
func (h *resendWebhook) intake(r *http.Request) (res intakeResult, permanent bool) {
	if r.Method != http.MethodPost {
		return rejected(http.StatusMethodNotAllowed, "method not allowed: use POST"), false
	}
	if h.secretErr != nil {
		return intakeResult{status: http.StatusServiceUnavailable, outcome: metrics.OutcomeUnavailable,
			body: map[string]string{"error": h.secretErr.Error()},
			err:  fmt.Errorf("%w; cannot verify resend webhooks", h.secretErr)}, false
	}
	headers := resend.WebhookHeaders{
		Id:        r.Header.Get("svix-id"),
		Timestamp: r.Header.Get("svix-timestamp"),
		Signature: r.Header.Get("svix-signature"),
	}
	if headers.Id == "" || headers.Timestamp == "" || headers.Signature == "" {
		return rejected(http.StatusBadRequest, "missing svix-id, svix-timestamp or svix-signature header"), true
	}
	if len(headers.Id) > maxSvixIDLength {
		res := rejected(http.StatusBadRequest, fmt.Sprintf("svix-id is longer than %d characters, which no Svix message id is", maxSvixIDLength))
		res.eventID = headers.Id
		return res, true
	}
	if !isUnixTime(headers.Timestamp) {
		res := rejected(http.StatusBadRequest, "svix-timestamp is not a Unix time in seconds")
		res.eventID = headers.Id
		return res, true
	}
	body, refused := readBody(r)
	if refused != nil {
		return *refused, refused.status == http.StatusRequestEntityTooLarge
	}
	if err := h.verify.Verify(&resend.VerifyWebhookOptions{Payload: string(body), Headers: headers, WebhookSecret: h.secret}); err != nil {
		res := rejected(http.StatusBadRequest, "invalid signature")
		res.eventID, res.err = headers.Id, fmt.Errorf("verify: %w", err)
		return res, false
	}
	var ev resendEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		res := rejected(http.StatusBadRequest, "signed body is not a Resend event: invalid JSON or no type")
		res.eventID = headers.Id
		return res, true
	}
	res = intakeResult{eventID: headers.Id, eventType: ev.Type}
	if ev.Type != resend.EventEmailBounced && ev.Type != resend.EventEmailComplained {
		res.status, res.outcome = http.StatusOK, metrics.OutcomeIgnored
		res.body = map[string]any{"received": true, "ignored": true}
		return res, false
	}

	ctx, cancel := context.WithTimeout(r.Context(), recordTimeout)
	defer cancel()
	rec, err := h.store.RecordResendWebhook(ctx, ev.record(headers.Id, body))
	if errors.Is(err, postgres.ErrInvalidPayload) {
		res.status, res.outcome, res.err = http.StatusBadRequest, metrics.OutcomeRejected, err
		res.body = map[string]string{"error": "event body is JSON that cannot be stored"}
		return res, true
	}
	if err != nil {
		res.status, res.outcome, res.err = http.StatusServiceUnavailable, metrics.OutcomeUnavailable, err
		res.body = map[string]string{"error": "could not record the event; retry later"}
		return res, false
	}
	res.status, res.outcome = http.StatusOK, metrics.OutcomeAccepted
	if rec.Duplicate {
		res.outcome = metrics.OutcomeDuplicate
	}
	out := map[string]any{"received": true, "duplicate": rec.Duplicate, "suppressed": rec.Suppressed, "recipients": rec.Recipients}
	if rec.Note != "" {
		out["note"] = rec.Note
	}
	res.body = out
	return res, false
}

// isUnixTime reports whether v is a plausible Unix time in seconds: digits
// only, at most 12 of them.
func isUnixTime(v string) bool {
	if v == "" || len(v) > 12 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
