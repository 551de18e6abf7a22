package billing_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cleantrack/jobs/internal/billing"
)

// FuzzDecodeEvent feeds arbitrary bytes to the payload decoder the worker
// runs on every inbox row: it must never panic, every refusal must wrap
// ErrMalformed (so the task is archived at once, not retried for days), and
// whatever it accepts must carry the ids the handler relies on.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []string{
		`{"id":"evt_1","type":"customer.subscription.updated","created":1700000000,"data":{"object":{"id":"sub_1","customer":"cus_1","status":"active","current_period_end":1702592000,"items":{"data":[{"price":{"id":"price_trial_monthly"}}]}}}}`,
		`{"id":"evt_2","type":"customer.subscription.updated","created":1700000000,"data":{"object":{"id":"sub_1","customer":{"id":"cus_1","object":"customer"},"status":"past_due","items":{"data":[{"current_period_end":1702592000,"price":{"id":"price_x"}}]}}}}`,
		`{"id":"evt_3","type":"customer.subscription.deleted","created":1700000000,"data":{"object":{"id":"sub_1","customer":"cus_1","status":"canceled","ended_at":1700000000,"canceled_at":null}}}`,
		`{"id":"evt_4","type":"invoice.payment_failed","created":1700000000,"data":{"object":{"id":"in_1","customer":"cus_1","subscription":"sub_1","amount_due":4900,"currency":"eur","attempt_count":2,"next_payment_attempt":1700259200,"hosted_invoice_url":"https://invoice.stripe.com/i/x"}}}`,
		`{"id":"evt_5","type":"invoice.payment_succeeded","created":1700000000,"data":{"object":{"id":"in_1","customer":{"id":"cus_1"},"parent":{"type":"subscription_details","subscription_details":{"subscription":{"id":"sub_1"}}},"amount_paid":4900,"currency":"usd"}}}`,
		`{"id":"evt_6","type":"customer.created","created":1700000000,"data":{"object":{"id":"cus_1","metadata":{"account_id":"42"}}}}`,
		`{"id":"evt_7","type":"customer.created","data":{"object":null}}`,
		`{"id":"evt_8","type":"customer.created","data":{"object":{"id":7}}}`,
		`{"id":"evt_9","type":"customer.subscription.created","data":{"object":{"id":"sub_1","customer":[],"status":"active"}}}`,
		`{"id":"evt_10","type":"invoice.payment_failed","data":{"object":{"id":"in_1","customer":"cus_1","next_payment_attempt":-9223372036854775808}}}`,
		`{"id":"evt_11","type":"customer.subscription.updated","created":9223372036854775807,"data":{"object":{"id":"sub_1","customer":"cus_1","status":"active","items":{"data":[]}}}}`,
		`{"id":"evt_12"}`, `[]`, `null`, `""`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := billing.DecodeEvent(raw)
		if err != nil {
			if !errors.Is(err, billing.ErrMalformed) {
				t.Fatalf("DecodeEvent error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" {
			t.Fatalf("accepted an event without id or type: %q %q", ev.ID, ev.Type)
		}
		_ = ev.CreatedAt()

		if c, err := ev.DecodeCustomer(); err == nil {
			if c.ID == "" {
				t.Fatal("accepted a customer without id")
			}
		} else if !errors.Is(err, billing.ErrMalformed) {
			t.Fatalf("DecodeCustomer error does not wrap ErrMalformed: %v", err)
		}

		if s, err := ev.DecodeSubscription(); err == nil {
			if s.ID == "" || s.Customer == "" || s.Status == "" {
				t.Fatalf("accepted a subscription without id, customer or status: %+v", s)
			}
			_, _, _ = s.PeriodEnd(), s.PriceID(), s.EndedTime()
		} else if !errors.Is(err, billing.ErrMalformed) {
			t.Fatalf("DecodeSubscription error does not wrap ErrMalformed: %v", err)
		}

		if in, err := ev.DecodeInvoice(); err == nil {
			if in.ID == "" || in.Customer == "" {
				t.Fatalf("accepted an invoice without id or customer: %+v", in)
			}
			_, _ = in.SubscriptionID(), in.NextAttempt()
		} else if !errors.Is(err, billing.ErrMalformed) {
			t.Fatalf("DecodeInvoice error does not wrap ErrMalformed: %v", err)
		}
	})
}

