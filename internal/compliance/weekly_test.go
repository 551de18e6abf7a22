package compliance_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/postgres"
)

func TestParseISOWeek(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		monday  string
		wantErr bool
	}{
		{"2026-W47", "2026-11-16", false},
		{"2026-W01", "2025-12-29", false},
		{"2020-W53", "2020-12-28", false},
		{"2026-W53", "2026-12-28", false}, // 2026 starts on a Thursday: 53 weeks
		{"2027-W53", "", true},            // 2027 has 52
		{"2026-W00", "", true},
		{"2026-47", "", true},
		{"26-W47", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := compliance.ParseISOWeek(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.monday, got.Format("2006-01-02"))
			assert.Equal(t, tt.in, compliance.ISOWeek(got))
		})
	}
}

// TestWeeklyFiguresOnAHandBuiltHistory checks every figure and the compliance
// rate on a week whose cleanings are known one by one:
//
//	A (24 h): prev Sun 08:00; Mon 08:00 on time (exactly due); Tue 10:00 late
//	          (26 h); Wed 09:00 on time; then nothing: overdue from Thu 09:00.
//	B (48 h): created Nov 10, never cleaned: overdue at the week's end.
//	C (12 h): deactivated; cleaned Fri after 6 days: late; not counted overdue.
//	D (168 h): created Fri, never cleaned: not due before the end.
//	E (24 h, other location): created Fri 12:00; Sat 00:00, Sun 00:00 and
//	          Sun 23:00 on time; a cleaning at the next Monday 00:00 belongs
//	          to the next week.
//
// Cleanings 7 (A 3, C 1, E 3), on time 5, overdue at the end 2 (A, B):
// 5 / (7 + 2) = 55.6 %. Ward 1: 2 / (4 + 2) = 33.3 %; Ward 2: 100.0 %.
func TestWeeklyFiguresOnAHandBuiltHistory(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acc, _ := w.account("clinic", "UTC", "active")
	ward1 := w.location(acc, "Ward 1")
	ward2 := w.location(acc, "Ward 2")
	created := at(t, "2026-11-01T00:00:00Z")
	a := w.equipment(acc, ward1, equip{name: "A", interval: 24, created: created, cleanings: []time.Time{
		at(t, "2026-11-15T08:00:00Z"), at(t, "2026-11-16T08:00:00Z"), at(t, "2026-11-17T10:00:00Z"), at(t, "2026-11-18T09:00:00Z"),
	}})
	b := w.equipment(acc, ward1, equip{name: "B", interval: 48, created: at(t, "2026-11-10T00:00:00Z")})
	w.equipment(acc, ward1, equip{name: "C", interval: 12, created: created, inactive: true, cleanings: []time.Time{
		at(t, "2026-11-14T10:00:00Z"), at(t, "2026-11-20T10:00:00Z"),
	}})
	w.equipment(acc, ward1, equip{name: "D", interval: 168, created: at(t, "2026-11-20T00:00:00Z")})
	w.equipment(acc, ward2, equip{name: "E", interval: 24, created: at(t, "2026-11-20T12:00:00Z"), cleanings: []time.Time{
		at(t, "2026-11-21T00:00:00Z"), at(t, "2026-11-22T00:00:00Z"), at(t, "2026-11-22T23:00:00Z"), at(t, "2026-11-23T00:00:00Z"),
	}})
	now := at(t, "2026-11-23T06:00:00Z")
	// Two active alerts, A's the older.
	w.exec(`INSERT INTO alerts (account_id, equipment_id, kind, due_at) VALUES ($1, $2, 'cleaning_overdue', $3), ($1, $4, 'cleaning_overdue', $5)`,
		acc, b, at(t, "2026-11-12T00:00:00Z"), a, at(t, "2026-11-19T09:00:00Z"))

	rep, err := w.store.ComputeWeeklyReport(w.ctx, acc, postgres.WeekSpec{Ref: now}, now)
	require.NoError(t, err)
	assert.Equal(t, "2026-W47", rep.ISOWeek)
	assert.True(t, rep.PeriodStart.Equal(at(t, "2026-11-16T00:00:00Z")), rep.PeriodStart)
	assert.True(t, rep.PeriodEnd.Equal(at(t, "2026-11-23T00:00:00Z")), rep.PeriodEnd)
	assert.Equal(t, postgres.WeeklyFigures{
		TotalEquipment:     4,
		CleaningsCompleted: 7,
		CleaningsOnTime:    5,
		OverdueAtEnd:       2,
		ActiveAlerts:       2,
		ComplianceRate:     55.6,
		TopLocations: []postgres.LocationShare{
			{Name: "Ward 1", Cleanings: 4, ComplianceRate: 33.3},
			{Name: "Ward 2", Cleanings: 3, ComplianceRate: 100.0},
		},
		Alerts: []postgres.OpenAlert{
			{EquipmentName: "B", LocationName: "Ward 1", HoursOverdue: 11*24 + 6},
			{EquipmentName: "A", LocationName: "Ward 1", HoursOverdue: 3*24 + 21},
		},
	}, rep.Figures)
}

