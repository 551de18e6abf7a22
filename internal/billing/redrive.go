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
}

// TaskLookup reads a task's state; *asynq.Inspector satisfies it.
type TaskLookup interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
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
	if res.Enqueued+res.Archived > 0 {
		h.log.LogAttrs(ctx, slog.LevelWarn, "stripe events re-driven from the inbox",
			slog.Time("slot", p.Slot),
			slog.Int("enqueued", res.Enqueued),
			slog.Int("duplicates", res.Duplicates),
			slog.Int("archived", res.Archived))
	}
	return nil
}

// Redrive enqueues a stripe:event task for every inbox row that is neither
// processed nor failed and was received more than Options.RedriveMinAge ago. The task
// keeps the event id as its TaskID, so a row whose task is still in Redis
// counts as a duplicate and is not doubled; one Redis lost is thus re-driven
// within a sweep. Running it twice at once is harmless for the same reason.
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
		for _, row := range page {
			task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: row.ID, Type: row.Type})
			if err != nil {
				return res, fmt.Errorf("redrive stripe event %s: %w", row.ID, err)
			}
			_, dup, err := queue.Enqueue(ctx, h.enq, task)
			if err != nil {
				return res, fmt.Errorf("redrive stripe event %s (%d enqueued before it): %w", row.ID, res.Enqueued, err)
			}
			if dup {
				archived, err := h.markArchived(ctx, row.ID)
				if err != nil {
					return res, err
				}
				if archived {
					res.Archived++
				} else {
					res.Duplicates++
				}
			} else {
				res.Enqueued++
			}
		}
		if len(page) < size {
			return res, nil
		}
		after = &page[len(page)-1]
	}
}

// markArchived checks whether the task holding eventID's TaskID is archived
// and, if so, marks the row failed with the task's last error: the last
// attempt could not record it (the database was down), and without this the
// row would stay pending while its archived task blocks every re-drive.
func (h *Handler) markArchived(ctx context.Context, eventID string) (bool, error) {
	if h.opt.Tasks == nil {
		return false, nil
	}
	info, err := h.opt.Tasks.GetTaskInfo(tasks.QueueCritical, eventID)
	if err != nil || info.State != asynq.TaskStateArchived {
		// Not found: the retention window of a completed task; nothing to do.
		return false, nil
	}
	reason := "task archived: " + info.LastErr
	changed, err := h.store.MarkStripeEventFailed(ctx, eventID, reason)
	if err != nil {
		return false, fmt.Errorf("redrive: %w", err)
	}
	return changed, nil
}
