package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/stripetest"
)

func TestStripeCheckAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripetest.StartMock(t)
	out, _, err := cli(t, map[string]string{"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_API_BASE": base}, "stripe", "check")
	// stripe-mock's only endpoint listens for charge events elsewhere: the key
	// works, but CleanTrack is not set up there, and the command says so.
	require.Error(t, err)
	assert.Contains(t, out, "STRIPE_SECRET_KEY works (test mode)")
	assert.Contains(t, out, "https://example.com/my/webhook/endpoint")
	assert.Contains(t, out, "customer.subscription.created")
	assert.Contains(t, err.Error(), "not set up for CleanTrack")
}

func TestStripeCheckFindsOurEndpoint(t *testing.T) {
	t.Parallel()
	api := stripetest.NewAPI()
	defer api.Close()
	api.PutWebhookEndpoint(stripetest.WebhookEndpoint{URL: "https://app.example/billing/webhooks/stripe/", APIVersion: "2025-03-31.basil", EnabledEvents: []string{"*"}})
	api.PutWebhookEndpoint(stripetest.WebhookEndpoint{URL: "https://app.example/billing/webhooks/stripe", EnabledEvents: []string{"customer.created", "invoice.payment_failed"}})
	out, _, err := cli(t, map[string]string{"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_API_BASE": api.URL()}, "stripe", "check")
	require.NoError(t, err)
	assert.Contains(t, out, "live mode")
	assert.Contains(t, out, "1 endpoint delivers every event")
	assert.Contains(t, out, "customer.subscription.created,customer.subscription.deleted")
	var calls []string
	for _, r := range api.Requests() {
		calls = append(calls, r.Method+" "+r.Path)
	}
	assert.Equal(t, []string{"GET /v1/events", "GET /v1/webhook_endpoints"}, calls, "stripe check only reads")
	assert.Equal(t, "1", api.Requests()[0].Query.Get("limit"))

	out, _, err = cli(t, map[string]string{"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_API_BASE": api.URL()}, "stripe", "check", "--json")
	require.NoError(t, err)
	var got struct {
		Mode      string         `json:"mode"`
		Ready     int            `json:"ready"`
		Endpoints []endpointView `json:"endpoints"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, "live", got.Mode)
	assert.Equal(t, 1, got.Ready)
	require.Len(t, got.Endpoints, 2)
	for _, ep := range got.Endpoints {
		assert.True(t, ep.CleanTrackPath, ep.URL)
		assert.Equal(t, len(ep.MissingEvents) == 0, ep.Ready, ep.URL)
	}

	_, _, err = cli(t, nil, "stripe", "check")
	assert.ErrorContains(t, err, "STRIPE_SECRET_KEY is not set: thin events cannot be applied")
	assert.Equal(t, 1, exitCode(err))
}
