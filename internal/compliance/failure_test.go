package compliance_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
)

var errMailer = errors.New("mailer down")

// failingMailer enqueues through the real email service, except the overdue
// alerts of one piece of equipment, which fail.
type failingMailer struct {
	*email.Service
	equipment string
}

func (m failingMailer) SendOverdueAlertEmail(ctx context.Context, to string, data email.OverdueAlertData, key string) (string, error) {
	if data.EquipmentName == m.equipment {
		return "", errMailer
	}
	return m.Service.SendOverdueAlertEmail(ctx, to, data, key)
}

// A failed email stops the scan with that error and leaves its page's alerts
// unnotified; the next scan enqueues what is owed, then nothing more.
func TestScanStopsAtAFailedEmailAndOwesItsPage(t *testing.T) {
	w := newWorld(t)
	now := at(t, "2026-11-26T12:00:00Z")
	acc, _ := w.account("clinic", "UTC", "active")
	loc := w.location(acc, "Ward")
	ids := map[string]int64{}
	for i := range 6 { // three pages of two
		name := fmt.Sprint("e", i)
		ids[name] = w.equipment(acc, loc, equip{name: name, interval: 24, created: now.Add(-48 * time.Hour)})
	}
	failing := compliance.New(w.store, failingMailer{email.NewService(w.client, w.store), "e3"}, w.client, discardLog(), compliance.Options{
		SiteURL: "https://app.example.com", ScanBatch: 2, Now: func() time.Time { return now },
		// One at a time, in order: e2's email is enqueued before e3's fails.
		EnqueueWorkers: 1,
	})

	_, err := failing.Scan(w.ctx, 0)
	require.ErrorIs(t, err, errMailer)
	alerts, err := w.store.AccountAlerts(w.ctx, acc)
	require.NoError(t, err)
	for _, a := range alerts {
		if a.EquipmentID == ids["e2"] || a.EquipmentID == ids["e3"] {
			assert.False(t, a.NotifiedAt.Valid, "an alert on the failed email's page stays owed")
		}
	}

	r, err := w.service(now.Add(time.Minute), 0).Scan(w.ctx, 0)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, r.Notified, 1, "the failed page's alerts are notified now")
	alerts, err = w.store.AccountAlerts(w.ctx, acc)
	require.NoError(t, err)
	require.Len(t, alerts, 6)
	for _, a := range alerts {
		assert.True(t, a.NotifiedAt.Valid, "alert %d", a.ID)
	}
	r, err = w.service(now.Add(2*time.Minute), 0).Scan(w.ctx, 0)
	require.NoError(t, err)
	assert.Zero(t, r.Emails)
}

// failingEnqueuer accepts the first ok enqueues and fails the rest.
type failingEnqueuer struct {
	ok    int64
	calls atomic.Int64
}

func (e *failingEnqueuer) EnqueueContext(ctx context.Context, task *asynq.Task, _ ...asynq.Option) (*asynq.TaskInfo, error) {
	if e.calls.Add(1) > e.ok {
		return nil, errMailer
	}
	return &asynq.TaskInfo{ID: task.Type()}, nil
}

func TestFanOutStopsAtAFailedEnqueue(t *testing.T) {
	w := newWorld(t)
	for i := range 5 {
		w.account(fmt.Sprint("acc", i), "UTC", "active")
	}
	enq := &failingEnqueuer{ok: 1}
	svc := compliance.New(w.store, email.NewService(w.client, w.store), enq, discardLog(), compliance.Options{AccountPage: 2, EnqueueWorkers: 2})
	_, err := svc.FanOut(w.ctx, 0, postgres.WeekSpec{Ref: at(t, "2026-11-26T12:00:00Z")})
	require.ErrorIs(t, err, errMailer)
}
