//go:build bench || drills

package bench

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Shape selects the Stripe API version an event is written in.
type Shape int

// The two shapes CleanTrack must read: before and after API 2025-03-31 moved
// current_period_end onto the items and invoice.subscription under parent.
const (
	Shape2023 Shape = iota
	Shape2025
)

func (s Shape) apiVersion() string {
	if s == Shape2025 {
		return "2025-03-31.basil"
	}
	return "2023-10-16"
}

// Subscription describes the subscription an event carries.
type Subscription struct {
	ID        string
	Customer  string
	Status    string
	PriceID   string
	PeriodEnd time.Time
	EndedAt   time.Time // for customer.subscription.deleted
}

// Invoice describes the invoice an invoice.* event carries.
type Invoice struct {
	ID           string
	Customer     string
	Subscription string
	AmountDue    int64
	AmountPaid   int64
	Currency     string
	Attempt      int
	NextAttempt  time.Time
	Paid         bool
}

// SubscriptionEvent builds a customer.subscription.* event body.
func SubscriptionEvent(id, eventType string, created time.Time, s Subscription, shape Shape) []byte {
	item := map[string]any{
		"id":       "si_" + s.ID,
		"object":   "subscription_item",
		"price":    map[string]any{"id": s.PriceID, "object": "price", "currency": "usd", "unit_amount": 4900, "recurring": map[string]any{"interval": "month"}},
		"quantity": 1,
	}
	obj := map[string]any{
		"id":                   s.ID,
		"object":               "subscription",
		"customer":             s.Customer,
		"status":               s.Status,
		"cancel_at_period_end": false,
		"created":              created.Add(-time.Hour).Unix(),
		"currency":             "usd",
		"livemode":             false,
		"metadata":             map[string]any{},
		"items":                map[string]any{"object": "list", "data": []any{item}, "has_more": false},
	}
	start := s.PeriodEnd.AddDate(0, -1, 0).Unix()
	if shape == Shape2025 {
		item["current_period_start"] = start
		item["current_period_end"] = s.PeriodEnd.Unix()
	} else {
		obj["current_period_start"] = start
		obj["current_period_end"] = s.PeriodEnd.Unix()
	}
	if !s.EndedAt.IsZero() {
		obj["ended_at"] = s.EndedAt.Unix()
		obj["canceled_at"] = s.EndedAt.Unix()
	} else {
		obj["ended_at"] = nil
		obj["canceled_at"] = nil
	}
	return envelope(id, eventType, created, obj, shape)
}

// InvoiceEvent builds an invoice.payment_succeeded or invoice.payment_failed
// event body.
func InvoiceEvent(id, eventType string, created time.Time, in Invoice, shape Shape) []byte {
	obj := map[string]any{
		"id":                 in.ID,
		"object":             "invoice",
		"customer":           in.Customer,
		"amount_due":         in.AmountDue,
		"amount_paid":        in.AmountPaid,
		"currency":           in.Currency,
		"attempt_count":      in.Attempt,
		"hosted_invoice_url": "https://invoice.stripe.com/i/acct_bench/" + in.ID,
		"livemode":           false,
		"status":             "open",
		"created":            created.Add(-time.Minute).Unix(),
	}
	if in.NextAttempt.IsZero() {
		obj["next_payment_attempt"] = nil
	} else {
		obj["next_payment_attempt"] = in.NextAttempt.Unix()
	}
	if in.Paid {
		obj["status"] = "paid"
		obj["status_transitions"] = map[string]any{"paid_at": created.Unix()}
	}
	if shape == Shape2025 {
		obj["parent"] = map[string]any{
			"type":                 "subscription_details",
			"subscription_details": map[string]any{"subscription": in.Subscription, "metadata": map[string]any{}},
		}
	} else {
		obj["subscription"] = in.Subscription
	}
	return envelope(id, eventType, created, obj, shape)
}

// CustomerEvent builds a customer.created event whose metadata names the
// CleanTrack account.
func CustomerEvent(id string, created time.Time, customer, email string, accountID int64, shape Shape) []byte {
	obj := map[string]any{
		"id":       customer,
		"object":   "customer",
		"email":    email,
		"created":  created.Unix(),
		"livemode": false,
		"metadata": map[string]any{"account_id": fmt.Sprint(accountID)},
	}
	return envelope(id, "customer.created", created, obj, shape)
}

func envelope(id, eventType string, created time.Time, obj map[string]any, shape Shape) []byte {
	ev := map[string]any{
		"id":               id,
		"object":           "event",
		"api_version":      shape.apiVersion(),
		"created":          created.Unix(),
		"data":             map[string]any{"object": obj},
		"livemode":         false,
		"pending_webhooks": 1,
		"request":          map[string]any{"id": nil, "idempotency_key": nil},
		"type":             eventType,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
	return b
}

// Sign returns the Stripe-Signature header for body, signed with secret at t.
func Sign(body []byte, secret string, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: t}).Header
}
