package email

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Date layouts used in every email; times are shown in the account's zone.
const (
	dateLayout     = "January 2, 2006"
	dateTimeLayout = "January 2, 2006 at 3:04 PM MST"
)

// zeroDecimal are ISO 4217 currencies whose minor unit is the unit itself
// (Stripe's list): an amount of 5000 JPY is ¥5,000, not ¥50.00.
var zeroDecimal = map[string]bool{
	"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true,
	"KMF": true, "KRW": true, "MGA": true, "PYG": true, "RWF": true,
	"UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true,
}

// threeDecimal are currencies with a thousandth minor unit.
var threeDecimal = map[string]bool{"BHD": true, "JOD": true, "KWD": true, "OMR": true, "TND": true}

// currencySymbols prefix the amount; other currencies are written "1,234.56 CHF".
var currencySymbols = map[string]string{
	"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$",
	"NZD": "NZ$", "INR": "₹", "KRW": "₩", "BRL": "R$", "MXN": "MX$",
}

// FormatMoney formats an amount in currency's minor unit (as Stripe sends it)
// in that currency: FormatMoney(123456, "usd") is "$1,234.56",
// FormatMoney(5000, "jpy") is "¥5,000".
func FormatMoney(minor int64, currency string) string {
	code := strings.ToUpper(strings.TrimSpace(currency))
	decimals := 2
	switch {
	case zeroDecimal[code]:
		decimals = 0
	case threeDecimal[code]:
		decimals = 3
	}
	neg := minor < 0
	if neg {
		minor = -minor
	}
	unit := int64(1)
	for range decimals {
		unit *= 10
	}
	s := groupThousands(strconv.FormatInt(minor/unit, 10))
	if decimals > 0 {
		s += fmt.Sprintf(".%0*d", decimals, minor%unit)
	}
	if sym, ok := currencySymbols[code]; ok {
		s = sym + s
	} else {
		s = s + " " + code
	}
	if neg {
		s = "-" + s
	}
	return s
}

func groupThousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	head := len(digits) % 3
	if head > 0 {
		b.WriteString(digits[:head])
	}
	for i := head; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// location resolves an account's IANA time zone name; empty means UTC.
func location(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("timezone %q is not a known time zone", tz)
	}
	return loc, nil
}

// asTime accepts a time.Time or *time.Time, as templates hand them over.
func asTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil {
			return time.Time{}, false
		}
		return *t, !t.IsZero()
	}
	return time.Time{}, false
}

// formatIn formats v (a time.Time or *time.Time) in zone tz with layout.
func formatIn(layout string, v any, tz string) (string, error) {
	t, ok := asTime(v)
	if !ok {
		return "", fmt.Errorf("no time to format: %v", v)
	}
	loc, err := location(tz)
	if err != nil {
		return "", err
	}
	return t.In(loc).Format(layout), nil
}

// FormatDate formats t as "January 2, 2006" in the zone tz.
func FormatDate(t time.Time, tz string) (string, error) { return formatIn(dateLayout, t, tz) }

// FormatDateTime formats t as "January 2, 2006 at 3:04 PM MST" in the zone tz.
func FormatDateTime(t time.Time, tz string) (string, error) { return formatIn(dateTimeLayout, t, tz) }

// plural picks the singular or plural noun for n: "1 hour", "8 hours".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// percent formats a rate held in percent with one decimal: 92.4%.
func percent(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "%" }
