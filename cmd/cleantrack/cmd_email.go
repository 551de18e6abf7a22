package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

func emailCommands() []command {
	templates := strings.Join(email.Templates(), ", ")
	return []command{
		{
			name:    "email preview",
			args:    "<template> [--data file.json] [--text]",
			summary: "render an email with realistic sample data to stdout (HTML, or the plain text with --text); --data overrides fields; templates: " + templates,
			run:     runEmailPreview,
		},
		{
			name:    "email send-test",
			args:    "--to <address> [--template t]",
			summary: "send one email now through the configured path (Resend, or the outbox without RESEND_API_KEY) and print the delivery",
			run:     runEmailSendTest,
		},
		{
			name:    "email unsuppress",
			args:    "<address>",
			summary: "remove an address from the suppression list (bounces and complaints put it there)",
			run:     runEmailUnsuppress,
		},
		{
			name:    "email suppress",
			args:    "<address> [--reason text]",
			summary: "add an address to the suppression list by hand",
			run:     runEmailSuppress,
		},
		{
			name:    "email deliveries",
			args:    "[--status queued|sent|failed|suppressed|outbox] [--limit N]",
			summary: "list email deliveries, newest first: key, template, recipient, status, attempts, last error",
			run:     runEmailDeliveries,
		},
	}
}

func templateArg(pos []string, cmd string) (string, error) {
	if len(pos) != 1 {
		return "", usagef("%s takes one template: %s", cmd, strings.Join(email.Templates(), ", "))
	}
	name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(pos[0], "emails/"), ".html"), ".txt")
	for _, t := range email.Templates() {
		if t == name {
			return name, nil
		}
	}
	return "", usagef("template %q is not one of %s", pos[0], strings.Join(email.Templates(), ", "))
}

func runEmailPreview(ctx context.Context, e *env, args []string) error {
	fs := flags("email preview", e)
	dataFile := fs.String("data", "", "JSON file whose fields replace the sample data's (same names as the template context, e.g. user_name)")
	text := fs.Bool("text", false, "print the plain-text version instead of the HTML")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, err := templateArg(pos, "email preview")
	if err != nil {
		return err
	}
	data, err := email.SampleData(name, e.cfg.SiteURL)
	if err != nil {
		return err
	}
	if *dataFile != "" {
		raw, err := os.ReadFile(*dataFile)
		if err != nil {
			return fmt.Errorf("--data: %w", err)
		}
		if data, err = email.OverlayData(name, data, raw); err != nil {
			return fmt.Errorf("--data %s: %w", *dataFile, err)
		}
	}
	r, err := email.NewRenderer()
	if err != nil {
		return err
	}
	msg, err := r.Render(name, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Subject: %s\n", msg.Subject)
	if *text {
		fmt.Fprint(e.stdout, msg.Text)
	} else {
		fmt.Fprint(e.stdout, msg.HTML)
	}
	return nil
}

func runEmailSendTest(ctx context.Context, e *env, args []string) error {
	fs := flags("email send-test", e)
	to := fs.String("to", "", "recipient address (required)")
	tmpl := fs.String("template", email.TemplateWelcome, "template to send, with sample data")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("email send-test takes no arguments; give the recipient with --to")
	}
	if *to == "" {
		return usagef("--to is required")
	}
	name, err := templateArg([]string{*tmpl}, "--template")
	if err != nil {
		return err
	}
	data, err := email.SampleData(name, e.cfg.SiteURL)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	store, err := e.Store(ctx)
	if err != nil {
		return err
	}
	opt, err := e.redisOpt()
	if err != nil {
		return err
	}
	// The shared rate limit applies to test sends too.
	rdb := queue.RedisClient(opt)
	defer rdb.Close()
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sender, err := email.New(store, rdb, log, email.Options{
		APIKey:        e.cfg.ResendAPIKey,
		BaseURL:       e.cfg.ResendBaseURL,
		From:          e.cfg.DefaultFromEmail,
		OutboxDir:     e.cfg.EmailOutboxDir,
		RatePerSecond: e.cfg.EmailRatePerSecond,
	})
	if err != nil {
		return err
	}

	key := fmt.Sprintf("send-test/%s/%s/%d", name, strings.ToLower(*to), time.Now().UnixNano())
	res, err := sender.Deliver(ctx, tasks.EmailSendPayload{Key: key, Template: name, To: *to, Data: raw}, true)
	if err != nil {
		if !queue.IsFailure(err) {
			return fmt.Errorf("not sent, rate limited: %w (try again in a few seconds)", err)
		}
		return fmt.Errorf("not sent (delivery %d, key %s): %w", res.DeliveryID, key, err)
	}
	switch res.Status {
	case postgres.EmailSent:
		fmt.Fprintf(e.stdout, "sent %s to %s: delivery %d, resend id %s, key %s\n", name, *to, res.DeliveryID, res.MessageID, key)
	case postgres.EmailOutbox:
		fmt.Fprintf(e.stdout, "no RESEND_API_KEY: wrote %s for %s to the outbox: %s (and .txt), delivery %d\n",
			name, *to, res.OutboxPath, res.DeliveryID)
	case postgres.EmailSuppressed:
		return fmt.Errorf("not sent: %s is on the suppression list (delivery %d); lift it with: cleantrack email unsuppress %s", *to, res.DeliveryID, *to)
	default:
		fmt.Fprintf(e.stdout, "delivery %d: %s\n", res.DeliveryID, res.Status)
	}
	return nil
}

