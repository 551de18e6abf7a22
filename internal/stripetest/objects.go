package stripetest

import (
	"fmt"
	"time"
)

// Customer is a Stripe customer, as customer.created carries it and the fake
// API serves it.
type Customer struct {
	ID        string
	Email     string
	Name      string
	AccountID int64 // metadata.account_id, which links a CleanTrack account (omitted when 0)
	Created   time.Time
	Livemode  bool
}

// Subscription is a Stripe subscription with one item.
type Subscription struct {
	ID        string
	Customer  string
	Status    string // default active
	PriceID   string // default price_trial_monthly
	Amount    int64  // the price's unit_amount; default 4900
	Currency  string // default usd
	PeriodEnd time.Time
	EndedAt   time.Time // zero while it runs
	Created   time.Time
	Livemode  bool
}

// Invoice is a Stripe invoice of a subscription.
type Invoice struct {
	ID               string
	Customer         string
	Subscription     string
	Amount           int64 // amount due; default 4900
	Currency         string
	AttemptCount     int
	NextAttempt      time.Time // zero: no retry scheduled
	Paid             bool
	HostedInvoiceURL string
	PeriodEnd        time.Time
	Created          time.Time
	Livemode         bool
}

// ref writes a reference to another object: its id, or the expanded object.
func ref(id, object string, expand bool) any {
	if expand {
		return map[string]any{"id": id, "object": object}
	}
	return id
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func unixOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func (c Customer) withDefaults() Customer {
	if c.Created.IsZero() {
		c.Created = time.Now().UTC().Truncate(time.Second)
	}
	return c
}

func (c Customer) json() map[string]any {
	meta := map[string]any{}
	if c.AccountID != 0 {
		meta["account_id"] = fmt.Sprint(c.AccountID)
	}
	if c.Name != "" {
		meta["account_name"] = c.Name
	}
	return map[string]any{
		"id":               c.ID,
		"object":           "customer",
		"created":          c.Created.Unix(),
		"email":            nullable(c.Email),
		"name":             nullable(c.Name),
		"currency":         nil,
		"delinquent":       false,
		"livemode":         c.Livemode,
		"metadata":         meta,
		"invoice_settings": map[string]any{"default_payment_method": nil},
	}
}

func (s Subscription) withDefaults() Subscription {
	if s.Created.IsZero() {
		s.Created = time.Now().UTC().Truncate(time.Second)
	}
	if s.Status == "" {
		s.Status = "active"
	}
	if s.PriceID == "" {
		s.PriceID = "price_trial_monthly"
	}
	if s.Amount == 0 {
		s.Amount = 4900
	}
	if s.Currency == "" {
		s.Currency = "usd"
	}
	if s.PeriodEnd.IsZero() {
		s.PeriodEnd = s.Created.AddDate(0, 0, 30)
	}
	return s
}

// json renders s in shape; expand writes its customer as an object.
func (s Subscription) json(shape string, expand bool) map[string]any {
	start := s.PeriodEnd.AddDate(0, -1, 0).Unix()
	item := map[string]any{
		"id":      "si_" + s.ID,
		"object":  "subscription_item",
		"created": s.Created.Unix(),
		"price": map[string]any{
			"id":          s.PriceID,
			"object":      "price",
			"active":      true,
			"currency":    s.Currency,
			"unit_amount": s.Amount,
			"recurring":   map[string]any{"interval": "month", "interval_count": 1},
			"product":     "prod_CleanTrack",
		},
		"quantity":     1,
		"subscription": s.ID,
	}
	sub := map[string]any{
		"id":                   s.ID,
		"object":               "subscription",
		"customer":             ref(s.Customer, "customer", expand),
		"status":               s.Status,
		"created":              s.Created.Unix(),
		"start_date":           s.Created.Unix(),
		"billing_cycle_anchor": start,
		"cancel_at_period_end": false,
		"canceled_at":          unixOrNull(s.EndedAt),
		"ended_at":             unixOrNull(s.EndedAt),
		"collection_method":    "charge_automatically",
		"currency":             s.Currency,
		"livemode":             s.Livemode,
		"metadata":             map[string]any{},
		"items": map[string]any{
			"object":   "list",
			"data":     []any{item},
			"has_more": false,
			"url":      "/v1/subscription_items?subscription=" + s.ID,
		},
	}
	if shape == Shape2025 {
		item["current_period_start"] = start
		item["current_period_end"] = s.PeriodEnd.Unix()
	} else {
		sub["current_period_start"] = start
		sub["current_period_end"] = s.PeriodEnd.Unix()
	}
	return sub
}

func (in Invoice) withDefaults() Invoice {
	if in.Created.IsZero() {
		in.Created = time.Now().UTC().Truncate(time.Second)
	}
	if in.Amount == 0 {
		in.Amount = 4900
	}
	if in.Currency == "" {
		in.Currency = "usd"
	}
	if in.AttemptCount == 0 {
		in.AttemptCount = 1
	}
	if in.PeriodEnd.IsZero() {
		in.PeriodEnd = in.Created.AddDate(0, 0, 30)
	}
	if in.HostedInvoiceURL == "" {
		in.HostedInvoiceURL = "https://invoice.stripe.com/i/acct_1CleanTrackTest/test_" + in.ID
	}
	return in
}

// json renders in in shape; expand writes its customer and subscription as
// objects.
func (in Invoice) json(shape string, expand bool) map[string]any {
	obj := map[string]any{
		"id":                   in.ID,
		"object":               "invoice",
		"customer":             ref(in.Customer, "customer", expand),
		"created":              in.Created.Unix(),
		"currency":             in.Currency,
		"amount_due":           in.Amount,
		"amount_remaining":     in.Amount,
		"amount_paid":          0,
		"attempt_count":        in.AttemptCount,
		"attempted":            true,
		"billing_reason":       "subscription_cycle",
		"collection_method":    "charge_automatically",
		"hosted_invoice_url":   in.HostedInvoiceURL,
		"invoice_pdf":          in.HostedInvoiceURL + "/pdf",
		"livemode":             in.Livemode,
		"status":               "open",
		"next_payment_attempt": unixOrNull(in.NextAttempt),
		"status_transitions": map[string]any{
			"finalized_at": in.Created.Unix(),
			"paid_at":      nil,
		},
		"period_start": in.PeriodEnd.AddDate(0, -1, 0).Unix(),
		"period_end":   in.PeriodEnd.Unix(),
	}
	if in.Paid {
		obj["amount_paid"] = in.Amount
		obj["amount_remaining"] = 0
		obj["status"] = "paid"
		obj["next_payment_attempt"] = nil
		obj["status_transitions"] = map[string]any{"finalized_at": in.Created.Unix(), "paid_at": in.Created.Unix()}
	}
	if shape == Shape2025 {
		obj["parent"] = map[string]any{
			"type":          "subscription_details",
			"quote_details": nil,
			"subscription_details": map[string]any{
				"metadata":     map[string]any{},
				"subscription": ref(in.Subscription, "subscription", expand),
			},
		}
	} else {
		obj["subscription"] = ref(in.Subscription, "subscription", expand)
	}
	return obj
}
