package address_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cleantrack/jobs/internal/address"
)

// Long241 is a valid address of 241 bytes: a 64-byte local part and a
// domain of labels of at most 63 bytes.
func long(n int) string {
	local := strings.Repeat("l", 64)
	domain := strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "."
	rest := n - len(local) - 1 - len(domain) - len(".com")
	return local + "@" + domain + strings.Repeat("f", rest) + ".com"
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"owner@example.com", "o.o+tag@sub.example.co.uk", long(241), long(254)} {
		assert.NoError(t, address.Check(ok), "%d bytes", len(ok))
	}
	assert.Len(t, long(241), 241)
	bad := map[string]string{
		"empty":          "",
		"too long":       long(255),
		"CR/LF":          "owner@example.com\r\nBcc: victim@example.com",
		"LF":             "owner@example.com\n",
		"tab":            "own\ter@example.com",
		"space":          " owner@example.com",
		"display name":   "Owner <owner@example.com>",
		"no at":          "owner.example.com",
		"long local":     strings.Repeat("l", 65) + "@example.com",
		"two addresses":  "a@example.com, b@example.com",
		"trailing angle": "owner@example.com>",
	}
	for name, s := range bad {
		err := address.Check(s)
		if assert.Error(t, err, name) {
			assert.True(t, errors.Is(err, address.ErrInvalid), name)
			if s != "" {
				assert.NotContains(t, err.Error(), s, "%s: the error must not repeat the address", name)
			}
		}
	}
}
