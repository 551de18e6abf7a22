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

// failingMailer stages through the real email service, except a batch that
// holds an overdue alert of one piece of equipment, which fails.
type failingMailer struct {
	*email.Service
	equipment string
}

func (m failingMailer) SendBatch(ctx context.Context, template string, items []email.Item) (email.BatchResult, error) {
	for _, it := range items {
		if d, ok := it.Data.(email.OverdueAlertData); ok && d.EquipmentName == m.equipment {
			return email.BatchResult{}, errMailer
		}
	}
	return m.Service.SendBatch(ctx, template, items)
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
	failing := compliance.New(w.store, failingMailer{email.NewService(w.client, w.store), "e3"}, discardLog(), compliance.Options{
		SiteURL: "https://app.example.com", ScanBatch: 2, ScanWorkers: 1, Now: func() time.Time { return now },
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

// failingEnqueuer passes the first ok enqueues to next and fails the rest.
type failingEnqueuer struct {
	next  *asynq.Client
	ok    int64
	calls atomic.Int64
}

func (e *failingEnqueuer) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	if e.calls.Add(1) > e.ok {
		return nil, errMailer
	}
	return e.next.EnqueueContext(ctx, task, opts...)
}

// A batch staged but never enqueued (Redis was down) stops the fan-out and
// leaves its reports unsent; the next fan-out enqueues that batch and sends
// the reports, each email once.
func TestFanOutStopsAtAFailedEnqueueAndRecovers(t *testing.T) {
	w := newWorld(t)
	var accs []int64
	for i := range 5 {
		id, _ := w.account(fmt.Sprint("acc", i), "UTC", "active")
		accs = append(accs, id)
	}
	week := postgres.WeekSpec{Ref: at(t, "2026-11-26T12:00:00Z")}
	enq := &failingEnqueuer{next: w.client, ok: 1}
	svc := compliance.New(w.store, email.NewService(enq, w.store), discardLog(), compliance.Options{AccountPage: 2})
	r, err := svc.FanOut(w.ctx, 0, week)
	require.ErrorIs(t, err, errMailer)
	assert.Equal(t, 2, r.Reported, "the first page went out")
	rep, err := w.store.WeeklyReport(w.ctx, accs[2], "2026-W47")
	require.NoError(t, err)
	assert.False(t, rep.SentAt.Valid, "the failed page's report stays unsent")

	r, err = w.service(at(t, "2026-11-26T12:00:00Z"), 0).FanOut(w.ctx, 0, week)
	require.NoError(t, err)
	assert.Equal(t, 3, r.Reported)
	assert.Equal(t, 2, r.AlreadySent)
	staged := w.emails() // every batch holding them is queued now
	assert.Len(t, staged, 5, "one email per owner, none twice")
}
