package tasks_test

import (
	"encoding/json"
	"go/build"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/tasks"
)

func newQueue(t *testing.T) (*asynq.Client, *asynq.Inspector) {
	t.Helper()
	opt, err := asynq.ParseRedisURI(redistest.NewURL(t))
	require.NoError(t, err)
	c := asynq.NewClient(opt)
	i := asynq.NewInspector(opt)
	t.Cleanup(func() { c.Close(); i.Close() })
	return c, i
}

// Every constructor attaches its type's settings from tasks.Types and its
// TaskID, as a real enqueue into Redis shows.
func TestConstructorsAttachTheirOptions(t *testing.T) {
	client, insp := newQueue(t)
	slot := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		build  func() (*asynq.Task, error)
		typ    string
		wantID string // empty: a fresh id
	}{
		{"stripe event", func() (*asynq.Task, error) {
			return tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: "evt_1", Type: tasks.EventCustomerCreated})
		}, tasks.TypeStripeEvent, "evt_1"},
		{"inbox redrive", func() (*asynq.Task, error) {
			return tasks.NewInboxRedrive(tasks.InboxRedrivePayload{Slot: slot.Add(123 * time.Millisecond)})
		}, tasks.TypeInboxRedrive, "stripe:inbox_redrive:2026-11-23T06:00:00Z"},
		{"email send", func() (*asynq.Task, error) {
			return tasks.NewEmailSend(tasks.EmailSendPayload{Key: "welcome/sub_1", Template: "welcome", To: "a@example.com"})
		}, tasks.TypeEmailSend, "welcome/sub_1"},
		{"overdue scan slot", func() (*asynq.Task, error) {
			return tasks.NewOverdueScan(tasks.OverdueScanPayload{Slot: slot})
		}, tasks.TypeOverdueScan, "cleaning:overdue_scan:2026-11-23T06:00:00Z"},
		{"overdue scan manual", func() (*asynq.Task, error) {
			return tasks.NewOverdueScan(tasks.OverdueScanPayload{AccountID: 7})
		}, tasks.TypeOverdueScan, ""},
		{"weekly summary slot", func() (*asynq.Task, error) {
			return tasks.NewWeeklySummary(tasks.WeeklySummaryPayload{Slot: slot})
		}, tasks.TypeWeeklySummary, "report:weekly_summary:2026-11-23T06:00:00Z"},
		{"weekly summary manual", func() (*asynq.Task, error) {
			return tasks.NewWeeklySummary(tasks.WeeklySummaryPayload{Week: "2026-W47"})
		}, tasks.TypeWeeklySummary, ""},
		{"weekly summary account", func() (*asynq.Task, error) {
			return tasks.NewWeeklySummaryAccount(tasks.WeeklySummaryAccountPayload{AccountID: 7, Week: "2026-W47"})
		}, tasks.TypeWeeklySummaryAccount, "report:weekly_summary_account:7:2026-W47"},
		{"stripe sync slot", func() (*asynq.Task, error) {
			return tasks.NewStripeSync(tasks.StripeSyncPayload{Slot: slot})
		}, tasks.TypeStripeSync, "stripe:sync:2026-11-23T06:00:00Z"},
		{"stripe reconcile slot", func() (*asynq.Task, error) {
			return tasks.NewStripeReconcile(tasks.StripeReconcilePayload{Slot: slot})
		}, tasks.TypeStripeReconcile, "stripe:reconcile:2026-11-23T06:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task, err := tc.build()
			require.NoError(t, err)
			assert.Equal(t, tc.typ, task.Type())
			enqueued, err := client.Enqueue(task)
			require.NoError(t, err)
			want, ok := tasks.Types[tc.typ]
			require.True(t, ok, "%s is not in tasks.Types", tc.typ)
			info, err := insp.GetTaskInfo(want.Queue, enqueued.ID)
			require.NoError(t, err)
			if tc.wantID != "" {
				assert.Equal(t, tc.wantID, info.ID)
			} else {
				assert.NotContains(t, info.ID, ":", "a manual run gets a fresh id, not a slot's")
			}
			assert.Equal(t, want.Queue, info.Queue)
			assert.Equal(t, want.MaxRetry, info.MaxRetry)
			assert.Equal(t, want.Timeout, info.Timeout)
			assert.Equal(t, want.Retention, info.Retention)
		})
	}
}

