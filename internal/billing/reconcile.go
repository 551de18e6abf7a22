package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/stripeapi"
	"github.com/cleantrack/jobs/tasks"
)

// Difference is one field where an account disagrees with its subscription
// at Stripe.
type Difference struct {
	Field   string `json:"field"`   // subscription, status, period_end or plan
	Account string `json:"account"` // the account row's value ("none" when empty)
	Stripe  string `json:"stripe"`  // Stripe's
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: account has %s, Stripe has %s", d.Field, d.Account, d.Stripe)
}

// AccountDrift is what reconcile found for one account.
type AccountDrift struct {
	AccountID  int64  `json:"account_id"`
	Slug       string `json:"slug"`
	CustomerID string `json:"customer_id"`
	// SubscriptionID is Stripe's current subscription of the customer; ""
	// when it has none.
	SubscriptionID string       `json:"subscription_id"`
	Differences    []Difference `json:"differences"`
	// Notes say what reconcile could not compare or did not change.
	Notes []string `json:"notes"`
	// Fix is the inbox row that applied Stripe's state, with --fix.
	Fix *ReconcileFix `json:"fix,omitempty"`
	// Remaining is set when differences remain after the run.
	Remaining bool `json:"remaining"`
}

// ReconcileFix is what --fix did for one account.
type ReconcileFix struct {
	EventID string `json:"event_id"` // the stripe_events row, source reconcile
	Outcome string `json:"outcome"`  // applied, stale ...
	Note    string `json:"note"`
}

// ReconcileReport is one reconcile run.
type ReconcileReport struct {
	Checked   int            `json:"checked"`
	Drifted   int            `json:"drifted"`   // accounts with differences found
	Fixed     int            `json:"fixed"`     // accounts --fix brought in line
	Remaining int            `json:"remaining"` // accounts still differing
	Accounts  []AccountDrift `json:"accounts"`  // those with differences or notes
}

// ReconcileOptions select what a run checks and whether it fixes.
type ReconcileOptions struct {
	// AccountSlug limits the run to one account; "" checks every account
	// with a Stripe customer.
	AccountSlug string
	// Fix applies Stripe's state to each account that differs.
	Fix bool
	// Progress, when set, is told of each account checked.
	Progress func(msg string)
}

// ErrNoStripeCustomer is returned for --account naming an account that has
// no Stripe customer.
var ErrNoStripeCustomer = errors.New("account has no Stripe customer")

// Reconciler compares accounts with their subscriptions at Stripe.
type Reconciler struct {
	API   *stripeapi.Client
	Store *postgres.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run fetches, for each account with a Stripe customer (or the one named),
// its subscriptions from the API, picks the current one (the account's own
// while it is live, else the newest live one, else the account's own or the
// newest canceled one) and compares its id, status, period end and plan
// with the account row. With Fix, each account that differs gets Stripe's
// state through the same store path as an event, recorded as an inbox row
// with source "reconcile" and a note saying what changed. It stops at the
// first failure to reach Stripe or PostgreSQL.
func (r *Reconciler) Run(ctx context.Context, opts ReconcileOptions) (ReconcileReport, error) {
	rep := ReconcileReport{Accounts: []AccountDrift{}}
	var accounts []postgres.Account
	if opts.AccountSlug != "" {
		a, err := r.Store.AccountBySlug(ctx, opts.AccountSlug)
		if err != nil {
			return rep, err
		}
		if a.StripeCustomerID == "" {
			return rep, fmt.Errorf("account %s: %w", a.Slug, ErrNoStripeCustomer)
		}
		accounts = []postgres.Account{a}
	} else {
		var err error
		if accounts, err = r.Store.AccountsWithStripeCustomer(ctx); err != nil {
			return rep, err
		}
	}
	for _, a := range accounts {
		d, err := r.account(ctx, a, opts.Fix)
		if err != nil {
			return rep, fmt.Errorf("reconcile account %s: %w", a.Slug, err)
		}
		rep.Checked++
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf("%s (%s): %s", a.Slug, a.StripeCustomerID, plural(len(d.Differences), "difference")))
		}
		if len(d.Differences) > 0 {
			rep.Drifted++
		}
		if d.Fix != nil && !d.Remaining {
			rep.Fixed++
		}
		if d.Remaining {
			rep.Remaining++
		}
		if len(d.Differences) > 0 || len(d.Notes) > 0 {
			rep.Accounts = append(rep.Accounts, d)
		}
	}
	return rep, nil
}

