package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/cleantrack/jobs/tasks"
)

func newStripeCheckCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check STRIPE_SECRET_KEY against the Stripe API and that a webhook endpoint sends every event CleanTrack needs",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runStripeCheck(ctx, e) }),
	}
}

// runStripeCheck asks the Stripe API (or STRIPE_API_BASE, such as stripe-mock)
// for the account's balance, to prove the key works, and lists its webhook
// endpoints, saying which of them deliver all the supported event types to
// /billing/webhooks/stripe/.
func runStripeCheck(ctx context.Context, e *env) error {
	if e.cfg.StripeSecretKey == "" {
		return usagef("STRIPE_SECRET_KEY is not set: give the account's secret key (sk_test_... or sk_live_...)")
	}
	cfg := &stripe.BackendConfig{LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}, MaxNetworkRetries: stripe.Int64(0)}
	if e.cfg.StripeAPIBase != "" {
		cfg.URL = stripe.String(e.cfg.StripeAPIBase)
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
	sc := client.New(e.cfg.StripeSecretKey, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})

	bp := &stripe.BalanceParams{}
	bp.Context = ctx
	bal, err := sc.Balance.Get(bp)
	if err != nil {
		return fmt.Errorf("stripe API refused STRIPE_SECRET_KEY: %w", err)
	}
	mode := "test"
	if bal.Livemode {
		mode = "live"
	}
	fmt.Fprintf(e.stdout, "STRIPE_SECRET_KEY works (%s mode)\n\n", mode)

	lp := &stripe.WebhookEndpointListParams{}
	lp.Context = ctx
	it := sc.WebhookEndpoints.List(lp)
	tw := e.table("ENDPOINT", "STATUS", "API VERSION", "CLEANTRACK PATH", "MISSING EVENTS")
	ready := 0
	for it.Next() {
		ep := it.WebhookEndpoint()
		missing := missingEvents(ep.EnabledEvents)
		ours := false
		if u, err := url.Parse(ep.URL); err == nil {
			ours = strings.TrimSuffix(u.Path, "/") == "/billing/webhooks/stripe"
		}
		if ours && len(missing) == 0 && ep.Status == "enabled" {
			ready++
		}
		apiVersion := ep.APIVersion
		if apiVersion == "" {
			apiVersion = "(account default)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ep.URL, ep.Status, apiVersion, yesNo(ours), orNone(missing))
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list webhook endpoints: %w", err)
	}
	tw.Flush()
	fmt.Fprintln(e.stdout)
	if ready == 0 {
		fmt.Fprintf(e.stdout, "no enabled endpoint delivers all of %s to /billing/webhooks/stripe/: add one in the Stripe dashboard (Developers > Webhooks)\n", strings.Join(supportedEvents(), ", "))
		return fmt.Errorf("stripe webhooks are not set up for CleanTrack")
	}
	fmt.Fprintf(e.stdout, "%d endpoint(s) deliver every event CleanTrack applies\n", ready)
	return nil
}

func supportedEvents() []string {
	out := slices.Clone(tasks.StripeEventTypes)
	slices.Sort(out)
	return out
}

func missingEvents(enabled []string) []string {
	if slices.Contains(enabled, "*") {
		return nil
	}
	var missing []string
	for _, t := range supportedEvents() {
		if !slices.Contains(enabled, t) {
			missing = append(missing, t)
		}
	}
	return missing
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}