// tasks.Types names every type with its queue, and nothing else.
func TestTypes(t *testing.T) {
	assert.Equal(t, map[string]string{
		tasks.TypeStripeEvent:          tasks.QueueCritical,
		tasks.TypeInboxRedrive:         tasks.QueueCritical,
		tasks.TypeEmailSend:            tasks.QueueDefault,
		tasks.TypeEmailBatch:           tasks.QueueDefault,
		tasks.TypeOverdueScan:          tasks.QueueLow,
		tasks.TypeWeeklySummary:        tasks.QueueLow,
		tasks.TypeWeeklySummaryAccount: tasks.QueueLow,
		tasks.TypeStripeSync:           tasks.QueueDefault,
		tasks.TypeStripeReconcile:      tasks.QueueLow,
	}, func() map[string]string {
		m := map[string]string{}
		for typ, s := range tasks.Types {
			m[typ] = s.Queue
		}
		return m
	}())
	for typ, s := range tasks.Types {
		assert.Positive(t, s.MaxRetry, typ)
		assert.Positive(t, s.Timeout, typ)
		assert.Positive(t, s.Retention, typ)
	}
	assert.Equal(t, tasks.StripeEventRetention, tasks.Types[tasks.TypeStripeEvent].Retention)
	assert.Equal(t, tasks.StripeEventMaxRetry, tasks.Types[tasks.TypeStripeEvent].MaxRetry)
}

// Options given at enqueue time override the constructor's.
func TestEnqueueOptionsOverride(t *testing.T) {
	client, insp := newQueue(t)
	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: "evt_override", Type: tasks.EventCustomerCreated})
	require.NoError(t, err)
	_, err = client.Enqueue(task, asynq.MaxRetry(2), asynq.Queue(tasks.QueueLow))
	require.NoError(t, err)
	info, err := insp.GetTaskInfo(tasks.QueueLow, "evt_override")
	require.NoError(t, err)
	assert.Equal(t, 2, info.MaxRetry)
	assert.Equal(t, tasks.StripeEventRetention, info.Retention, "options not overridden stay")
}

func TestConstructorsRefuseIncompletePayloads(t *testing.T) {
	for name, build := range map[string]func() (*asynq.Task, error){
		"stripe event without id": func() (*asynq.Task, error) {
			return tasks.NewStripeEvent(tasks.StripeEventPayload{Type: tasks.EventCustomerCreated})
		},
		"email without key": func() (*asynq.Task, error) {
			return tasks.NewEmailSend(tasks.EmailSendPayload{Template: "welcome", To: "a@example.com"})
		},
		"email with a key too long": func() (*asynq.Task, error) {
			return tasks.NewEmailSend(tasks.EmailSendPayload{Key: strings.Repeat("k", tasks.MaxEmailKeyLen+1), Template: "welcome", To: "a@example.com"})
		},
		"email without template": func() (*asynq.Task, error) {
			return tasks.NewEmailSend(tasks.EmailSendPayload{Key: "k", To: "a@example.com"})
		},
		"email without recipient": func() (*asynq.Task, error) {
			return tasks.NewEmailSend(tasks.EmailSendPayload{Key: "k", Template: "welcome"})
		},
		"weekly account without week": func() (*asynq.Task, error) {
			return tasks.NewWeeklySummaryAccount(tasks.WeeklySummaryAccountPayload{AccountID: 7})
		},
	} {
		t.Run(name, func(t *testing.T) {
			task, err := build()
			assert.Error(t, err)
			assert.Nil(t, task)
		})
	}
}

func TestEmailSendDefaultsDataToEmptyObject(t *testing.T) {
	task, err := tasks.NewEmailSend(tasks.EmailSendPayload{Key: "k", Template: "welcome", To: "a@example.com"})
	require.NoError(t, err)
	var p tasks.EmailSendPayload
	require.NoError(t, json.Unmarshal(task.Payload(), &p))
	assert.JSONEq(t, `{}`, string(p.Data))
}