func (r *Reconciler) account(ctx context.Context, a postgres.Account, fix bool) (AccountDrift, error) {
	d := AccountDrift{AccountID: a.ID, Slug: a.Slug, CustomerID: a.StripeCustomerID, Differences: []Difference{}, Notes: []string{}}
	raws, err := r.API.Subscriptions(ctx, a.StripeCustomerID)
	if err != nil {
		return d, err
	}
	fetchedAt := r.now()
	type listed struct {
		sub Subscription
		raw json.RawMessage
	}
	var subs []listed
	for _, raw := range raws {
		var ev Event
		ev.ID, ev.Data.Object = "reconcile", raw
		sub, err := ev.DecodeSubscription()
		if err != nil {
			d.Notes = append(d.Notes, fmt.Sprintf("a subscription Stripe listed does not read: %v", err))
			continue
		}
		if string(sub.Customer) != a.StripeCustomerID {
			// Stripe filters by customer; a fake that does not (stripe-mock)
			// must not have another customer's subscription applied.
			d.Notes = append(d.Notes, fmt.Sprintf("Stripe listed subscription %s of another customer (%s); ignored", sub.ID, sub.Customer))
			continue
		}
		subs = append(subs, listed{sub, raw})
	}
	plain := make([]Subscription, len(subs))
	for i, s := range subs {
		plain[i] = s.sub
	}
	i := currentSubscription(a, plain)
	if i < 0 {
		if a.StripeSubscriptionID != "" {
			d.Differences = append(d.Differences, Difference{Field: "subscription", Account: a.StripeSubscriptionID, Stripe: "none"})
			d.Notes = append(d.Notes, fmt.Sprintf("Stripe has no subscription for customer %s; reconcile does not change the account without one", a.StripeCustomerID))
			d.Remaining = true
		}
		return d, nil
	}
	cur, raw := subs[i].sub, subs[i].raw
	d.SubscriptionID = cur.ID

	plan := ""
	if price := cur.PriceID(); price != "" {
		p, err := r.Store.PlanByPriceID(ctx, price)
		switch {
		case errors.Is(err, postgres.ErrNotFound):
			d.Notes = append(d.Notes, fmt.Sprintf("price %s of subscription %s matches no plan; plan not compared", price, cur.ID))
		case err != nil:
			return d, err
		default:
			plan = p.Code
		}
	}
	end := expectedEnd(cur)
	if a.StripeSubscriptionID != cur.ID {
		d.Differences = append(d.Differences, Difference{Field: "subscription", Account: orNone(a.StripeSubscriptionID), Stripe: cur.ID})
	}
	if a.Status != cur.Status {
		d.Differences = append(d.Differences, Difference{Field: "status", Account: orNone(a.Status), Stripe: cur.Status})
	}
	if !endMatches(a.SubscriptionEndDate, cur, end) {
		d.Differences = append(d.Differences, Difference{Field: "period_end", Account: timeOrNone(a.SubscriptionEndDate), Stripe: timeOrNone(nonZero(end))})
	}
	if plan != "" && a.Plan != plan {
		d.Differences = append(d.Differences, Difference{Field: "plan", Account: orNone(a.Plan), Stripe: plan})
	}
	if len(d.Differences) == 0 {
		return d, nil
	}
	d.Remaining = true
	if !fix {
		return d, nil
	}

	change := postgres.BillingChange{SubscriptionID: &cur.ID, Status: &cur.Status}
	if !end.IsZero() {
		change.SubscriptionEndDate = &end
	}
	if plan != "" {
		change.Plan = &plan
	}
	var what []string
	for _, diff := range d.Differences {
		what = append(what, fmt.Sprintf("%s %s -> %s", diff.Field, diff.Account, diff.Stripe))
	}
	note := fmt.Sprintf("reconcile: %s (subscription %s as fetched at %s)", strings.Join(what, "; "), cur.ID, fetchedAt.UTC().Format(time.RFC3339))
	typ := tasks.EventSubscriptionUpdated
	if cur.Status == StatusCanceled {
		typ = tasks.EventSubscriptionDeleted
	}
	id := fmt.Sprintf("reconcile_%d_%d", a.ID, fetchedAt.UnixNano())
	payload, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": "2023-10-16",
		"created": fetchedAt.Unix(), "livemode": r.API.Livemode(),
		"data": map[string]json.RawMessage{"object": raw},
	})
	if err != nil {
		return d, err
	}
	res, err := r.Store.ApplyReconcile(ctx, postgres.StripeEvent{
		ID: id, Type: typ, APIVersion: "2023-10-16", Livemode: r.API.Livemode(), CreatedAt: fetchedAt,
		Payload: payload, Source: postgres.SourceReconcile,
	}, raw, a.ID, change, note)
	if err != nil {
		return d, err
	}
	d.Fix = &ReconcileFix{EventID: id, Outcome: res.Outcome.String(), Note: res.Note}
	d.Remaining = res.Outcome != postgres.Applied
	return d, nil
}