// FuzzShapesAgree writes the same subscription and invoice in the 2023-10-16
// shape and in the 2025-03-31 shape, with the ids plain or expanded, and
// requires the decoder to read the same period end and subscription id.
func FuzzShapesAgree(f *testing.F) {
	f.Add(int64(1702592000), "sub_1", "cus_1", false)
	f.Add(int64(0), "sub_\"x", "cus_é", true)
	f.Add(int64(1), "s", "c", true)
	f.Fuzz(func(t *testing.T, periodEnd int64, sub, cus string, expanded bool) {
		if sub == "" || cus == "" || periodEnd <= 0 {
			return // Stripe's ids are never empty, its timestamps never before 1970
		}
		ref := func(id string) string {
			if expanded {
				return fmt.Sprintf(`{"id":%s,"object":"x"}`, jsonString(id))
			}
			return jsonString(id)
		}
		old := fmt.Sprintf(`{"id":"evt_a","type":"customer.subscription.updated","created":1,"data":{"object":{"id":%s,"customer":%s,"status":"active","current_period_end":%d,"items":{"data":[{"price":{"id":"price_1"}}]}}}}`, jsonString(sub), ref(cus), periodEnd)
		basil := fmt.Sprintf(`{"id":"evt_b","type":"customer.subscription.updated","created":1,"data":{"object":{"id":%s,"customer":%s,"status":"active","items":{"data":[{"current_period_end":%d,"price":{"id":"price_1"}}]}}}}`, jsonString(sub), ref(cus), periodEnd)
		a := decodeSubscription(t, old)
		b := decodeSubscription(t, basil)
		if !a.PeriodEnd().Equal(b.PeriodEnd()) || a.Customer != b.Customer || a.PriceID() != b.PriceID() {
			t.Fatalf("shapes disagree: 2023 %v %q %q, 2025 %v %q %q", a.PeriodEnd(), a.Customer, a.PriceID(), b.PeriodEnd(), b.Customer, b.PriceID())
		}
		if !a.PeriodEnd().Equal(time.Unix(periodEnd, 0)) {
			t.Fatalf("period end %v, want %v", a.PeriodEnd(), time.Unix(periodEnd, 0))
		}

		oldInv := fmt.Sprintf(`{"id":"evt_c","type":"invoice.payment_failed","created":1,"data":{"object":{"id":"in_1","customer":%s,"subscription":%s}}}`, ref(cus), ref(sub))
		basilInv := fmt.Sprintf(`{"id":"evt_d","type":"invoice.payment_failed","created":1,"data":{"object":{"id":"in_1","customer":%s,"parent":{"type":"subscription_details","subscription_details":{"subscription":%s}}}}}`, ref(cus), ref(sub))
		var want string // sub as it reads back from JSON
		_ = json.Unmarshal([]byte(jsonString(sub)), &want)
		if x, y := decodeInvoice(t, oldInv).SubscriptionID(), decodeInvoice(t, basilInv).SubscriptionID(); x != want || y != want {
			t.Fatalf("invoice subscription: 2023 %q, 2025 %q, want %q", x, y, sub)
		}
	})
}

// jsonString is s as a JSON string literal (invalid UTF-8 becomes U+FFFD, as
// it would on the wire).
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func decodeSubscription(t *testing.T, raw string) billing.Subscription {
	t.Helper()
	ev, err := billing.DecodeEvent([]byte(raw))
	if err != nil {
		t.Fatalf("decode event: %v\n%s", err, raw)
	}
	s, err := ev.DecodeSubscription()
	if err != nil {
		t.Fatalf("decode subscription: %v\n%s", err, raw)
	}
	return s
}

func decodeInvoice(t *testing.T, raw string) billing.Invoice {
	t.Helper()
	ev, err := billing.DecodeEvent([]byte(raw))
	if err != nil {
		t.Fatalf("decode event: %v\n%s", err, raw)
	}
	in, err := ev.DecodeInvoice()
	if err != nil {
		t.Fatalf("decode invoice: %v\n%s", err, raw)
	}
	return in
}
