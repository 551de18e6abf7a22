package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestCountNoun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n      int
		noun   string
		plural []string
		want   string
	}{
		{0, "event", nil, "0 events"},
		{1, "event", nil, "1 event"},
		{2, "event", nil, "2 events"},
		{1, "retry", nil, "1 retry"},
		{3, "retry", nil, "3 retries"},
		{2, "day", nil, "2 days"},
		{2, "match", nil, "2 matches"},
		{2, "live scheduler", nil, "2 live schedulers"},
		{2, "archived task", nil, "2 archived tasks"},
		{1, "new piece of equipment", []string{"new pieces of equipment"}, "1 new piece of equipment"},
		{5, "new piece of equipment", []string{"new pieces of equipment"}, "5 new pieces of equipment"},
	} {
		assert.Equal(t, tc.want, countNoun(tc.n, tc.noun, tc.plural...))
	}
}

func TestRFC3339IsUTC(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, paris)
	assert.Equal(t, "2026-11-30T09:00:00Z", rfc3339(at))
	assert.Equal(t, "2026-11-30T09:00:00Z", showTime(&at))
	assert.Equal(t, "-", showTime(nil))
}
