package stripetest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

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
