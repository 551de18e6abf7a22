package compliance_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/tasks"
)

func TestScanOpensOneAlertPerOverdueEquipmentAndEmailsOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := at(t, "2026-11-26T12:00:00Z")
	acc, owner := w.account("clinic", "Europe/Berlin", "active")
	admin := w.member(acc, "admin", "admin")
	manager := w.member(acc, "manager", "manager")
	tech := w.member(acc, "tech", "technician")
	loc := w.location(acc, "Ward 1")
	proto := w.protocol(acc)
	old := now.Add(-30 * 24 * time.Hour)
	h := time.Hour

	cases := []struct {
		e       equip
		overdue bool
	}{
		{equip{name: "cleaned 10 h ago", interval: 24, created: old, assignee: tech, cleanings: []time.Time{now.Add(-40 * h), now.Add(-10 * h)}}, false},
		{equip{name: "cleaned 25 h ago", interval: 24, created: old, assignee: tech, protocol: proto, cleanings: []time.Time{now.Add(-50 * h), now.Add(-25 * h)}}, true},
		{equip{name: "due exactly now", interval: 24, created: old, cleanings: []time.Time{now.Add(-24 * h)}}, false},
		{equip{name: "never cleaned, old", interval: 24, created: now.Add(-30 * h)}, true},
		{equip{name: "never cleaned, new", interval: 24, created: now.Add(-10 * h)}, false},
		{equip{name: "deactivated", interval: 24, created: old, inactive: true, cleanings: []time.Time{now.Add(-48 * h)}}, false},
	}
	want := map[int64]bool{}
	ids := map[string]int64{}
	for _, c := range cases {
		id := w.equipment(acc, loc, c.e)
		ids[c.e.name] = id
		if c.overdue {
			want[id] = true
		}
	}
	svc := w.service(now, 0)

	r, err := svc.Scan(w.ctx, 0)
	require.NoError(t, err)
	alerts := w.activeAlerts(acc)
	got := map[int64]bool{}
	for eq := range alerts {
		got[eq] = true
	}
	assert.Equal(t, want, got, "overdue set")
	assert.Equal(t, 2, r.Opened)
	// The assigned technician gets one email; unassigned equipment emails the
	// owner, the admin and the manager, never the technician.
	unassigned := alerts[ids["never cleaned, old"]]
	assigned := alerts[ids["cleaned 25 h ago"]]
	wantKeys := []string{
		fmt.Sprintf("overdue/%d/%d tech@example.com", assigned, tech),
		fmt.Sprintf("overdue/%d/%d clinic-owner@example.com", unassigned, owner),
		fmt.Sprintf("overdue/%d/%d admin@example.com", unassigned, admin),
		fmt.Sprintf("overdue/%d/%d manager@example.com", unassigned, manager),
	}
	first := w.emails()
	assert.ElementsMatch(t, wantKeys, keys(first))
	assert.Equal(t, 4, r.Emails)

	// The full template context of the assigned alert's email.
	for _, e := range first {
		if e.To != "tech@example.com" {
			continue
		}
		assert.Equal(t, email.TemplateOverdueAlert, e.Template)
		var d email.OverdueAlertData
		require.NoError(t, json.Unmarshal(e.Data, &d))
		require.NoError(t, d.Validate())
		assert.Equal(t, "tech Test", d.UserName)
		assert.Equal(t, "cleaned 25 h ago", d.EquipmentName)
		assert.Equal(t, "Ward 1", d.LocationName)
		assert.Equal(t, "Account clinic", d.AccountName)
		assert.Equal(t, 1, d.OverdueHours)
		assert.Equal(t, "Standard wipe-down", d.ProtocolName)
		assert.Equal(t, []string{"Power off", "Wipe every surface"}, d.ProtocolSteps)
		assert.Equal(t, []string{"EPA-approved disinfectant"}, d.RequiredChemicals)
		assert.Equal(t, 15, d.EstimatedDuration)
		assert.Equal(t, fmt.Sprintf("https://app.example.com/equipment/%d", ids["cleaned 25 h ago"]), d.EquipmentURL)
		require.NotNil(t, d.LastCleanedDate)
		assert.True(t, d.LastCleanedDate.Equal(now.Add(-25*h)))
		assert.Equal(t, "Europe/Berlin", d.Timezone)
	}

	// A second scan opens nothing and enqueues nothing.
	r, err = svc.Scan(w.ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 0, r.Opened)
	assert.Equal(t, 0, r.Emails)
	assert.Equal(t, alerts, w.activeAlerts(acc))
	assert.ElementsMatch(t, wantKeys, keys(w.emails()))
}

func TestScanGraceDelaysOverdue(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := at(t, "2026-11-26T12:00:00Z")
	acc, _ := w.account("clinic", "UTC", "active")
	loc := w.location(acc, "Ward 1")
	old := now.Add(-30 * 24 * time.Hour)
	within := w.equipment(acc, loc, equip{name: "1 h late", interval: 24, created: old, cleanings: []time.Time{now.Add(-25 * time.Hour)}})
	beyond := w.equipment(acc, loc, equip{name: "3 h late", interval: 24, created: old, cleanings: []time.Time{now.Add(-27 * time.Hour)}})

	_, err := w.service(now, 2*time.Hour).Scan(w.ctx, 0)
	require.NoError(t, err)
	alerts := w.activeAlerts(acc)
	assert.Contains(t, alerts, beyond)
	assert.NotContains(t, alerts, within)
}

