package inbox

import (
	"crypto/hmac"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Verifier checks Stripe-Signature headers.
type Verifier struct {
	// Secrets are the endpoint's signing secrets; a signature made with any
	// of them is accepted (several during rotation).
	Secrets []string
	// Tolerance bounds how old, or how far in the future, the signature's
	// timestamp may be.
	Tolerance time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verify checks header against body, parsing the header itself so that the
// timestamp checked against the tolerance is the one the signature covers:
// exactly one t=, within Tolerance of now in either direction, and a v1=
// HMAC-SHA256 of "t.body" under one of the secrets. Only then is the body
// worth reading. The error is a *Refusal naming the problem.
func (v Verifier) Verify(body []byte, header string) error {
	ts, sigs, err := parseSignature(header)
	if err != nil {
		return err
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if ts.After(now.Add(v.Tolerance)) {
		return refuse("signature timestamp is in the future beyond the tolerance")
	}
	if now.Sub(ts) > v.Tolerance {
		return refuse("signature timestamp is older than the tolerance")
	}
	for _, secret := range v.Secrets {
		want := webhook.ComputeSignature(ts, body, secret)
		for _, sig := range sigs {
			if hmac.Equal(want, sig) {
				return nil
			}
		}
	}
	return refuse("no valid signature for any configured secret")
}

// parseSignature reads "t=1495999758,v1=ab12...,v1=cd34...,v0=...": exactly
// one t=, at least one v1= in hex. Other schemes are ignored, as Stripe
// documents.
func parseSignature(header string) (time.Time, [][]byte, error) {
	var ts time.Time
	var sigs [][]byte
	seenT := false
	for _, part := range strings.Split(header, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return time.Time{}, nil, refuse("malformed Stripe-Signature header: %q is not key=value", clip(part, 40))
		}
		switch k {
		case "t":
			if seenT {
				return time.Time{}, nil, refuse("malformed Stripe-Signature header: more than one t= timestamp")
			}
			seenT = true
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return time.Time{}, nil, refuse("malformed Stripe-Signature header: t= is not a Unix time")
			}
			ts = time.Unix(n, 0)
		case "v1":
			if sig, err := hex.DecodeString(val); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	switch {
	case !seenT:
		return time.Time{}, nil, refuse("malformed Stripe-Signature header: no t= timestamp")
	case len(sigs) == 0:
		return time.Time{}, nil, refuse("malformed Stripe-Signature header: no v1= signature")
	}
	return ts, sigs, nil
}
