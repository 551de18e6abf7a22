package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/address"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

func newEmailCmd(e *env) *cobra.Command {
	return group("email", "Preview and send test email, check the Resend setup, manage the suppression list, list deliveries",
		newEmailPreviewCmd(e), newEmailSendTestCmd(e), newEmailCheckCmd(e), newEmailSuppressCmd(e), newEmailUnsuppressCmd(e), newEmailDeliveriesCmd(e))
}

func newEmailPreviewCmd(e *env) *cobra.Command {
	var dataFile string
	var text bool
	c := &cobra.Command{
		Use:   "preview <template>",
		Short: "Render an email with realistic sample data to stdout (HTML, or the plain text with --text)",
		Long: "Render an email with realistic sample data to stdout: the HTML, or the plain text with --text;\n" +
			"the subject goes to stderr. --data overrides fields of the sample data.\n\n" +
			"Templates: " + strings.Join(email.Templates(), ", ") + ".",
		Args:              exactArgs(1, "email preview takes one template: "+strings.Join(email.Templates(), ", ")),
		ValidArgsFunction: completeArgs(email.Templates()),
		RunE: e.action(func(ctx context.Context, args []string) error {
			return runEmailPreview(ctx, e, args[0], dataFile, text)
		}),
	}
	c.Flags().StringVar(&dataFile, "data", "", "JSON file whose fields replace the sample data's (same names as the template context, e.g. user_name)")
	c.Flags().BoolVar(&text, "text", false, "print the plain-text version instead of the HTML")
	return c
}

func newEmailSendTestCmd(e *env) *cobra.Command {
	var to, tmpl string
	c := &cobra.Command{
		Use:   "send-test --to <address>",
		Short: "Send one email now through the configured path (Resend, or the outbox without RESEND_API_KEY) and print the delivery",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("email send-test takes no arguments; give the recipient with --to")
			}
			return nil
		},
		RunE: e.action(func(ctx context.Context, _ []string) error { return runEmailSendTest(ctx, e, to, tmpl) }),
	}
	c.Flags().StringVar(&to, "to", "", "recipient address (required)")
	c.Flags().StringVar(&tmpl, "template", email.TemplateWelcome, "template to send, with sample data")
	completeFlag(c, "template", email.Templates()...)
	return c
}

func newEmailUnsuppressCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "unsuppress <address>",
		Short: "Remove an address from the suppression list (bounces and complaints put it there)",
		Args:  addressArg("email unsuppress takes one email address"),
		RunE:  e.action(func(ctx context.Context, args []string) error { return runEmailUnsuppress(ctx, e, args[0], asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func newEmailSuppressCmd(e *env) *cobra.Command {
	var reason string
	var asJSON bool
	c := &cobra.Command{
		Use:   "suppress <address>",
		Short: "Add an address to the suppression list by hand",
		Args:  checkedAddressArg("email suppress takes one email address"),
		RunE: e.action(func(ctx context.Context, args []string) error {
			return runEmailSuppress(ctx, e, args[0], reason, asJSON)
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().StringVar(&reason, "reason", "added by hand", "why the address must not get email")
	return c
}

// deliveryStatuses are the values "email deliveries --status" takes.
var deliveryStatuses = []string{postgres.EmailQueued, postgres.EmailSent, postgres.EmailFailed, postgres.EmailSuppressed, postgres.EmailOutbox}

func newEmailDeliveriesCmd(e *env) *cobra.Command {
	var status string
	var limit int
	var asJSON bool
	c := &cobra.Command{
		Use:   "deliveries",
		Short: "List email deliveries, newest first: key, template, recipient, status, attempts, last error",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runEmailDeliveries(ctx, e, status, limit, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	c.Flags().StringVar(&status, "status", "", "only deliveries with this status: "+strings.Join(deliveryStatuses, ", "))
	c.Flags().IntVar(&limit, "limit", 50, "at most this many")
	completeFlag(c, "status", deliveryStatuses...)
	return c
}

// addressArg wants one argument that looks like an email address.
func addressArg(msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 || !strings.Contains(args[0], "@") {
			return usageError{msg}
		}
		return nil
	}
}

// checkedAddressArg wants one argument that address.Check accepts.
func checkedAddressArg(msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError{msg}
		}
		if err := address.Check(args[0]); err != nil {
			return usagef("%s: %v", msg, err)
		}
		return nil
	}
}

// templateArg resolves a template name as given on the command line; a path
// such as emails/welcome.html names the same template.
func templateArg(arg string) (string, error) {
	name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(arg, "emails/"), ".html"), ".txt")
	for _, t := range email.Templates() {
		if t == name {
			return name, nil
		}
	}
	return "", usagef("template %q is not one of %s", arg, strings.Join(email.Templates(), ", "))
}

func runEmailPreview(ctx context.Context, e *env, template, dataFile string, text bool) error {
	name, err := templateArg(template)
	if err != nil {
		return err
	}
	data, err := email.SampleData(name, e.cfg.SiteURL)
	if err != nil {
		return err
	}
	if dataFile != "" {
		raw, err := os.ReadFile(dataFile)
		if err != nil {
			return fmt.Errorf("--data: %w", err)
		}
		if data, err = email.OverlayData(name, data, raw); err != nil {
			return fmt.Errorf("--data %s: %w", dataFile, err)
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
	if text {
		fmt.Fprint(e.stdout, msg.Text)
	} else {
		fmt.Fprint(e.stdout, msg.HTML)
	}
	return nil
}

func runEmailSendTest(ctx context.Context, e *env, to, tmpl string) error {
	if to == "" {
		return usagef("--to is required")
	}
	// A CR/LF here once wrote a Bcc: line into the outbox file.
	if err := address.Check(to); err != nil {
		return usagef("--to: %v; give one bare address such as you@example.com", err)
	}
	name, err := templateArg(tmpl)
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

	key := fmt.Sprintf("send-test/%s/%s/%d", name, email.RecipientTag(to), time.Now().UnixNano())
	res, err := sender.Deliver(ctx, tasks.EmailSendPayload{Key: key, Template: name, To: to, Data: raw}, true)
	if err != nil {
		if !queue.IsFailure(err) {
			return fmt.Errorf("not sent, rate limited: %w (try again in a few seconds)", err)
		}
		return fmt.Errorf("not sent (delivery %d, key %s): %w", res.DeliveryID, key, err)
	}
	switch res.Status {
	case postgres.EmailSent:
		fmt.Fprintf(e.stdout, "sent %s to %s: delivery %d, resend id %s, key %s\n", name, to, res.DeliveryID, res.MessageID, key)
	case postgres.EmailOutbox:
		fmt.Fprintf(e.stdout, "no RESEND_API_KEY: wrote %s for %s to the outbox: %s (and .txt), delivery %d\n",
			name, to, res.OutboxPath, res.DeliveryID)
	case postgres.EmailSuppressed:
		return fmt.Errorf("not sent: %s is on the suppression list (delivery %d); lift it with: cleantrack email unsuppress %s", to, res.DeliveryID, to)
	default:
		fmt.Fprintf(e.stdout, "delivery %d: %s\n", res.DeliveryID, res.Status)
	}
	return nil
}

func runEmailUnsuppress(ctx context.Context, e *env, address string, asJSON bool) error {
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	removed, err := s.UnsuppressEmail(ctx, address)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, map[string]any{"email": address, "suppressed": false, "removed": removed})
	}
	if !removed {
		fmt.Fprintf(e.stdout, "%s was not on the suppression list; nothing to do\n", address)
		return nil
	}
	fmt.Fprintf(e.stdout, "removed %s from the suppression list; new emails to it will be sent\n", address)
	return nil
}

func runEmailSuppress(ctx context.Context, e *env, address, reason string, asJSON bool) error {
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	if err := s.SuppressEmail(ctx, address, reason); err != nil {
		return err
	}
	sup, err := s.EmailSuppressionFor(ctx, address)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, map[string]any{"email": sup.Email, "suppressed": true, "reason": sup.Reason})
	}
	fmt.Fprintf(e.stdout, "%s is suppressed (%s)\n", sup.Email, sup.Reason)
	return nil
}

func runEmailDeliveries(ctx context.Context, e *env, status string, limit int, asJSON bool) error {
	if status != "" && !slices.Contains(deliveryStatuses, status) {
		return usagef("--status %q is not one of %s", status, strings.Join(deliveryStatuses, ", "))
	}
	if limit < 1 {
		return usagef("--limit must be at least 1")
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	ds, err := s.ListEmailDeliveries(ctx, status, limit)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, deliveryViews(ds))
	}
	tw := e.table("ID", "CREATED", "KEY", "TEMPLATE", "TO", "STATUS", "ATTEMPTS", "LAST ERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, rfc3339(d.CreatedAt), d.IdempotencyKey,
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

// deliveryView is one delivery as "email deliveries --json" prints it.
type deliveryView struct {
	ID                int64      `json:"id"`
	CreatedAt         time.Time  `json:"created_at"`
	SentAt            *time.Time `json:"sent_at"`
	IdempotencyKey    string     `json:"idempotency_key"`
	Template          string     `json:"template"`
	To                string     `json:"to"`
	Subject           string     `json:"subject"`
	Status            string     `json:"status"`
	ProviderMessageID string     `json:"provider_message_id,omitempty"`
	Attempts          int        `json:"attempts"`
	LastError         string     `json:"last_error,omitempty"`
}

func deliveryViews(ds []postgres.EmailDelivery) []deliveryView {
	out := make([]deliveryView, 0, len(ds))
	for _, d := range ds {
		v := deliveryView{
			ID: d.ID, CreatedAt: d.CreatedAt.UTC(), IdempotencyKey: d.IdempotencyKey, Template: d.Template,
			To: d.ToEmail, Subject: d.Subject, Status: d.Status, ProviderMessageID: d.ProviderMessageID.String,
			Attempts: d.Attempts, LastError: d.LastError.String,
		}
		if d.SentAt.Valid {
			v.SentAt = optTime(d.SentAt.Time)
		}
		out = append(out, v)
	}
	return out
}