func TestScanResolvesCleanedAndDeactivatedEquipment(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := at(t, "2026-11-26T12:00:00Z")
	acc, owner := w.account("clinic", "UTC", "active")
	loc := w.location(acc, "Ward 1")
	old := now.Add(-30 * 24 * time.Hour)
	cleaned := w.equipment(acc, loc, equip{name: "to be cleaned", interval: 24, created: old, cleanings: []time.Time{now.Add(-30 * time.Hour)}})
	retired := w.equipment(acc, loc, equip{name: "to be retired", interval: 24, created: old, cleanings: []time.Time{now.Add(-30 * time.Hour)}})
	untouched := w.equipment(acc, loc, equip{name: "still overdue", interval: 24, created: old, cleanings: []time.Time{now.Add(-30 * time.Hour)}})

	_, err := w.service(now, 0).Scan(w.ctx, 0)
	require.NoError(t, err)
	before := w.activeAlerts(acc)
	require.Len(t, before, 3)

	w.clean(cleaned, now.Add(30*time.Minute))
	w.exec(`UPDATE equipment SET active = false WHERE id = $1`, retired)
	later := now.Add(time.Hour)
	r, err := w.service(later, 0).Scan(w.ctx, 0)
	require.NoError(t, err)
	assert.EqualValues(t, 2, r.Resolved)
	assert.Equal(t, map[int64]int64{untouched: before[untouched]}, w.activeAlerts(acc))

	// Overdue again a day later: a new alert, and a new email for it.
	again := later.Add(25 * time.Hour)
	r, err = w.service(again, 0).Scan(w.ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, r.Opened)
	newAlert := w.activeAlerts(acc)[cleaned]
	require.NotZero(t, newAlert)
	assert.NotEqual(t, before[cleaned], newAlert)
	assert.Contains(t, keys(w.emails()), fmt.Sprintf("overdue/%d/%d clinic-owner@example.com", newAlert, owner))
}

func TestScanEnqueuesEmailsOwedByAnAlertOpenedBeforeACrash(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := at(t, "2026-11-26T12:00:00Z")
	acc, owner := w.account("clinic", "UTC", "active")
	loc := w.location(acc, "Ward 1")
	eq := w.equipment(acc, loc, equip{name: "overdue", interval: 24, created: now.Add(-48 * time.Hour)})

	// A scan that died right after opening the alert: no email went out.
	owed, err := w.store.OpenOverdueAlerts(w.ctx, 0, 0, eq, now, now)
	require.NoError(t, err)
	require.Len(t, owed, 1)
	require.True(t, owed[0].Opened)
	require.Empty(t, w.emails())

	r, err := w.service(now.Add(15*time.Minute), 0).Scan(w.ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 0, r.Opened)
	assert.Equal(t, 1, r.Notified)
	alert := w.activeAlerts(acc)[eq]
	assert.Equal(t, []string{fmt.Sprintf("overdue/%d/%d clinic-owner@example.com", alert, owner)}, keys(w.emails()))

	r, err = w.service(now.Add(30*time.Minute), 0).Scan(w.ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 0, r.Emails, "an alert is notified once")
}

func TestScanOfOneAccountLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := at(t, "2026-11-26T12:00:00Z")
	a, aOwner := w.account("a", "UTC", "active")
	b, _ := w.account("b", "UTC", "active")
	var aIDs []int64
	for _, acc := range []int64{a, b} {
		loc := w.location(acc, "Ward")
		for i := range 3 {
			id := w.equipment(acc, loc, equip{name: fmt.Sprint("e", i), interval: 24, created: now.Add(-48 * time.Hour)})
			if acc == a {
				aIDs = append(aIDs, id)
			}
		}
	}
	r, err := w.service(now, 0).Scan(w.ctx, a)
	require.NoError(t, err)
	assert.Equal(t, 3, r.Opened)
	alerts := w.activeAlerts(a)
	var alerted []int64
	for eq := range alerts {
		alerted = append(alerted, eq)
	}
	assert.ElementsMatch(t, aIDs, alerted, "one alert for each piece of account a's equipment")
	assert.Empty(t, w.activeAlerts(b))
	var want []string
	for _, eq := range aIDs {
		want = append(want, fmt.Sprintf("overdue/%d/%d a-owner@example.com", alerts[eq], aOwner))
	}
	sort.Strings(want)
	assert.Equal(t, want, keys(w.emails()), "only account a's owner is told, once per alert")
}

func TestHandleOverdueScanRejectsABadPayload(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	err := w.service(time.Now(), 0).HandleOverdueScan(w.ctx, asynq.NewTask(tasks.TypeOverdueScan, []byte("{")))
	assert.ErrorIs(t, err, asynq.SkipRetry)
}

// The overdue scan's handler re-drives a single email whose task Redis lost
// once it has waited EmailRedriveAge, and not before.
func TestHandleOverdueScanRedrivesALostSingleEmail(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	svc := email.NewService(w.client, w.store)
	_, err := svc.SendWelcomeEmail(w.ctx, "owner@example.com", email.WelcomeData{
		AccountName: "Clinic", PlanName: "Pro", DashboardURL: "https://app.example.com",
	}, "welcome/sub_scan")
	require.NoError(t, err)
	redistest.Flush(t, w.redisURL)

	scan := func(age time.Duration) {
		t.Helper()
		s := compliance.New(w.store, svc, discardLog(), compliance.Options{EmailRedriveAge: age})
		task, err := tasks.NewOverdueScan(tasks.OverdueScanPayload{})
		require.NoError(t, err)
		require.NoError(t, s.HandleOverdueScan(w.ctx, task))
	}
	taskKey := func() bool {
		for _, k := range redistest.Keys(t, w.redisURL) {
			if strings.HasSuffix(k, ":t:welcome/sub_scan") {
				return true
			}
		}
		return false
	}
	scan(0) // the default, 10 minutes: too young to re-drive
	assert.False(t, taskKey(), "a fresh email is not re-driven")
	scan(time.Nanosecond)
	assert.True(t, taskKey(), "the email:send task is back in Redis")
}
