package email

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Idempotency keys name one logical email and are at most 256 bytes, the
// most Resend takes, for every valid address: an address (up to 254 bytes)
// never appears in a key, only its RecipientTag, and an identifier from
// outside (a Stripe id) longer than maxKeyPart is replaced by its hash.
// The keys are stable: the same email always gets the same key.

// maxKeyPart is the longest outside identifier kept as it is in a key.
const maxKeyPart = 128

// RecipientTag stands for an address in a key: the first 16 hex digits of
// the SHA-256 of the address in lower case, so the key is the same
// whatever the address's case, and short whatever its length.
func RecipientTag(addr string) string {
	h := sha256.Sum256([]byte(strings.ToLower(addr)))
	return hex.EncodeToString(h[:8])
}

// keyPart is id, or "h" and the first 32 hex digits of its SHA-256 when it
// is longer than maxKeyPart.
func keyPart(id string) string {
	if len(id) <= maxKeyPart {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return "h" + hex.EncodeToString(h[:16])
}

// WelcomeKey is the idempotency key of a subscription's welcome email:
// "welcome/<subscription id>".
func WelcomeKey(subscriptionID string) string { return "welcome/" + keyPart(subscriptionID) }

// PaymentFailedKey is the idempotency key of the payment-failed email of one
// invoice attempt to one recipient:
// "payment_failed/<invoice id>/<attempt>/<RecipientTag(to)>".
func PaymentFailedKey(invoiceID string, attempt int, to string) string {
	return fmt.Sprintf("payment_failed/%s/%d/%s", keyPart(invoiceID), attempt, RecipientTag(to))
}