func runEmailUnsuppress(ctx context.Context, e *env, args []string) error {
	pos, err := parse(flags("email unsuppress", e), args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !strings.Contains(pos[0], "@") {
		return usagef("email unsuppress takes one email address")
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	removed, err := s.UnsuppressEmail(ctx, pos[0])
	if err != nil {
		return err
	}
	if !removed {
		fmt.Fprintf(e.stdout, "%s was not on the suppression list; nothing to do\n", pos[0])
		return nil
	}
	fmt.Fprintf(e.stdout, "removed %s from the suppression list; new emails to it will be sent\n", pos[0])
	return nil
}

func runEmailSuppress(ctx context.Context, e *env, args []string) error {
	fs := flags("email suppress", e)
	reason := fs.String("reason", "added by hand", "why the address must not get email")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !strings.Contains(pos[0], "@") {
		return usagef("email suppress takes one email address")
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	if err := s.SuppressEmail(ctx, pos[0], *reason); err != nil {
		return err
	}
	sup, err := s.EmailSuppressionFor(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s is suppressed (%s)\n", sup.Email, sup.Reason)
	return nil
}

func runEmailDeliveries(ctx context.Context, e *env, args []string) error {
	fs := flags("email deliveries", e)
	status := fs.String("status", "", "only deliveries with this status")
	limit := fs.Int("limit", 50, "at most this many")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("email deliveries takes no arguments")
	}
	switch *status {
	case "", postgres.EmailQueued, postgres.EmailSent, postgres.EmailFailed, postgres.EmailSuppressed, postgres.EmailOutbox:
	default:
		return usagef("--status %q is not one of queued, sent, failed, suppressed, outbox", *status)
	}
	if *limit < 1 {
		return usagef("--limit must be at least 1")
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	ds, err := s.ListEmailDeliveries(ctx, *status, *limit)
	if err != nil {
		return err
	}
	tw := e.table("ID", "CREATED", "KEY", "TEMPLATE", "TO", "STATUS", "ATTEMPTS", "LAST ERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.CreatedAt.UTC().Format(time.RFC3339), d.IdempotencyKey,
			d.Template, d.ToEmail, d.Status, d.Attempts, emailCell(d.LastError.String, 80))
	}
	tw.Flush()
	if len(ds) == 0 {
		fmt.Fprintln(e.stdout, "no deliveries")
	}
	return nil
}

// emailCell shortens s to n runes on one line, for a table cell.
func emailCell(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
