// Package address is the one check of an email address that CleanTrack stores
// or sends to. Every place an address enters (the store's user inserts, the
// demo seed, the CLI, the email service) asks Check, so an address that
// Resend would refuse, or that could smuggle a header into a message, never
// reaches a delivery.
package address

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
)

// Limits of RFC 5321: a path is at most 256 octets with its angle brackets,
// so an address is at most 254; the local part at most 64.
const (
	MaxLen      = 254
	MaxLocalLen = 64
)

// ErrInvalid is wrapped by every error Check returns.
var ErrInvalid = errors.New("invalid email address")

// Check returns nil when s is a bare email address (user@example.com) of at
// most MaxLen bytes, with a local part of at most MaxLocalLen bytes, free of
// control characters (CR and LF above all) and surrounding spaces, that
// net/mail parses to itself. The error wraps ErrInvalid and says what is
// wrong without repeating the address (it may be a log line's only content).
func Check(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrInvalid)
	case len(s) > MaxLen:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(s), MaxLen)
	case strings.ContainsFunc(s, isControl):
		return fmt.Errorf("%w: contains a control character (CR, LF, tab, ...)", ErrInvalid)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%w: leading or trailing space", ErrInvalid)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "mail: "))
	}
	if a.Address != s || a.Name != "" {
		return fmt.Errorf("%w: not a bare address like user@example.com", ErrInvalid)
	}
	at := strings.LastIndexByte(s, '@')
	if at > MaxLocalLen {
		return fmt.Errorf("%w: local part of %d bytes, more than %d", ErrInvalid, at, MaxLocalLen)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
