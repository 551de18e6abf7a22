package billing

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/tasks"
)

// API shapes BuildEvent can produce, and the api_version each carries.
const (
	Shape2023 = "2023"
	Shape2025 = "2025"

	APIVersion2023 = "2023-10-16"
	APIVersion2025 = "2025-03-31.basil"
)

// EventOptions describes a Stripe event for BuildEvent. Zero fields get
// realistic defaults; only Type is required.
type EventOptions struct {
	Type    string    // one of tasks.StripeEventTypes
	ID      string    // event id; a random evt_... when empty
	Created time.Time // event.created; now when zero
	Shape   string    // Shape2023 (default) or Shape2025
	// Expand writes customer and subscription references as expanded
	// objects instead of id strings.
	Expand   bool
	Livemode bool

	CustomerID string // a random cus_... when empty
	AccountID  int64  // customer.created: metadata.account_id (omitted when 0)
	Email      string // customer.created
	Name       string // customer.created

	SubscriptionID string    // a random sub_... when empty
	PriceID        string    // default price_trial_monthly
	Status         string    // subscription status; active (canceled for deleted) by default
	PeriodEnd      time.Time // current period end; Created + 30 days when zero
	EndedAt        time.Time // subscription.deleted: when it ended; Created when zero

	InvoiceID        string    // a random in_... when empty
	Amount           int64     // amount due (and paid, for payment_succeeded); default 4900
	Currency         string    // default usd
	AttemptCount     int       // default 1
	NextAttempt      time.Time // payment_failed: Stripe's next retry; Created + 3 days when zero
	HostedInvoiceURL string    // default a realistic invoice.stripe.com URL
}

// NewID returns a random Stripe-looking id with prefix, such as "evt_".
func NewID(prefix string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + "1" + string(b)
}

// BuildEvent returns the JSON of a Stripe event as Stripe would send it with
// the chosen API shape: with Shape2025, current_period_end is only on the
// subscription items and an invoice's subscription only under
// parent.subscription_details, as in API 2025-03-31 and later.
func BuildEvent(o EventOptions) ([]byte, error) {
	o, err := withDefaults(o)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	switch o.Type {
	case tasks.EventCustomerCreated:
		obj = customerObject(o)
	case tasks.EventSubscriptionCreated, tasks.EventSubscriptionUpdated, tasks.EventSubscriptionDeleted:
		obj = subscriptionObject(o)
	case tasks.EventInvoicePaymentSucceeded, tasks.EventInvoicePaymentFailed:
		obj = invoiceObject(o)
	default:
		return nil, fmt.Errorf("build event: unsupported type %q (supported: %v)", o.Type, tasks.StripeEventTypes)
	}
	apiVersion := APIVersion2023
	if o.Shape == Shape2025 {
		apiVersion = APIVersion2025
	}
	ev := map[string]any{
		"id":               o.ID,
		"object":           "event",
		"api_version":      apiVersion,
		"created":          o.Created.Unix(),
		"livemode":         o.Livemode,
		"pending_webhooks": 1,
		"type":             o.Type,
		"request":          map[string]any{"id": NewID("req_"), "idempotency_key": NewID("")},
		"data":             map[string]any{"object": obj},
	}
	if o.Type == tasks.EventSubscriptionUpdated {
		ev["data"].(map[string]any)["previous_attributes"] = map[string]any{"status": "incomplete"}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("build event: %w", err)
	}
	return b, nil
}

func withDefaults(o EventOptions) (EventOptions, error) {
	if o.Type == "" {
		return o, fmt.Errorf("build event: a type is required (one of %v)", tasks.StripeEventTypes)
	}
	switch o.Shape {
	case "":
		o.Shape = Shape2023
	case Shape2023, Shape2025:
	default:
		return o, fmt.Errorf("build event: shape %q is not %s or %s", o.Shape, Shape2023, Shape2025)
	}
	if o.ID == "" {
		o.ID = NewID("evt_")
	}
	if o.Created.IsZero() {
		o.Created = time.Now()
	}
	o.Created = o.Created.UTC().Truncate(time.Second)
	if o.CustomerID == "" {
		o.CustomerID = NewID("cus_")
	}
	if o.SubscriptionID == "" {
		o.SubscriptionID = NewID("sub_")
	}
	if o.PriceID == "" {
		o.PriceID = "price_trial_monthly"
	}
	if o.Status == "" {
		o.Status = StatusActive
		if o.Type == tasks.EventSubscriptionDeleted {
			o.Status = StatusCanceled
		}
	}
	if o.PeriodEnd.IsZero() {
		o.PeriodEnd = o.Created.AddDate(0, 0, 30)
	}
	if o.EndedAt.IsZero() {
		o.EndedAt = o.Created
	}
	if o.InvoiceID == "" {
		o.InvoiceID = NewID("in_")
	}
	if o.Amount == 0 {
		o.Amount = 4900
	}
	if o.Currency == "" {
		o.Currency = "usd"
	}
	if o.AttemptCount == 0 {
		o.AttemptCount = 1
	}
	if o.NextAttempt.IsZero() {
		o.NextAttempt = o.Created.Add(72 * time.Hour)
	}
	if o.HostedInvoiceURL == "" {
		o.HostedInvoiceURL = "https://invoice.stripe.com/i/acct_1CleanTrackTest/test_" + o.InvoiceID
	}
	return o, nil
}

