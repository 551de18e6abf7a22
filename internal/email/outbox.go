package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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
// time it was written, its idempotency key made safe for a file name and cut
// to 100 characters, and the first 16 hex digits of the whole key's SHA-256,
// so two keys that share their first 100 characters never share a name.
func outboxName(now time.Time, key string) string {
	safe := unsafeFileChars.ReplaceAllString(key, "_")
	if len(safe) > 100 {
		safe = safe[:100]
	}
	h := sha256.Sum256([]byte(key))
	return now.UTC().Format("20060102T150405Z") + "_" + safe + "_" + hex.EncodeToString(h[:8])
}

// writeOutboxFiles writes msg as <name>.html and <name>.txt (headers, then
// the plain text) in the outbox directory and returns <dir>/<name>. A file of
// that name is never overwritten: a second email under the same name in the
// same second gets a "-2", "-3", ... suffix.
func (s *Sender) writeOutboxFiles(p tasks.EmailSendPayload, msg Message) (string, error) {
	if err := os.MkdirAll(s.opt.OutboxDir, 0o755); err != nil {
		return "", fmt.Errorf("email outbox: %w", err)
	}
	name := filepath.Join(s.opt.OutboxDir, outboxName(time.Now(), p.Key))
	head := fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nIdempotency-Key: %s\nTemplate: %s\n\n",
		s.opt.From, p.To, msg.Subject, p.Key, p.Template)
	base := name
	for n := 2; ; n++ {
		f, err := os.OpenFile(base+".txt", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && n < 1000 {
			base = fmt.Sprintf("%s-%d", name, n)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("email outbox: %w", err)
		}
		_, err = f.WriteString(head + msg.Text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("email outbox: %w", err)
		}
		break
	}
	if err := os.WriteFile(base+".html", []byte(msg.HTML), 0o644); err != nil {
		return "", fmt.Errorf("email outbox: %w", err)
	}
	return base, nil
}

// writeOutbox writes the email to the outbox and marks the row outbox.
func (s *Sender) writeOutbox(ctx context.Context, d postgres.EmailDelivery, p tasks.EmailSendPayload, msg Message, res Result) (Result, error) {
	base, err := s.writeOutboxFiles(p, msg)
	if err != nil {
		return res, err
	}
	if err := s.store.MarkEmailOutbox(ctx, d.ID, msg.Subject); err != nil {
		return res, err
	}
	metrics.EmailsTotal.WithLabelValues(p.Template, OutcomeOutbox).Inc()
	s.log.InfoContext(ctx, "email written to outbox (no RESEND_API_KEY)",
		slog.Int64("delivery_id", d.ID), slog.String("template", p.Template), slog.String("path", base+".html"))
	res.Status, res.OutboxPath = postgres.EmailOutbox, base+".html"
	return res, nil
}
