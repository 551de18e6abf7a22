package inbox_test

import (
	"context"
	"go/build"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/inbox"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/tasks"
)

func TestDecodeReadsBothKinds(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	snap := stripetest.MustBuildEvent(stripetest.EventOptions{Type: "invoice.payment_failed", ID: "evt_s", Created: created, Shape: stripetest.Shape2025, Livemode: true})
	ev, err := inbox.Decode(snap)
	require.NoError(t, err)
	assert.Equal(t, inbox.Envelope{ID: "evt_s", Type: "invoice.payment_failed", Kind: postgres.KindSnapshot, Created: created.Local(),
		APIVersion: stripetest.APIVersion2025, Livemode: true}, ev)
	assert.True(t, ev.Supported())

	thin := stripetest.MustBuildThinEvent(stripetest.ThinEventOptions{Type: "invoice.payment_failed", ID: "evt_t", Created: created, ObjectID: "in_1", SnapshotEvent: "evt_s"})
	ev, err = inbox.Decode(thin)
	require.NoError(t, err)
	assert.Equal(t, "v1.invoice.payment_failed", ev.Type)
	assert.Equal(t, "invoice.payment_failed", ev.SnapshotType())
	assert.Equal(t, postgres.KindThin, ev.Kind)
	assert.True(t, created.Equal(ev.Created))
	assert.Equal(t, "evt_s", ev.SnapshotEvent)
	assert.Equal(t, inbox.RelatedObject{ID: "in_1", Type: "invoice", URL: "/v1/invoices/in_1"}, ev.RelatedObject)
	assert.True(t, ev.Supported())
}

func TestDecodeRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct{ body, reason string }{
		{`nope`, "not a Stripe event: the body is not valid JSON"},
		{`"evt_1"`, "not a Stripe event: the body is JSON but not an object"},
		{`null`, "not a Stripe event: the body is JSON but not an object"},
		{`{}`, "not a Stripe event: missing id and type"},
		{`{"id":"evt_1"}`, "not a Stripe event: missing type"},
		{`{"id":"evt_1","type":["a"]}`, "not a Stripe event: type is an array, not a string"},
		{`{"id":"evt_1","type":"customer.created","created":"yesterday"}`, `event evt_1: created is "yesterday", not a Unix time in seconds`},
		{`{"id":"evt_1","type":"customer.created","created":1,"livemode":"yes"}`, "event evt_1: livemode is a string, not true or false"},
		{`{"id":"evt_1","type":"customer.created","created":1,"data":{"object":"cus_1"}}`, "event evt_1 (customer.created) has no data.object"},
		{`{"id":"evt_1","object":"v2.core.event","type":"v1.customer.created","created":"2026-11-30T10:00:00Z","related_object":{"type":"customer"}}`,
			"thin event evt_1 (v1.customer.created): related_object has no id or no type"},
		{`{"id":"evt_1","object":"v2.core.event","type":"v1.customer.created","created":"2026-11-30T10:00:00Z","related_object":"cus_1"}`,
			"thin event evt_1: related_object is a string, not an object with an id, a type and a url"},
	}
	for _, tc := range cases {
		_, err := inbox.Decode([]byte(tc.body))
		var r *inbox.Refusal
		if assert.ErrorAs(t, err, &r, tc.body) {
			assert.Equal(t, tc.reason, r.Reason, tc.body)
		}
	}
	// An unsupported type needs no object: it is dropped anyway.
	ev, err := inbox.Decode([]byte(`{"id":"evt_1","type":"charge.refunded","created":1}`))
	require.NoError(t, err)
	assert.False(t, ev.Supported())
}

func TestAcceptRecordsSourceAndDedups(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	in := &inbox.Intake{Store: store, Queue: client}
	ctx := context.Background()

	body := stripetest.MustBuildEvent(stripetest.EventOptions{Type: "customer.subscription.deleted", ID: "evt_sync1"})
	res := in.Accept(ctx, body, postgres.SourceSync)
	require.Equal(t, inbox.Accepted, res.Outcome, res.Reason)
	assert.True(t, res.Recorded)
	row, err := store.StripeEventByID(ctx, "evt_sync1")
	require.NoError(t, err)
	assert.Equal(t, postgres.SourceSync, row.Source)
	assert.Equal(t, postgres.KindSnapshot, row.Kind)
	_, err = insp.GetTaskInfo(tasks.QueueCritical, "evt_sync1")
	require.NoError(t, err)

	// The webhook delivering it afterwards finds a duplicate; the row keeps
	// the source it arrived by first.
	res = in.Accept(ctx, body, postgres.SourceWebhook)
	assert.Equal(t, inbox.Duplicate, res.Outcome)
	row, err = store.StripeEventByID(ctx, "evt_sync1")
	require.NoError(t, err)
	assert.Equal(t, postgres.SourceSync, row.Source)

	res = in.Accept(ctx, []byte(`{"id":"`+strings.Repeat("e", 300)+`","type":"customer.created","created":1}`), postgres.SourceSync)
	assert.Equal(t, inbox.Refused, res.Outcome)
	assert.False(t, res.Recorded)
	assert.Equal(t, "event id is 300 characters long; Stripe's are at most 255", res.Reason)

	res = in.Accept(ctx, []byte(`{"id":"evt_x","type":"charge.refunded","created":1}`), postgres.SourceSync)
	assert.Equal(t, inbox.Ignored, res.Outcome)
}

// The web process imports this package: it must reach no domain.
func TestInboxImportsNoDomainPackage(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	require.NoError(t, err)
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "github.com/cleantrack/jobs/") {
			assert.Contains(t, []string{
				"github.com/cleantrack/jobs/internal/postgres",
				"github.com/cleantrack/jobs/internal/queue",
				"github.com/cleantrack/jobs/tasks",
			}, imp)
		}
	}
}
