package billing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// RedriveResult counts what one sweep did.
type RedriveResult struct {
	Enqueued   int // tasks put back in the queue: Redis had lost them
	Duplicates int // rows whose task was still queued, running or retrying
	// Archived counts rows whose task Asynq had archived without the row
	// saying so; the sweep marks them failed with the task's last error.
	Archived int
	// Released counts unmatched rows whose customer an account has by now,
	// made pending and enqueued.
	Released int
}

// TaskStates reads the state of stripe:event tasks for the sweep;
// *queue.Tasks satisfies it.
type TaskStates interface {
	// States returns the state of each task id in queue qname, in order:
	// asynq.TaskState's names, or "" when Redis holds no such task. One
	// round trip for all of them.
	States(ctx context.Context, qname string, ids []string) ([]string, error)
	// GetTaskInfo returns one task in full, for its last error.
	GetTaskInfo(qname, id string) (*asynq.TaskInfo, error)
}

// ProcessInboxRedrive is the stripe:inbox_redrive handler (one run per cron
// slot, enqueued by the scheduler). See Redrive.
func (h *Handler) ProcessInboxRedrive(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.InboxRedrivePayload](t)
	if err != nil {
		return err
	}
	res, err := h.Redrive(ctx)
	if err != nil {
		return err
	}
	if res.Enqueued+res.Archived+res.Released > 0 {
		h.log.LogAttrs(ctx, slog.LevelWarn, "stripe events re-driven from the inbox",
			slog.Time("slot", p.Slot),
			slog.Int("enqueued", res.Enqueued),
			slog.Int("duplicates", res.Duplicates),
			slog.Int("archived", res.Archived),
			slog.Int("released", res.Released))
	}
	return nil
}

// Redrive enqueues a stripe:event task for every pending inbox row (not
// processed, failed, unmatched or dismissed) received more than
// Options.RedriveMinAge ago whose task Redis lost. It reads the rows a page at
// a time and, with Options.Tasks, the state of the page's tasks in one round
// trip: a row whose task is still queued, running or retrying is a
// duplicate and costs nothing more; a row whose task is archived is marked
// failed with the task's last error; only a row without a task is enqueued.
// The task keeps the event id as its TaskID, so running it twice at once is
// harmless. Failed, unmatched and dismissed rows are left alone.
//
// Last, it releases the unmatched rows whose customer an account has by now,
// however it got linked (see ReleaseUnmatched).
func (h *Handler) Redrive(ctx context.Context) (RedriveResult, error) {
	var res RedriveResult
	size := h.opt.RedrivePageSize
	before := time.Now().Add(-h.opt.RedriveMinAge)
	var after *postgres.PendingStripeEvent
	for {
		page, err := h.store.PendingStripeEvents(ctx, before, after, size)
		if err != nil {
			return res, err
		}
		if err := h.redrivePage(ctx, page, &res); err != nil {
			return res, err
		}
		if len(page) < size {
			break
		}
		after = &page[len(page)-1]
	}
	released, err := h.ReleaseUnmatched(ctx, "")
	res.Released = released
	return res, err
}

// redrivePage handles one page of pending rows.
func (h *Handler) redrivePage(ctx context.Context, page []postgres.PendingStripeEvent, res *RedriveResult) error {
	states := make([]string, len(page))
	if h.opt.Tasks != nil && len(page) > 0 {
		ids := make([]string, len(page))
		for i, row := range page {
			ids[i] = row.ID
		}
		var err error
		if states, err = h.opt.Tasks.States(ctx, tasks.QueueCritical, ids); err != nil {
			return fmt.Errorf("redrive: %w", err)
		}
	}
	for i, row := range page {
		switch states[i] {
		case "":
			// Lost (or, without Options.Tasks, unknown): enqueue; a taken
			// id is a duplicate.
			dup, err := h.enqueue(ctx, row.ID, row.Type)
			if err != nil {
				return fmt.Errorf("redrive stripe event %s (%d enqueued before it): %w", row.ID, res.Enqueued, err)
			}
			if dup {
				res.Duplicates++
			} else {
				res.Enqueued++
			}
		case asynq.TaskStateArchived.String():
			archived, err := h.markArchived(ctx, row.ID)
			if err != nil {
				return err
			}
			if archived {
				res.Archived++
			} else {
				res.Duplicates++
			}
		default:
			res.Duplicates++
		}
	}
	return nil
}

// enqueue puts the event's stripe:event task in the queue, reporting a
// taken TaskID as a duplicate.
func (h *Handler) enqueue(ctx context.Context, eventID, eventType string) (duplicate bool, err error) {
	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: eventID, Type: eventType})
	if err != nil {
		return false, err
	}
	_, dup, err := queue.Enqueue(ctx, h.enq, task)
	return dup, err
}

// ReleaseUnmatched applies, by themselves, the unmatched inbox rows of
// customerID ("" for every customer) once an account has that customer: it
// makes them pending again and enqueues their stripe:event tasks, oldest
// first, through the normal path, so ordering (billing_event_at) and
// exactly-once hold as for any event. The customer.created handler calls it
// after linking, and every sweep for links made any other way. If an
// enqueue fails, the rows are pending and the sweep enqueues them. It returns
// how many rows it released.
func (h *Handler) ReleaseUnmatched(ctx context.Context, customerID string) (int, error) {
	rows, err := h.store.ReleaseUnmatchedStripeEvents(ctx, customerID)
	if err != nil {
		return 0, err
	}
	for i, row := range rows {
		if _, err := h.enqueue(ctx, row.ID, row.Type); err != nil {
			return len(rows), fmt.Errorf("release unmatched stripe event %s of customer %s (%d of %d enqueued; the sweep enqueues the rest): %w",
				row.ID, row.CustomerID, i, len(rows), err)
		}
	}
	if len(rows) > 0 {
		h.log.LogAttrs(ctx, slog.LevelInfo, "unmatched stripe events released",
			slog.String("customer_id", customerID), slog.Int("released", len(rows)))
	}
	return len(rows), nil
}

// markArchived marks eventID's row failed with its archived task's last
// error: the last attempt could not record it (the database was down), and
// without this the row would stay pending while its archived task blocks
// every re-drive. It reports whether the row changed.
func (h *Handler) markArchived(ctx context.Context, eventID string) (bool, error) {
	info, err := h.opt.Tasks.GetTaskInfo(tasks.QueueCritical, eventID)
	if err != nil || info.State != asynq.TaskStateArchived {
		// Gone or moved on meanwhile (a retry from the dashboard).
		return false, nil
	}
	reason := "task archived: " + info.LastErr
	changed, err := h.store.MarkStripeEventFailed(ctx, eventID, reason)
	if err != nil {
		return false, fmt.Errorf("redrive: %w", err)
	}
	return changed, nil
}