// live reports whether a subscription still bills (or will).
func live(s Subscription) bool {
	return s.Status != StatusCanceled && s.Status != "incomplete_expired"
}

// currentSubscription picks the subscription to compare the account with:
// the account's own while it is live, else the newest live one, else the
// account's own, else the newest; -1 for none.
func currentSubscription(a postgres.Account, subs []Subscription) int {
	best := -1
	better := func(i int) bool {
		if best < 0 {
			return true
		}
		x, y := subs[i], subs[best]
		switch {
		case live(x) != live(y):
			return live(x)
		case (x.ID == a.StripeSubscriptionID) != (y.ID == a.StripeSubscriptionID):
			return x.ID == a.StripeSubscriptionID
		}
		return x.Created > y.Created
	}
	for i := range subs {
		if better(i) {
			best = i
		}
	}
	return best
}

// expectedEnd is the end date the events leave on an account: the current
// period's end, or, for a canceled subscription, when it ended.
func expectedEnd(s Subscription) time.Time {
	if s.Status == StatusCanceled {
		if t := s.EndedTime(); !t.IsZero() {
			return t
		}
	}
	return s.PeriodEnd()
}

// endMatches accepts the end either event path leaves for a canceled
// subscription (customer.subscription.deleted: when it ended; .updated: the
// period end).
func endMatches(have *time.Time, s Subscription, want time.Time) bool {
	if have == nil {
		return want.IsZero()
	}
	return have.Equal(want) || (s.Status == StatusCanceled && have.Equal(s.PeriodEnd()))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func timeOrNone(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// ProcessStripeReconcile is the stripe:reconcile handler (enqueued by the
// scheduler on STRIPE_RECONCILE_CRON when STRIPE_SECRET_KEY is set). It logs
// one line per difference, fixes only with Options.ReconcileFix
// (STRIPE_RECONCILE_FIX=true), and sets cleantrack_billing_drift_accounts
// to the accounts still differing.
func (h *Handler) ProcessStripeReconcile(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.StripeReconcilePayload](t)
	if err != nil {
		return err
	}
	if h.opt.Stripe == nil {
		return fmt.Errorf("stripe reconcile: STRIPE_SECRET_KEY is not set on the worker")
	}
	r := &Reconciler{API: h.opt.Stripe, Store: h.store, Now: h.opt.Now}
	rep, err := r.Run(ctx, ReconcileOptions{Fix: h.opt.ReconcileFix})
	if err != nil {
		return err
	}
	for _, a := range rep.Accounts {
		for _, diff := range a.Differences {
			h.log.LogAttrs(ctx, slog.LevelWarn, "billing differs from Stripe",
				slog.Int64("account_id", a.AccountID), slog.String("account", a.Slug),
				slog.String("customer_id", a.CustomerID), slog.String("subscription_id", a.SubscriptionID),
				slog.String("field", diff.Field), slog.String("account_value", diff.Account), slog.String("stripe_value", diff.Stripe),
				slog.Bool("fixed", a.Fix != nil && !a.Remaining))
		}
		for _, n := range a.Notes {
			h.log.LogAttrs(ctx, slog.LevelInfo, "billing reconcile note", slog.String("account", a.Slug), slog.String("note", n))
		}
	}
	metrics.BillingDriftAccounts.Set(float64(rep.Remaining))
	h.log.LogAttrs(ctx, slog.LevelInfo, "billing reconcile complete",
		slog.Time("slot", p.Slot), slog.Int("checked", rep.Checked), slog.Int("drifted", rep.Drifted),
		slog.Int("fixed", rep.Fixed), slog.Int("remaining", rep.Remaining), slog.Bool("fix", h.opt.ReconcileFix))
	return nil
}
