package stripetest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/internal/stripetest"
)

func TestBuildEventRejectsUnknownTypeAndShape(t *testing.T) {
	t.Parallel()
	_, err := stripetest.BuildEvent(stripetest.EventOptions{Type: "charge.refunded"})
	assert.ErrorContains(t, err, "unsupported type")
	_, err = stripetest.BuildEvent(stripetest.EventOptions{Type: "customer.created", Shape: "2019"})
	assert.ErrorContains(t, err, "shape")
	_, err = stripetest.BuildEvent(stripetest.EventOptions{})
	assert.ErrorContains(t, err, "a type is required")
}

func TestBuildEventDefaults(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	raw, err := stripetest.BuildEvent(stripetest.EventOptions{Type: "customer.subscription.deleted", Created: created, Shape: stripetest.Shape2025})
	require.NoError(t, err)
	var ev struct {
		ID         string `json:"id"`
		Object     string `json:"object"`
		APIVersion string `json:"api_version"`
		Created    int64  `json:"created"`
		Data       struct {
			Object struct {
				ID       string `json:"id"`
				Customer string `json:"customer"`
				Status   string `json:"status"`
				EndedAt  int64  `json:"ended_at"`
				Items    struct {
					Data []struct {
						CurrentPeriodEnd int64 `json:"current_period_end"`
					} `json:"data"`
				} `json:"items"`
			} `json:"object"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &ev))
	assert.Regexp(t, `^evt_1\w{24}$`, ev.ID)
	assert.Equal(t, "event", ev.Object)
	assert.Equal(t, stripetest.APIVersion2025, ev.APIVersion)
	assert.Equal(t, created.Unix(), ev.Created)
	sub := ev.Data.Object
	assert.Regexp(t, `^sub_`, sub.ID)
	assert.Regexp(t, `^cus_`, sub.Customer)
	assert.Equal(t, "canceled", sub.Status, "a deleted subscription is canceled")
	assert.Equal(t, created.Unix(), sub.EndedAt)
	require.Len(t, sub.Items.Data, 1)
	assert.Equal(t, created.AddDate(0, 0, 30).Unix(), sub.Items.Data[0].CurrentPeriodEnd)
}

func TestSignVerifiesWithStripe(t *testing.T) {
	t.Parallel()
	raw, err := stripetest.BuildEvent(stripetest.EventOptions{Type: "customer.created", Shape: stripetest.Shape2025})
	require.NoError(t, err)
	header := stripetest.Sign(raw, "whsec_a", time.Now())

	ev, err := webhook.ConstructEventWithOptions(raw, header, "whsec_a", webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	require.NoError(t, err)
	assert.Equal(t, "customer.created", string(ev.Type))
	_, err = webhook.ConstructEventWithOptions(raw, header, "whsec_b", webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	assert.Error(t, err)
	_, err = webhook.ConstructEventWithOptions(raw, stripetest.Sign(raw, "whsec_a", time.Now().Add(-time.Hour)), "whsec_a", webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	assert.Error(t, err, "an hour-old signature is outside the tolerance")
}

func TestBuildThinEvent(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 30, 10, 0, 0, 5e8, time.UTC)
	raw, err := stripetest.BuildThinEvent(stripetest.ThinEventOptions{Type: "invoice.payment_failed", Created: created, SnapshotEvent: "evt_snap"})
	require.NoError(t, err)
	var ev struct {
		ID            string `json:"id"`
		Object        string `json:"object"`
		Type          string `json:"type"`
		Created       string `json:"created"`
		SnapshotEvent string `json:"snapshot_event"`
		Related       struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"related_object"`
	}
	require.NoError(t, json.Unmarshal(raw, &ev))
	assert.Regexp(t, `^evt_test_`, ev.ID)
	assert.Equal(t, "v2.core.event", ev.Object)
	assert.Equal(t, "v1.invoice.payment_failed", ev.Type)
	assert.Equal(t, "2026-11-30T10:00:00.500Z", ev.Created)
	assert.Equal(t, "evt_snap", ev.SnapshotEvent)
	assert.Regexp(t, `^in_`, ev.Related.ID)
	assert.Equal(t, "invoice", ev.Related.Type)
	assert.Equal(t, "/v1/invoices/"+ev.Related.ID, ev.Related.URL)

	// Signed as Stripe signs snapshot events.
	header := stripetest.Sign(raw, "whsec_a", time.Now())
	assert.NoError(t, webhook.ValidatePayload(raw, header, "whsec_a"))

	_, err = stripetest.BuildThinEvent(stripetest.ThinEventOptions{Type: "v1.charge.refunded"})
	assert.ErrorContains(t, err, "unsupported type")
}