func TestWeeklyComplianceRateEdges(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	created := at(t, "2026-11-01T00:00:00Z")
	week := postgres.WeekSpec{Monday: at(t, "2026-11-16T00:00:00Z")}
	now := at(t, "2026-11-23T06:00:00Z")
	rate := func(acc int64) postgres.WeeklyFigures {
		t.Helper()
		rep, err := w.store.ComputeWeeklyReport(w.ctx, acc, week, now)
		require.NoError(t, err)
		return rep.Figures
	}

	t.Run("nothing due is 100.0", func(t *testing.T) {
		acc, _ := w.account("idle", "UTC", "active")
		loc := w.location(acc, "Ward")
		w.equipment(acc, loc, equip{name: "new", interval: 720, created: at(t, "2026-11-18T00:00:00Z")})
		f := rate(acc)
		assert.Equal(t, 100.0, f.ComplianceRate)
		assert.Equal(t, 0, f.CleaningsCompleted)
		assert.Empty(t, f.TopLocations)
	})
	t.Run("cleaned exactly at the due time is on time", func(t *testing.T) {
		acc, _ := w.account("exact", "UTC", "active")
		loc := w.location(acc, "Ward")
		w.equipment(acc, loc, equip{name: "x", interval: 24, created: at(t, "2026-11-20T12:00:00Z"), cleanings: []time.Time{
			at(t, "2026-11-21T12:00:00Z"), at(t, "2026-11-22T12:00:00Z"),
		}})
		f := rate(acc)
		assert.Equal(t, 2, f.CleaningsOnTime)
		assert.Equal(t, 100.0, f.ComplianceRate)
	})
	t.Run("one second late is late", func(t *testing.T) {
		acc, _ := w.account("late", "UTC", "active")
		loc := w.location(acc, "Ward")
		w.equipment(acc, loc, equip{name: "x", interval: 24, created: at(t, "2026-11-20T12:00:00Z"), cleanings: []time.Time{
			at(t, "2026-11-21T12:00:00Z"), at(t, "2026-11-22T12:00:01Z"),
		}})
		f := rate(acc)
		assert.Equal(t, 1, f.CleaningsOnTime)
		assert.Equal(t, 50.0, f.ComplianceRate)
	})
	t.Run("only overdue equipment is 0.0", func(t *testing.T) {
		acc, _ := w.account("neglect", "UTC", "active")
		loc := w.location(acc, "Ward")
		w.equipment(acc, loc, equip{name: "x", interval: 24, created: created})
		f := rate(acc)
		assert.Equal(t, 0.0, f.ComplianceRate)
		assert.Equal(t, 1, f.OverdueAtEnd)
	})
	t.Run("first cleaning compares with creation", func(t *testing.T) {
		acc, _ := w.account("first", "UTC", "active")
		loc := w.location(acc, "Ward")
		w.equipment(acc, loc, equip{name: "on time", interval: 48, created: at(t, "2026-11-20T00:00:00Z"), cleanings: []time.Time{at(t, "2026-11-21T00:00:00Z")}})
		w.equipment(acc, loc, equip{name: "late", interval: 24, created: at(t, "2026-11-17T00:00:00Z"), cleanings: []time.Time{at(t, "2026-11-21T00:00:00Z")}})
		f := rate(acc)
		// The late one is also overdue at the end (due Nov 22 00:00).
		assert.Equal(t, 1, f.CleaningsOnTime)
		assert.Equal(t, 1, f.OverdueAtEnd)
		assert.InDelta(t, 33.3, f.ComplianceRate, 1e-9)
	})
}

