// Package stripetest is the one stand-in for Stripe: it builds snapshot
// events in either API shape CleanTrack reads (2023-10-16 and
// 2025-03-31.basil), signs them as Stripe signs webhooks, and serves a fake of
// the Stripe API (API) over an in-memory store of customers, subscriptions,
// invoices, events and webhook endpoints.
//
// The tests, the benchmark, the drills and the CLI's "stripe trigger" all
// build their events here, so every event CleanTrack sees in development has
// the one shape Stripe sends.
package stripetest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// API shapes BuildEvent can produce, and the api_version each carries.
// Since 2025-03-31.basil, current_period_end lives only on the subscription
// items and an invoice's subscription only under
// parent.subscription_details.
const (
	Shape2023 = "2023"
	Shape2025 = "2025"

	APIVersion2023 = "2023-10-16"
	APIVersion2025 = "2025-03-31.basil"
)

// Shapes are both shapes, oldest first, for tests that cover each.
var Shapes = []string{Shape2023, Shape2025}

// APIVersion returns the api_version of shape (Shape2023 or Shape2025).
func APIVersion(shape string) string {
	if shape == Shape2025 {
		return APIVersion2025
	}
	return APIVersion2023
}

// The snapshot event types BuildEvent knows, Stripe's own names.
const (
	typeCustomerCreated     = "customer.created"
	typeSubscriptionCreated = "customer.subscription.created"
	typeSubscriptionUpdated = "customer.subscription.updated"
	typeSubscriptionDeleted = "customer.subscription.deleted"
	typeInvoiceSucceeded    = "invoice.payment_succeeded"
	typeInvoiceFailed       = "invoice.payment_failed"
)

var eventTypes = []string{typeCustomerCreated, typeSubscriptionCreated, typeSubscriptionUpdated,
	typeSubscriptionDeleted, typeInvoiceSucceeded, typeInvoiceFailed}

// EventOptions describes a Stripe event for BuildEvent. Zero fields get
// realistic defaults; only Type is required.
type EventOptions struct {
	Type    string    // customer.created, customer.subscription.*, invoice.payment_succeeded or invoice.payment_failed
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

// BuildEvent returns the JSON of a Stripe snapshot event as Stripe would send
// it with the chosen API shape.
func BuildEvent(o EventOptions) ([]byte, error) {
	o, err := withDefaults(o)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	switch o.Type {
	case typeCustomerCreated:
		obj = o.customer().json()
	case typeSubscriptionCreated, typeSubscriptionUpdated, typeSubscriptionDeleted:
		obj = o.subscription().json(o.Shape, o.Expand)
	case typeInvoiceSucceeded, typeInvoiceFailed:
		obj = o.invoice().json(o.Shape, o.Expand)
	default:
		return nil, fmt.Errorf("build event: unsupported type %q (supported: %s)", o.Type, strings.Join(eventTypes, ", "))
	}
	data := map[string]any{"object": obj}
	if o.Type == typeSubscriptionUpdated {
		data["previous_attributes"] = map[string]any{"status": "incomplete"}
	}
	ev := map[string]any{
		"id":               o.ID,
		"object":           "event",
		"api_version":      APIVersion(o.Shape),
		"created":          o.Created.Unix(),
		"livemode":         o.Livemode,
		"pending_webhooks": 1,
		"type":             o.Type,
		"request":          map[string]any{"id": NewID("req_"), "idempotency_key": NewID("")},
		"data":             data,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("build event: %w", err)
	}
	return b, nil
}

// MustBuildEvent is BuildEvent for options fixed in code, such as the
// benchmark's: an unsupported type or shape is a bug there, and panics.
func MustBuildEvent(o EventOptions) []byte {
	b, err := BuildEvent(o)
	if err != nil {
		panic(err)
	}
	return b
}

func withDefaults(o EventOptions) (EventOptions, error) {
	if o.Type == "" {
		return o, fmt.Errorf("build event: a type is required (one of %s)", strings.Join(eventTypes, ", "))
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
		o.Status = "active"
		if o.Type == typeSubscriptionDeleted {
			o.Status = "canceled"
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

func (o EventOptions) customer() Customer {
	return Customer{ID: o.CustomerID, Email: o.Email, Name: o.Name, AccountID: o.AccountID, Created: o.Created, Livemode: o.Livemode}
}

func (o EventOptions) subscription() Subscription {
	s := Subscription{ID: o.SubscriptionID, Customer: o.CustomerID, Status: o.Status, PriceID: o.PriceID,
		Amount: o.Amount, Currency: o.Currency, PeriodEnd: o.PeriodEnd, Created: o.Created, Livemode: o.Livemode}
	if o.Type == typeSubscriptionDeleted {
		s.EndedAt = o.EndedAt
	}
	return s
}

func (o EventOptions) invoice() Invoice {
	in := Invoice{ID: o.InvoiceID, Customer: o.CustomerID, Subscription: o.SubscriptionID, Amount: o.Amount,
		Currency: o.Currency, AttemptCount: o.AttemptCount, NextAttempt: o.NextAttempt, HostedInvoiceURL: o.HostedInvoiceURL,
		PeriodEnd: o.PeriodEnd, Created: o.Created, Livemode: o.Livemode}
	if o.Type == typeInvoiceSucceeded {
		in.Paid, in.NextAttempt = true, time.Time{}
	}
	return in
}