func TestPayload(t *testing.T) {
	task, err := tasks.NewWeeklySummaryAccount(tasks.WeeklySummaryAccountPayload{AccountID: 7, Week: "2026-W47"})
	require.NoError(t, err)
	p, err := tasks.Payload[tasks.WeeklySummaryAccountPayload](task)
	require.NoError(t, err)
	assert.Equal(t, tasks.WeeklySummaryAccountPayload{AccountID: 7, Week: "2026-W47"}, p)

	_, err = tasks.Payload[tasks.WeeklySummaryAccountPayload](asynq.NewTask(tasks.TypeWeeklySummaryAccount, []byte(`{"account_id":`)))
	require.Error(t, err)
	assert.ErrorIs(t, err, asynq.SkipRetry, "a payload that does not decode never will")
	assert.Contains(t, err.Error(), "decode report:weekly_summary_account payload")
}

// tasks is the contract every process imports: it must stay free of the
// rest of CleanTrack.
func TestImportsOnlyAsynqAndTheStandardLibrary(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	require.NoError(t, err)
	for _, imp := range pkg.Imports {
		std := !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
		assert.True(t, std || imp == "github.com/hibiken/asynq", "tasks imports %s", imp)
	}
}

// NewFromJSON serves every type in Types through its constructor: the same
// queue, retries, timeout, retention and TaskID as the system's own task.
func TestNewFromJSON(t *testing.T) {
	payloads := map[string]string{
		tasks.TypeStripeEvent:          `{"event_id":"evt_json","type":"customer.created"}`,
		tasks.TypeInboxRedrive:         `{"slot":"2026-11-23T06:00:00Z"}`,
		tasks.TypeEmailSend:            `{"key":"k/1","template":"welcome","to":"a@example.com"}`,
		tasks.TypeEmailBatch:           `{"batch_id":7,"key":"batch/7"}`,
		tasks.TypeOverdueScan:          `{"account_id":7}`,
		tasks.TypeWeeklySummary:        `{"week":"2026-W47"}`,
		tasks.TypeWeeklySummaryAccount: `{"account_id":7,"week":"2026-W47"}`,
		tasks.TypeStripeSync:           `{"slot":"2026-11-23T06:00:00Z"}`,
		tasks.TypeStripeReconcile:      `{"slot":"2026-11-23T06:00:00Z"}`,
	}
	assert.Equal(t, len(tasks.Types), len(payloads), "a payload for every type")
	assert.Len(t, tasks.TypeNames(), len(tasks.Types))
	for _, typ := range tasks.TypeNames() {
		t.Run(typ, func(t *testing.T) {
			raw, ok := payloads[typ]
			require.True(t, ok, "no sample payload for %s", typ)
			got, err := tasks.NewFromJSON(typ, []byte(raw))
			require.NoError(t, err)
			assert.Equal(t, typ, got.Type())
			var back map[string]any
			require.NoError(t, json.Unmarshal(got.Payload(), &back))
			var in map[string]any
			require.NoError(t, json.Unmarshal([]byte(raw), &in))
			for k, v := range in {
				assert.Equal(t, v, back[k], "field %s kept", k)
			}
		})
	}
	id := func(typ, raw string) string {
		task, err := tasks.NewFromJSON(typ, []byte(raw))
		require.NoError(t, err)
		client, insp := newQueue(t)
		info, err := client.Enqueue(task)
		require.NoError(t, err)
		got, err := insp.GetTaskInfo(tasks.Types[typ].Queue, info.ID)
		require.NoError(t, err)
		assert.Equal(t, tasks.Types[typ].MaxRetry, got.MaxRetry)
		assert.Equal(t, tasks.Types[typ].Retention, got.Retention)
		return got.ID
	}
	assert.Equal(t, "evt_json", id(tasks.TypeStripeEvent, payloads[tasks.TypeStripeEvent]))
	assert.Equal(t, "report:weekly_summary_account:7:2026-W47", id(tasks.TypeWeeklySummaryAccount, payloads[tasks.TypeWeeklySummaryAccount]))

	_, err := tasks.NewFromJSON("overdue_scan", []byte(`{}`))
	assert.ErrorContains(t, err, `no task type "overdue_scan"`)
	_, err = tasks.NewFromJSON(tasks.TypeStripeEvent, []byte(`{"evnet_id":"evt_1"}`))
	assert.ErrorContains(t, err, `unknown field "evnet_id"`)
	_, err = tasks.NewFromJSON(tasks.TypeStripeEvent, []byte(`{}`))
	assert.ErrorContains(t, err, "empty event id", "the constructor's own checks apply")
}
