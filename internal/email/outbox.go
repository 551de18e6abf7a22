package email

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/tasks"
)

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._@-]+`)

// outboxName is the file name (without extension) of an outbox email: the
// time it was written, then its idempotency key made safe for a file name.
func outboxName(now time.Time, key string) string {
	safe := unsafeFileChars.ReplaceAllString(key, "_")
	if len(safe) > 150 {
		safe = safe[:150]
	}
	return now.UTC().Format("20060102T150405Z") + "_" + safe
}

// writeOutbox writes msg as <name>.html and <name>.txt (headers, then the
// plain text) in the outbox directory and marks the row outbox.
func (s *Sender) writeOutbox(ctx context.Context, d postgres.EmailDelivery, p tasks.EmailSendPayload, msg Message, res Result) (Result, error) {
	if err := os.MkdirAll(s.opt.OutboxDir, 0o755); err != nil {
		return res, fmt.Errorf("email outbox: %w", err)
	}
	base := filepath.Join(s.opt.OutboxDir, outboxName(time.Now(), p.Key))
	head := fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nIdempotency-Key: %s\nTemplate: %s\n\n",
		s.opt.From, p.To, msg.Subject, p.Key, p.Template)
	if err := os.WriteFile(base+".txt", []byte(head+msg.Text), 0o644); err != nil {
		return res, fmt.Errorf("email outbox: %w", err)
	}
	if err := os.WriteFile(base+".html", []byte(msg.HTML), 0o644); err != nil {
		return res, fmt.Errorf("email outbox: %w", err)
	}
	if err := s.store.MarkEmailOutbox(ctx, d.ID, msg.Subject); err != nil {
		return res, err
	}
	metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeOutbox).Inc()
	s.log.InfoContext(ctx, "email written to outbox (no RESEND_API_KEY)",
		slog.String("idempotency_key", p.Key), slog.String("template", p.Template),
		slog.String("to", p.To), slog.String("path", base+".html"))
	res.Status, res.OutboxPath = postgres.EmailOutbox, base+".html"
	return res, nil
}
