package billing_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/tasks"
)

func TestExpandableID(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in   string
		want string
		err  bool
	}{
		"id string":       {in: `"cus_1"`, want: "cus_1"},
		"expanded object": {in: `{"id":"cus_2","object":"customer","email":"a@example.com"}`, want: "cus_2"},
		"null":            {in: `null`, want: ""},
		"number":          {in: `42`, err: true},
		"array":           {in: `["cus_1"]`, err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var id billing.ExpandableID
			err := json.Unmarshal([]byte(tc.in), &id)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(id))
		})
	}
}

// TestShapesPutFieldsWhereStripeDoes checks the generator against the API
// change the decoder must survive: in 2025-03-31 the period end left the
// subscription and the invoice's subscription moved under parent.
func TestShapesPutFieldsWhereStripeDoes(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		shape, apiVersion string
	}{{stripetest.Shape2023, "2023-10-16"}, {stripetest.Shape2025, "2025-03-31.basil"}} {
		t.Run(tc.shape, func(t *testing.T) {
			raw, err := stripetest.BuildEvent(stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, Shape: tc.shape, SubscriptionID: "sub_1", PeriodEnd: end})
			require.NoError(t, err)
			var generic struct {
				APIVersion string `json:"api_version"`
				Data       struct {
					Object map[string]any `json:"object"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal(raw, &generic))
			assert.Equal(t, tc.apiVersion, generic.APIVersion)
			_, onSubscription := generic.Data.Object["current_period_end"]
			assert.Equal(t, tc.shape == stripetest.Shape2023, onSubscription)

			ev, err := billing.DecodeEvent(raw)
			require.NoError(t, err)
			sub, err := ev.DecodeSubscription()
			require.NoError(t, err)
			assert.True(t, end.Equal(sub.PeriodEnd()), "period end %s", sub.PeriodEnd())
			assert.Equal(t, "price_trial_monthly", sub.PriceID())

			raw, err = stripetest.BuildEvent(stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed, Shape: tc.shape, SubscriptionID: "sub_1", Expand: true})
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, &generic))
			_, topLevel := generic.Data.Object["subscription"]
			assert.Equal(t, tc.shape == stripetest.Shape2023, topLevel)
			ev, err = billing.DecodeEvent(raw)
			require.NoError(t, err)
			in, err := ev.DecodeInvoice()
			require.NoError(t, err)
			assert.Equal(t, "sub_1", in.SubscriptionID())
			assert.NotEmpty(t, string(in.Customer))
		})
	}
}

func TestDecodeEventRejectsNonEvents(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"not JSON":  `{"id":`,
		"no type":   `{"id":"evt_1","data":{"object":{}}}`,
		"no object": `{"id":"evt_1","type":"customer.created","data":{"object":null}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := billing.DecodeEvent([]byte(raw))
			require.Error(t, err)
			assert.True(t, errors.Is(err, billing.ErrMalformed))
		})
	}
}

// TestEveryTypeCanBeBuilt keeps the event builder and the types the handler
// applies in step.
func TestEveryTypeCanBeBuilt(t *testing.T) {
	t.Parallel()
	for _, typ := range tasks.StripeEventTypes {
		for _, shape := range stripetest.Shapes {
			raw, err := stripetest.BuildEvent(stripetest.EventOptions{Type: typ, Shape: shape})
			require.NoError(t, err, "%s in shape %s", typ, shape)
			ev, err := billing.DecodeEvent(raw)
			require.NoError(t, err)
			assert.Equal(t, typ, ev.Type)
		}
	}
}
