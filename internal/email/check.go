package email

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"
)

// WebhookEvents are the Resend webhook events CleanTrack's suppression list
// needs at /webhooks/resend/.
var WebhookEvents = []string{"email.bounced", "email.complained"}

// ErrKeyRefused is wrapped by CheckAccount when Resend refuses the API key.
var ErrKeyRefused = errors.New("resend refused the API key")

// AccountCheck is what CheckAccount found of a Resend account.
type AccountCheck struct {
	// Restricted is true for a sending-only key: it sends, but cannot read
	// the domains and webhooks, so those were not checked.
	Restricted bool
	// FromDomain is the domain of the from address.
	FromDomain string
	// Domain is the account's domain named FromDomain; its Id is empty when
	// the account has none.
	Domain resend.Domain
	// FailingRecords are Domain's DNS records whose status is not verified.
	FailingRecords []resend.Record
	// Webhooks are the account's webhooks, each with what it lacks.
	Webhooks []WebhookCheck
}

// DomainVerified reports whether the from domain is verified.
func (c AccountCheck) DomainVerified() bool {
	return c.Domain.Id != "" && c.Domain.Status == "verified"
}

// WebhookReady reports whether an enabled webhook sends every WebhookEvents
// event to /webhooks/resend/.
func (c AccountCheck) WebhookReady() bool {
	return slices.ContainsFunc(c.Webhooks, func(w WebhookCheck) bool { return w.Ready() })
}

// WebhookCheck is one of the account's webhooks.
type WebhookCheck struct {
	resend.WebhookInList
	Ours    bool     // its endpoint's path is /webhooks/resend/
	Missing []string // WebhookEvents it does not send
}

// Ready reports whether the webhook is enabled, ours, and misses nothing.
func (w WebhookCheck) Ready() bool { return w.Ours && len(w.Missing) == 0 && w.Status == "enabled" }

// CheckAccount reads, with apiKey (at baseURL when not empty), the Resend
// account's domains and webhooks: whether the key works, whether the domain
// of from is verified (and which of its DNS records are not), and which
// webhooks send email.bounced and email.complained to /webhooks/resend/. It
// only reads. A refused key is an error wrapping ErrKeyRefused; a
// sending-only key is not an error (Restricted).
func CheckAccount(ctx context.Context, apiKey, baseURL, from string) (AccountCheck, error) {
	var c AccountCheck
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return c, fmt.Errorf("DEFAULT_FROM_EMAIL %q is not an address: %w", from, err)
	}
	c.FromDomain = strings.ToLower(addr.Address[strings.LastIndexByte(addr.Address, '@')+1:])
	client, err := newResendClient(apiKey, baseURL, 15*time.Second)
	if err != nil {
		return c, err
	}
	var resp apiResponse
	domains, err := client.Domains.ListWithContext(withResponse(ctx, &resp))
	switch {
	case err != nil && resp.name == "restricted_api_key":
		c.Restricted = true
		return c, nil
	case err != nil && (resp.status == 401 || resp.status == 403):
		return c, fmt.Errorf("%w: %s", ErrKeyRefused, describe(resp, err))
	case err != nil:
		return c, fmt.Errorf("list resend domains: %s", describe(resp, err))
	}
	for _, d := range domains.Data {
		if strings.EqualFold(d.Name, c.FromDomain) {
			c.Domain = d
		}
	}
	if c.Domain.Id != "" {
		resp = apiResponse{}
		d, err := client.Domains.GetWithContext(withResponse(ctx, &resp), c.Domain.Id)
		if err != nil {
			return c, fmt.Errorf("read resend domain %s: %s", c.Domain.Name, describe(resp, err))
		}
		c.Domain = d
		for _, r := range d.Records {
			if r.Status != "verified" {
				c.FailingRecords = append(c.FailingRecords, r)
			}
		}
	}
	resp = apiResponse{}
	hooks, err := client.Webhooks.ListWithContext(withResponse(ctx, &resp))
	if err != nil {
		return c, fmt.Errorf("list resend webhooks: %s", describe(resp, err))
	}
	for _, h := range hooks.Data {
		w := WebhookCheck{WebhookInList: h}
		if u, err := url.Parse(h.Endpoint); err == nil {
			w.Ours = strings.TrimSuffix(u.Path, "/") == "/webhooks/resend"
		}
		for _, e := range WebhookEvents {
			if !slices.Contains(h.Events, e) {
				w.Missing = append(w.Missing, e)
			}
		}
		c.Webhooks = append(c.Webhooks, w)
	}
	return c, nil
}
