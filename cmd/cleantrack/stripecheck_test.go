package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/stripetest"
)

// stripeMock starts stripe-mock on loopback ports and returns its HTTP base
// URL. .ci/run installs it (go install github.com/stripe/stripe-mock@v0.203.0).
func stripeMock(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		if home, herr := os.UserHomeDir(); herr == nil {
			if p := filepath.Join(home, "go", "bin", "stripe-mock"); fileExists(p) {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("stripe-mock is not installed: go install github.com/stripe/stripe-mock@v0.203.0 (.ci/run does this)")
	}
	httpAddr, httpsAddr := loopbackAddr(t), loopbackAddr(t)
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", httpAddr); err == nil {
			c.Close()
			return "http://" + httpAddr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("stripe-mock did not start")
	return ""
}

func loopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestStripeCheckAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripeMock(t)
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
	assert.Contains(t, out, "1 endpoint(s) deliver every event")
	assert.Contains(t, out, "customer.subscription.created,customer.subscription.deleted")
	var calls []string
	for _, r := range api.Requests() {
		calls = append(calls, r.Method+" "+r.Path)
	}
	assert.Equal(t, []string{"GET /v1/balance", "GET /v1/webhook_endpoints"}, calls, "stripe check only reads")

	_, _, err = cli(t, nil, "stripe", "check")
	assert.ErrorContains(t, err, "STRIPE_SECRET_KEY is not set")
}
