package compliance_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/testfactory"
	"github.com/cleantrack/jobs/tasks"
)

// world is a test's database, Redis and a hand-built tenant history.
type world struct {
	t        *testing.T
	ctx      context.Context
	store    *postgres.Store
	redisURL string
	client   *asynq.Client
	insp     *asynq.Inspector
}

func newWorld(t *testing.T) *world {
	t.Helper()
	store, _ := pgtest.NewStore(t)
	redisURL := redistest.NewURL(t)
	opt, err := queue.RedisOpt(redisURL)
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() {
		insp.Close()
		client.Close()
	})
	return &world{t: t, ctx: context.Background(), store: store, redisURL: redisURL, client: client, insp: insp}
}

// service builds the compliance service on a fixed clock with small pages,
// so even a test's few rows span several of them.
func (w *world) service(now time.Time, grace time.Duration) *compliance.Service {
	return compliance.New(w.store, email.NewService(w.client, w.store), discardLog(), compliance.Options{
		SiteURL:     "https://app.example.com",
		Grace:       grace,
		ScanBatch:   2,
		AccountPage: 2,
		Now:         func() time.Time { return now },
	})
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (w *world) exec(q string, args ...any) {
	w.t.Helper()
	_, err := w.store.DB.ExecContext(w.ctx, q, args...)
	require.NoError(w.t, err)
}

// account creates an account whose owner is a new user "<slug>-owner".
func (w *world) account(slug, tz, status string) (accountID, ownerID int64) {
	w.t.Helper()
	a := testfactory.Account(w.t, w.store, &testfactory.AccountOpts{
		Slug: slug, Status: status, Timezone: tz,
		Owner: &testfactory.UserOpts{Email: slug + "-owner@example.com", FirstName: slug + "-owner", LastName: "Test"},
	})
	return a.ID, a.OwnerID
}

func (w *world) member(accountID int64, name, role string) int64 {
	w.t.Helper()
	return testfactory.Member(w.t, w.store, accountID, role, &testfactory.UserOpts{Email: name + "@example.com", FirstName: name, LastName: "Test"})
}

func (w *world) location(accountID int64, name string) int64 {
	w.t.Helper()
	return testfactory.Location(w.t, w.store, accountID, name)
}

func (w *world) protocol(accountID int64) int64 {
	w.t.Helper()
	return testfactory.Protocol(w.t, w.store, accountID)
}

// equip is a piece of equipment to create.
type equip struct {
	name      string
	interval  int // hours
	created   time.Time
	assignee  int64 // 0: nobody
	inactive  bool
	protocol  int64 // 0: none
	cleanings []time.Time
}

func (w *world) equipment(accountID, locationID int64, e equip) int64 {
	w.t.Helper()
	return testfactory.Equipment(w.t, w.store, accountID, locationID, &testfactory.EquipmentOpts{
		Name: e.name, IntervalHours: e.interval, CreatedAt: e.created, AssigneeID: e.assignee,
		Inactive: e.inactive, ProtocolID: e.protocol, Cleanings: e.cleanings,
	})
}

func (w *world) clean(equipmentID int64, at time.Time) {
	w.t.Helper()
	testfactory.Cleaning(w.t, w.store, equipmentID, 0, at)
}

// activeAlerts maps equipment id to alert id for the account's active alerts.
func (w *world) activeAlerts(accountID int64) map[int64]int64 {
	w.t.Helper()
	alerts, err := w.store.AccountAlerts(w.ctx, accountID)
	require.NoError(w.t, err)
	out := map[int64]int64{}
	for _, a := range alerts {
		if a.Status == "active" {
			out[a.EquipmentID] = a.ID
		}
	}
	return out
}

// queuedEmail is an email staged for a batch whose email:batch task waits
// in Redis.
type queuedEmail struct {
	Key      string          `db:"idempotency_key"`
	Template string          `db:"template"`
	To       string          `db:"to_email"`
	Data     json.RawMessage `db:"data"`
	Batch    string          `db:"task_key"`
}

// emails lists the emails staged in batches, by key, and checks that each
// batch's email:batch task is in the default queue under the batch's key.
func (w *world) emails() []queuedEmail {
	w.t.Helper()
	var out []queuedEmail
	require.NoError(w.t, w.store.DB.SelectContext(w.ctx, &out, `
		SELECT d.idempotency_key, d.template, d.to_email, d.data, b.task_key
		FROM email_deliveries d JOIN email_batches b ON b.id = d.batch_id
		ORDER BY d.idempotency_key`))
	seen := map[string]bool{}
	for _, e := range out {
		if seen[e.Batch] {
			continue
		}
		seen[e.Batch] = true
		info, err := w.insp.GetTaskInfo(tasks.QueueDefault, e.Batch)
		require.NoError(w.t, err, "batch %s is queued", e.Batch)
		require.Equal(w.t, tasks.TypeEmailBatch, info.Type)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func keys(es []queuedEmail) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Key+" "+e.To)
	}
	sort.Strings(out)
	return out
}

// at parses an RFC 3339 time.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}