func (o EventOptions) ref(id, object string) any {
	if o.Expand {
		return map[string]any{"id": id, "object": object}
	}
	return id
}

func customerObject(o EventOptions) map[string]any {
	meta := map[string]any{}
	if o.AccountID != 0 {
		meta["account_id"] = fmt.Sprint(o.AccountID)
	}
	if o.Name != "" {
		meta["account_name"] = o.Name
	}
	return map[string]any{
		"id":               o.CustomerID,
		"object":           "customer",
		"created":          o.Created.Unix(),
		"email":            nullable(o.Email),
		"name":             nullable(o.Name),
		"currency":         nil,
		"delinquent":       false,
		"livemode":         o.Livemode,
		"metadata":         meta,
		"invoice_settings": map[string]any{"default_payment_method": nil},
	}
}

func subscriptionObject(o EventOptions) map[string]any {
	start := o.PeriodEnd.AddDate(0, -1, 0).Unix()
	item := map[string]any{
		"id":      NewID("si_"),
		"object":  "subscription_item",
		"created": o.Created.Unix(),
		"price": map[string]any{
			"id":          o.PriceID,
			"object":      "price",
			"active":      true,
			"currency":    o.Currency,
			"unit_amount": o.Amount,
			"recurring":   map[string]any{"interval": "month", "interval_count": 1},
			"product":     "prod_CleanTrack",
		},
		"quantity":     1,
		"subscription": o.SubscriptionID,
	}
	sub := map[string]any{
		"id":                   o.SubscriptionID,
		"object":               "subscription",
		"customer":             o.ref(o.CustomerID, "customer"),
		"status":               o.Status,
		"created":              o.Created.Unix(),
		"start_date":           o.Created.Unix(),
		"billing_cycle_anchor": start,
		"cancel_at_period_end": false,
		"canceled_at":          nil,
		"ended_at":             nil,
		"collection_method":    "charge_automatically",
		"currency":             o.Currency,
		"livemode":             o.Livemode,
		"metadata":             map[string]any{},
		"items": map[string]any{
			"object":   "list",
			"data":     []any{item},
			"has_more": false,
			"url":      "/v1/subscription_items?subscription=" + o.SubscriptionID,
		},
	}
	if o.Shape == Shape2025 {
		item["current_period_start"] = start
		item["current_period_end"] = o.PeriodEnd.Unix()
	} else {
		sub["current_period_start"] = start
		sub["current_period_end"] = o.PeriodEnd.Unix()
	}
	if o.Type == tasks.EventSubscriptionDeleted {
		sub["canceled_at"] = o.EndedAt.Unix()
		sub["ended_at"] = o.EndedAt.Unix()
	}
	return sub
}

func invoiceObject(o EventOptions) map[string]any {
	paid := o.Type == tasks.EventInvoicePaymentSucceeded
	in := map[string]any{
		"id":                   o.InvoiceID,
		"object":               "invoice",
		"customer":             o.ref(o.CustomerID, "customer"),
		"created":              o.Created.Unix(),
		"currency":             o.Currency,
		"amount_due":           o.Amount,
		"amount_remaining":     o.Amount,
		"amount_paid":          0,
		"attempt_count":        o.AttemptCount,
		"attempted":            true,
		"billing_reason":       "subscription_cycle",
		"collection_method":    "charge_automatically",
		"hosted_invoice_url":   o.HostedInvoiceURL,
		"invoice_pdf":          o.HostedInvoiceURL + "/pdf",
		"livemode":             o.Livemode,
		"status":               "open",
		"next_payment_attempt": o.NextAttempt.Unix(),
		"status_transitions": map[string]any{
			"finalized_at": o.Created.Unix(),
			"paid_at":      nil,
		},
		"period_start": o.PeriodEnd.AddDate(0, -1, 0).Unix(),
		"period_end":   o.PeriodEnd.Unix(),
	}
	if paid {
		in["amount_paid"] = o.Amount
		in["amount_remaining"] = 0
		in["status"] = "paid"
		in["next_payment_attempt"] = nil
		in["status_transitions"] = map[string]any{"finalized_at": o.Created.Unix(), "paid_at": o.Created.Unix()}
	}
	if o.Shape == Shape2025 {
		in["parent"] = map[string]any{
			"type":          "subscription_details",
			"quote_details": nil,
			"subscription_details": map[string]any{
				"metadata":     map[string]any{},
				"subscription": o.ref(o.SubscriptionID, "subscription"),
			},
		}
	} else {
		in["subscription"] = o.ref(o.SubscriptionID, "subscription")
	}
	return in
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Sign returns the Stripe-Signature header value for payload signed with
// secret at time t (now when zero), as Stripe computes it.
func Sign(payload []byte, secret string, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload:   payload,
		Secret:    secret,
		Timestamp: t,
	}).Header
}

// SignedRequest builds the POST Stripe would make to url with payload,
// signed with secret at time t (now when zero).
func SignedRequest(ctx context.Context, url string, payload []byte, secret string, t time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("signed request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Stripe-Signature", Sign(payload, secret, t))
	return req, nil
}
