package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/tasks"
)

func newStripeCheckCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "check",
		Short: "Check STRIPE_SECRET_KEY against the Stripe API and that a webhook endpoint sends every event CleanTrack needs",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runStripeCheck(ctx, e, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the key's mode and the endpoints as JSON")
	return c
}

// endpointView is one webhook endpoint as "stripe check --json" prints it.
type endpointView struct {
	URL            string   `json:"url"`
	Status         string   `json:"status"`
	APIVersion     string   `json:"api_version"`
	CleanTrackPath bool     `json:"cleantrack_path"`
	MissingEvents  []string `json:"missing_events"`
	Ready          bool     `json:"ready"`
}

// runStripeCheck proves STRIPE_SECRET_KEY with the cheapest read CleanTrack
// makes (GET /v1/events?limit=1, at STRIPE_API_BASE when set, such as
// stripe-mock), then lists the account's webhook endpoints, saying which of
// them deliver all the supported event types to /billing/webhooks/stripe/.
// It is the one caller allowed GET /v1/webhook_endpoints: a read a person
// asked for.
func runStripeCheck(ctx context.Context, e *env, asJSON bool) error {
	api, err := e.stripeAPI("thin events cannot be applied (the worker fetches the object each one names with it), "+
		"and stripe sync, stripe reconcile and their scheduled runs cannot read Stripe", true)
	if err != nil {
		return err
	}
	if err := api.Check(ctx); err != nil {
		return fmt.Errorf("stripe API refused STRIPE_SECRET_KEY: %w", err)
	}
	mode := "test"
	if api.Livemode() {
		mode = "live"
	}
	if !asJSON {
		fmt.Fprintf(e.stdout, "STRIPE_SECRET_KEY works (%s mode): thin events can be applied, stripe sync and reconcile can read events and subscriptions\n\n", mode)
	}

	endpoints, err := api.WebhookEndpoints(ctx)
	if err != nil {
		return fmt.Errorf("list webhook endpoints: %w", err)
	}
	tw := e.table("ENDPOINT", "STATUS", "API VERSION", "CLEANTRACK PATH", "MISSING EVENTS")
	ready := 0
	views := make([]endpointView, 0, len(endpoints))
	for _, ep := range endpoints {
		missing := missingEvents(ep.EnabledEvents)
		ours := false
		if u, err := url.Parse(ep.URL); err == nil {
			ours = strings.TrimSuffix(u.Path, "/") == "/billing/webhooks/stripe"
		}
		ok := ours && len(missing) == 0 && ep.Status == "enabled"
		if ok {
			ready++
		}
		views = append(views, endpointView{URL: ep.URL, Status: ep.Status, APIVersion: ep.APIVersion,
			CleanTrackPath: ours, MissingEvents: append([]string{}, missing...), Ready: ok})
		apiVersion := ep.APIVersion
		if apiVersion == "" {
			apiVersion = "(account default)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ep.URL, ep.Status, apiVersion, yesNo(ours), orNone(missing))
	}
	if asJSON {
		if err := printJSON(e.stdout, map[string]any{"mode": mode, "endpoints": views, "ready": ready}); err != nil {
			return err
		}
		if ready == 0 {
			return fmt.Errorf("stripe webhooks are not set up for CleanTrack: no enabled endpoint delivers every event to /billing/webhooks/stripe/")
		}
		return nil
	}
	tw.Flush()
	fmt.Fprintln(e.stdout)
	if ready == 0 {
		fmt.Fprintf(e.stdout, "no enabled endpoint delivers all of %s to /billing/webhooks/stripe/: add one in the Stripe dashboard (Developers > Webhooks)\n", strings.Join(supportedEvents(), ", "))
		fmt.Fprintln(e.stdout, "(an event destination of thin events is not listed here: the v1 API does not show them)")
		return fmt.Errorf("stripe webhooks are not set up for CleanTrack")
	}
	fmt.Fprintf(e.stdout, "%s every event CleanTrack applies\n", countNoun(ready, "endpoint delivers", "endpoints deliver"))
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
