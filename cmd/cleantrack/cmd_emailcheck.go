package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/email"
)

func newEmailCheckCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "check",
		Short: "Check RESEND_API_KEY, the domain of DEFAULT_FROM_EMAIL and the Resend webhook for bounces and complaints",
		Long: "Check, with RESEND_API_KEY (at RESEND_BASE_URL when set), that Resend takes the key, that the domain of\n" +
			"DEFAULT_FROM_EMAIL is verified (listing the DNS records that are not), and that a webhook sends\n" +
			"email.bounced and email.complained to /webhooks/resend/. It only reads. Exits 1, with the step to take,\n" +
			"when something is wrong, or when there is no key (emails then go to the outbox).",
		Args: noArgs,
		RunE: e.action(func(ctx context.Context, _ []string) error { return runEmailCheck(ctx, e, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print what was checked and what to do as JSON")
	return c
}

// emailCheckView is "email check --json": what was found and the steps to
// take (empty when email is set up).
type emailCheckView struct {
	KeySet         bool               `json:"key_set"`
	SendingOnly    bool               `json:"sending_only,omitempty"`
	Domain         string             `json:"domain,omitempty"`
	DomainStatus   string             `json:"domain_status,omitempty"`
	FailingRecords []emailRecordView  `json:"failing_records,omitempty"`
	Webhooks       []emailWebhookView `json:"webhooks,omitempty"`
	WebhookReady   bool               `json:"webhook_ready"`
	ToDo           []string           `json:"to_do"`
}

type emailRecordView struct {
	Record string `json:"record"`
	Type   string `json:"type"`
	Name   string `json:"name"`
	Value  string `json:"value"`
	Status string `json:"status"`
}

type emailWebhookView struct {
	Endpoint       string   `json:"endpoint"`
	Status         string   `json:"status"`
	CleanTrackPath bool     `json:"cleantrack_path"`
	MissingEvents  []string `json:"missing_events"`
}

// printEmailCheck prints v as JSON and returns err (the exit status stays
// what the human output would give).
func printEmailCheck(e *env, v emailCheckView, err error) error {
	if v.ToDo == nil {
		v.ToDo = []string{}
	}
	if perr := printJSON(e.stdout, v); perr != nil {
		return perr
	}
	return err
}

// runEmailCheck is cleantrack email check: what stripe check is for Stripe.
func runEmailCheck(ctx context.Context, e *env, asJSON bool) error {
	out := e.stdout
	if asJSON {
		out = io.Discard
	}
	if e.cfg.ResendAPIKey == "" {
		err := errors.New("emails go to the outbox: to send them through Resend, create an API key in Resend (API Keys) and set RESEND_API_KEY for the worker")
		if asJSON {
			return printEmailCheck(e, emailCheckView{ToDo: []string{"set RESEND_API_KEY for the worker"}}, err)
		}
		fmt.Fprintf(out, "RESEND_API_KEY is not set: no email is sent; the worker writes each one to the outbox (%s)\n", e.cfg.EmailOutboxDir)
		return err
	}
	where := "Resend's API"
	if e.cfg.ResendBaseURL != "" {
		where = e.cfg.ResendBaseURL
	}
	c, err := email.CheckAccount(ctx, e.cfg.ResendAPIKey, e.cfg.ResendBaseURL, e.cfg.DefaultFromEmail)
	if errors.Is(err, email.ErrKeyRefused) {
		return fmt.Errorf("%w (at %s): create a key in Resend (API Keys) and set RESEND_API_KEY", err, where)
	}
	if err != nil {
		return err
	}
	if c.Restricted {
		fmt.Fprintf(out, "RESEND_API_KEY works at %s, but only for sending: the domains and webhooks cannot be read with it\n", where)
		err := errors.New("run cleantrack email check with a full-access key (RESEND_API_KEY=re_... cleantrack email check) to check the domain and the webhook")
		if asJSON {
			return printEmailCheck(e, emailCheckView{KeySet: true, SendingOnly: true, ToDo: []string{err.Error()}}, err)
		}
		return err
	}
	fmt.Fprintf(out, "RESEND_API_KEY works at %s\n\n", where)

	var problems []string
	switch {
	case c.Domain.Id == "":
		fmt.Fprintf(out, "domain %s (of DEFAULT_FROM_EMAIL): not in this Resend account\n\n", c.FromDomain)
		problems = append(problems, fmt.Sprintf("add the domain %s in Resend (Domains) and its DNS records, or set DEFAULT_FROM_EMAIL to an address of a verified domain", c.FromDomain))
	case c.DomainVerified():
		fmt.Fprintf(out, "domain %s (of DEFAULT_FROM_EMAIL): verified\n\n", c.FromDomain)
	default:
		fmt.Fprintf(out, "domain %s (of DEFAULT_FROM_EMAIL): %s; Resend answers every send from it with 403\n", c.FromDomain, c.Domain.Status)
		if len(c.FailingRecords) > 0 {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RECORD\tTYPE\tNAME\tVALUE\tSTATUS")
			for _, r := range c.FailingRecords {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Record, r.Type, r.Name, r.Value, r.Status)
			}
			tw.Flush()
		}
		fmt.Fprintln(out)
		problems = append(problems, fmt.Sprintf("add the DNS records above for %s at your DNS provider, then press Verify in Resend (Domains)", c.FromDomain))
	}

	if len(c.Webhooks) > 0 {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WEBHOOK\tSTATUS\tCLEANTRACK PATH\tMISSING EVENTS")
		for _, w := range c.Webhooks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", w.Endpoint, w.Status, yesNo(w.Ours), orNone(w.Missing))
		}
		tw.Flush()
		fmt.Fprintln(out)
	}
	if c.WebhookReady() {
		fmt.Fprintf(out, "a webhook sends %s to /webhooks/resend/: bounces and complaints reach the suppression list\n", strings.Join(email.WebhookEvents, " and "))
	} else {
		fmt.Fprintf(out, "no enabled webhook sends %s to /webhooks/resend/: bounced and complaining addresses are not suppressed\n", strings.Join(email.WebhookEvents, " and "))
		problems = append(problems, "add a webhook in Resend (Webhooks) with the endpoint https://<your host>/webhooks/resend/ and the events "+
			strings.Join(email.WebhookEvents, " and ")+", and put its signing secret in RESEND_WEBHOOK_SECRET for the web process")
	}
	if asJSON {
		v := emailCheckView{KeySet: true, Domain: c.FromDomain, DomainStatus: c.Domain.Status, WebhookReady: c.WebhookReady(), ToDo: problems}
		if c.Domain.Id == "" {
			v.DomainStatus = "not in this account"
		}
		for _, r := range c.FailingRecords {
			v.FailingRecords = append(v.FailingRecords, emailRecordView{r.Record, r.Type, r.Name, r.Value, r.Status})
		}
		for _, w := range c.Webhooks {
			v.Webhooks = append(v.Webhooks, emailWebhookView{w.Endpoint, w.Status, w.Ours, w.Missing})
		}
		var err error
		if len(problems) > 0 {
			err = fmt.Errorf("email is not fully set up: %s to do", countNoun(len(problems), "thing"))
		}
		return printEmailCheck(e, v, err)
	}
	if len(problems) == 0 {
		fmt.Fprintln(out, "\nemail is set up")
		return nil
	}
	fmt.Fprintln(out, "\nto do:")
	for i, p := range problems {
		fmt.Fprintf(out, "  %d. %s\n", i+1, p)
	}
	return fmt.Errorf("email is not fully set up: %s to do (listed above)", countNoun(len(problems), "thing"))
}
