package web

import (
	"context"
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

// suppressions returns the addresses the event puts on the suppression list:
// every recipient of a permanent bounce or a complaint, nothing otherwise.
func (e resendEvent) suppressions() []postgres.EmailSuppression {
	var reason string
	switch e.Type {
	case resend.EventEmailBounced:
		if e.Data.Bounce == nil || !strings.EqualFold(e.Data.Bounce.Type, "Permanent") {
			return nil
		}
		reason = "bounce: Permanent"
		if st := e.Data.Bounce.SubType; st != "" {
			reason += "/" + st
		}
		if m := e.Data.Bounce.Message; m != "" {
			reason += ": " + m
		}
	case resend.EventEmailComplained:
		reason = "complaint"
	default:
		return nil
	}
	if e.Data.EmailID != "" {
		reason += " (resend email " + e.Data.EmailID + ")"
	}
	var out []postgres.EmailSuppression
	for _, to := range e.Data.To {
		if to = strings.TrimSpace(to); to != "" {
			out = append(out, postgres.EmailSuppression{Email: to, Reason: reason})
		}
	}
	return out
}

// resendWebhook serves POST /webhooks/resend/.
type resendWebhook struct {
	store  *postgres.Store
	secret string
	verify resend.WebhooksSvc
	log    *slog.Logger
}

// NewResendWebhook returns the handler of POST /webhooks/resend/: it verifies
// Resend's Svix signature (svix-id, svix-timestamp, svix-signature headers)
// with secret (RESEND_WEBHOOK_SECRET, "whsec_..."; timestamps older or newer
// than five minutes are refused), records each email.bounced and
// email.complained delivery once by svix-id in resend_webhook_events, and in
// the same transaction adds the recipients of permanent bounces and
// complaints to email_suppressions. Other event types are acknowledged and
// dropped. Answers: 200 {"received":true,"duplicate":bool,"suppressed":n};
// 400 for a missing or bad signature or a body that is not an event; 405;
// 413 over 1 MiB; 503 when no secret is configured or PostgreSQL fails (Svix
// retries).
func NewResendWebhook(store *postgres.Store, secret string, log *slog.Logger) http.Handler {
	return &resendWebhook{store: store, secret: secret, verify: resend.NewClient("").Webhooks, log: log}
}

func (h *resendWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	answer(w, r, h.log, "resend", "svix_id", h.intake(r), time.Since(start))
}

func (h *resendWebhook) intake(r *http.Request) intakeResult {
	if r.Method != http.MethodPost {
		return rejected(http.StatusMethodNotAllowed, "method not allowed: use POST")
	}
	if h.secret == "" {
		return intakeResult{status: http.StatusServiceUnavailable, outcome: metrics.OutcomeUnavailable,
			body: map[string]string{"error": "RESEND_WEBHOOK_SECRET is not configured"},
			err:  errors.New("RESEND_WEBHOOK_SECRET is not configured; cannot verify resend webhooks")}
	}
	headers := resend.WebhookHeaders{
		Id:        r.Header.Get("svix-id"),
		Timestamp: r.Header.Get("svix-timestamp"),
		Signature: r.Header.Get("svix-signature"),
	}
	if headers.Id == "" || headers.Timestamp == "" || headers.Signature == "" {
		return rejected(http.StatusBadRequest, "missing svix-id, svix-timestamp or svix-signature header")
	}
	body, refused := readBody(r)
	if refused != nil {
		return *refused
	}
	if err := h.verify.Verify(&resend.VerifyWebhookOptions{Payload: string(body), Headers: headers, WebhookSecret: h.secret}); err != nil {
		res := rejected(http.StatusBadRequest, "invalid signature")
		res.eventID, res.err = headers.Id, fmt.Errorf("verify: %w", err)
		return res
	}
	var ev resendEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		res := rejected(http.StatusBadRequest, "signed body is not a Resend event: invalid JSON or no type")
		res.eventID = headers.Id
		return res
	}
	res := intakeResult{eventID: headers.Id, eventType: ev.Type}
	if ev.Type != resend.EventEmailBounced && ev.Type != resend.EventEmailComplained {
		res.status, res.outcome = http.StatusOK, metrics.OutcomeIgnored
		res.body = map[string]any{"received": true, "ignored": true}
		return res
	}

	sups := ev.suppressions()
	ctx, cancel := context.WithTimeout(r.Context(), recordTimeout)
	defer cancel()
	dup, err := h.store.RecordResendWebhook(ctx, postgres.ResendWebhookEvent{SvixID: headers.Id, Type: ev.Type, Payload: body}, sups)
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
	res.status, res.outcome = http.StatusOK, metrics.OutcomeAccepted
	if dup {
		res.outcome = metrics.OutcomeDuplicate
		sups = nil
	}
	res.body = map[string]any{"received": true, "duplicate": dup, "suppressed": len(sups)}
	return res
}
