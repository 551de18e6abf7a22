package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	// A fake of the two Stripe API calls, answering as Stripe does.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/balance":
			w.Write([]byte(`{"object":"balance","livemode":true,"available":[],"pending":[]}`))
		case "/v1/webhook_endpoints":
			w.Write([]byte(`{"object":"list","has_more":false,"url":"/v1/webhook_endpoints","data":[
				{"id":"we_1","object":"webhook_endpoint","url":"https://app.example/billing/webhooks/stripe/","status":"enabled","api_version":"2025-03-31.basil","enabled_events":["*"]},
				{"id":"we_2","object":"webhook_endpoint","url":"https://app.example/billing/webhooks/stripe","status":"enabled","enabled_events":["customer.created","invoice.payment_failed"]}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	out, _, err := cli(t, map[string]string{"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_API_BASE": api.URL}, "stripe", "check")
	require.NoError(t, err)
	assert.Contains(t, out, "live mode")
	assert.Contains(t, out, "1 endpoint(s) deliver every event")
	assert.Contains(t, out, "customer.subscription.created,customer.subscription.deleted")

	_, _, err = cli(t, nil, "stripe", "check")
	assert.ErrorContains(t, err, "STRIPE_SECRET_KEY is not set")
}