func TestWeeklyWeekFollowsTheAccountTimeZone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// Monday 06:00 UTC is still Sunday evening in Los Angeles, whose last full
	// week is therefore the one before; in Berlin and Auckland it is Monday.
	slot := at(t, "2026-11-23T06:00:00Z")
	created := at(t, "2026-11-01T00:00:00Z")
	la, _ := w.account("la", "America/Los_Angeles", "active")
	loc := w.location(la, "Ward")
	// 07:30 UTC on Nov 16 is Sunday 23:30 in LA: the week before W47 there.
	w.equipment(la, loc, equip{name: "x", interval: 240, created: created, cleanings: []time.Time{
		at(t, "2026-11-16T07:30:00Z"), at(t, "2026-11-16T08:30:00Z"), at(t, "2026-11-23T07:30:00Z"),
	}})
	berlin, _ := w.account("berlin", "Europe/Berlin", "active")
	auckland, _ := w.account("auckland", "Pacific/Auckland", "active")

	reps, err := w.store.RecordWeeklyReports(w.ctx, []int64{la, berlin, auckland}, postgres.WeekSpec{Ref: slot}, slot)
	require.NoError(t, err)
	weeks := map[int64]string{}
	for _, r := range reps {
		weeks[r.AccountID] = r.ISOWeek
	}
	assert.Equal(t, map[int64]string{la: "2026-W46", berlin: "2026-W47", auckland: "2026-W47"}, weeks)

	// W47 in LA runs from Nov 16 08:00 UTC to Nov 23 08:00 UTC: two of the
	// three cleanings fall in it.
	rep, err := w.store.ComputeWeeklyReport(w.ctx, la, postgres.WeekSpec{Monday: at(t, "2026-11-16T00:00:00Z")}, slot)
	require.NoError(t, err)
	assert.True(t, rep.PeriodStart.Equal(at(t, "2026-11-16T08:00:00Z")), rep.PeriodStart)
	assert.True(t, rep.PeriodEnd.Equal(at(t, "2026-11-23T08:00:00Z")), rep.PeriodEnd)
	assert.Equal(t, 2, rep.Figures.CleaningsCompleted)

	// The week of the end of summer time in Berlin lasts 169 hours.
	rep, err = w.store.ComputeWeeklyReport(w.ctx, berlin, postgres.WeekSpec{Monday: at(t, "2026-10-19T00:00:00Z")}, slot)
	require.NoError(t, err)
	assert.Equal(t, "2026-W43", rep.ISOWeek)
	assert.Equal(t, 169*time.Hour, rep.PeriodEnd.Sub(rep.PeriodStart))
	assert.True(t, rep.PeriodStart.Equal(at(t, "2026-10-18T22:00:00Z")), rep.PeriodStart)
}

func TestRecordedFiguresAreNotRecomputed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acc, _ := w.account("clinic", "UTC", "active")
	loc := w.location(acc, "Ward")
	eq := w.equipment(acc, loc, equip{name: "x", interval: 24, created: at(t, "2026-11-01T00:00:00Z"), cleanings: []time.Time{at(t, "2026-11-17T00:00:00Z")}})
	week := postgres.WeekSpec{Monday: at(t, "2026-11-16T00:00:00Z")}
	now := at(t, "2026-11-23T06:00:00Z")

	_, err := w.store.RecordWeeklyReports(w.ctx, []int64{acc}, week, now)
	require.NoError(t, err)
	w.clean(eq, at(t, "2026-11-18T00:00:00Z"))
	_, err = w.store.RecordWeeklyReports(w.ctx, []int64{acc}, week, now)
	require.NoError(t, err)

	rep, err := w.store.WeeklyReport(w.ctx, acc, "2026-W47")
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Figures.CleaningsCompleted, "the first recording stands")
}

func TestFanOutSkipsOnlyAnAccountWithAnUnknownTimeZone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := at(t, "2026-11-23T06:00:00Z")
	good1, _ := w.account("good1", "UTC", "active")
	bad, _ := w.account("bad", "Mars/Olympus", "active")
	good2, _ := w.account("good2", "Asia/Tokyo", "past_due")
	w.account("canceled", "UTC", "canceled")

	// Pages of two: the bad account shares its page with good1.
	r, err := w.service(now, 0).FanOut(w.ctx, 0, postgres.WeekSpec{Ref: now})
	require.NoError(t, err)
	assert.Equal(t, compliance.FanOutResult{Accounts: 3, Reported: 2, Emails: 2, Failed: 1}, r)
	for _, acc := range []int64{good1, good2} {
		rep, err := w.store.WeeklyReport(w.ctx, acc, "2026-W47")
		if assert.NoError(t, err, "account %d recorded", acc) {
			assert.True(t, rep.SentAt.Valid, "account %d reported", acc)
		}
	}
	_, err = w.store.WeeklyReport(w.ctx, bad, "2026-W47")
	assert.ErrorIs(t, err, postgres.ErrNotFound)

	var to []string
	for _, e := range w.emails() {
		to = append(to, e.To)
	}
	assert.ElementsMatch(t, []string{"good1-owner@example.com", "good2-owner@example.com"}, to)
}
