package web

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTypeLabelKnowsEachProvidersTypes(t *testing.T) {
	t.Parallel()
	cases := []struct{ provider, typ, want string }{
		{"stripe", "customer.subscription.updated", "customer.subscription.updated"},
		{"stripe", "v1.invoice.payment_failed", "v1.invoice.payment_failed"},
		{"stripe", "charge.refunded", "other"},
		{"stripe", "v1.charge.refunded", "other"},
		{"stripe", "", "unknown"},
		{"resend", "email.bounced", "email.bounced"},
		{"resend", "email.complained", "email.complained"},
		{"resend", "email.opened", "other"},
		{"resend", "customer.subscription.updated", "other"},
		{"resend", "", "unknown"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, typeLabel(tc.provider, tc.typ), "%s %s", tc.provider, tc.typ)
	}
}
