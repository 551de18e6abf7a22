//go:build drills

package drill

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cleantrack/jobs/tasks"
)

// everyMinute makes every scheduler entry fire each minute.
var everyMinute = map[string]string{
	"OVERDUE_SCAN_CRON":   "* * * * *",
	"WEEKLY_SUMMARY_CRON": "* * * * *",
	"INBOX_REDRIVE_CRON":  "* * * * *",
	"SCHEDULER_TIMEZONE":  "UTC",
}

// waitPast sleeps until d after the next minute boundary and returns that
// boundary.
func waitPast(ctx context.Context, d time.Duration) (time.Time, error) {
	slot := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	select {
	case <-ctx.Done():
		return slot, ctx.Err()
	case <-time.After(time.Until(slot.Add(d))):
		return slot, nil
	}
}

// Drill 7: two schedulers fire the same slots, then both stop across a slot
// and restart together: each slot is enqueued once, and the missed one is
// caught up once. Then Redis loses everything (FLUSHALL) and both restart
// again: their catch-up finds the slot claimed in PostgreSQL and enqueues
// nothing a second time.
func drillSchedulers(ctx context.Context, c *Case) error {
	startBoth := func() error {
		for _, name := range []string{"scheduler-a", "scheduler-b"} {
			if _, err := c.Start(ctx, name, "scheduler", everyMinute); err != nil {
				return err
			}
		}
		return nil
	}
	if err := startBoth(); err != nil {
		return err
	}
	s1, err := waitPast(ctx, 5*time.Second)
	if err != nil {
		return err
	}
	c.Injected("two schedulers running through slot %s", s1.Format("15:04"))
	c.Stop("scheduler-a")
	c.Stop("scheduler-b")
	s2, err := waitPast(ctx, 3*time.Second)
	if err != nil {
		return err
	}
	c.Injected("both stopped across slot %s, then restarted together", s2.Format("15:04"))
	if err := startBoth(); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	// Each log file holds every run of its scheduler.
	logs := func() string {
		return c.Proc("scheduler-a").LogTail(100000) + "\n" + c.Proc("scheduler-b").LogTail(100000)
	}

	insp := c.Inspector()
	defer insp.Close()
	kinds := []struct{ queue, typ string }{
		{tasks.QueueLow, tasks.TypeOverdueScan},
		{tasks.QueueLow, tasks.TypeWeeklySummary},
		{tasks.QueueCritical, tasks.TypeInboxRedrive},
	}
	pendingIDs := func(queue, typ string) (map[string]int, error) {
		ids := map[string]int{}
		pending, err := insp.ListPendingTasks(queue)
		if err != nil && !strings.Contains(err.Error(), "not found") {
			return nil, fmt.Errorf("list %s: %w", queue, err)
		}
		for _, t := range pending {
			if t.Type == typ {
				ids[t.ID]++
			}
		}
		return ids, nil
	}
	for _, kind := range kinds {
		ids, err := pendingIDs(kind.queue, kind.typ)
		if err != nil {
			return err
		}
		for _, slot := range []time.Time{s1, s2} {
			id := tasks.SlotTaskID(kind.typ, slot)
			c.Check(ids[id] == 1, "%s for slot %s queued once (%d)", kind.typ, slot.Format("15:04"), ids[id])
			enq := countLines(logs(), `"outcome":"enqueued"`, `"task_id":"`+id+`"`)
			c.Check(enq == 1, "%s slot %s: one of the schedulers logged enqueued, %d did", kind.typ, slot.Format("15:04"), enq)
		}
		var other []string
		for id := range ids {
			if !strings.HasPrefix(id, kind.typ+":") {
				other = append(other, id)
			}
		}
		sort.Strings(other)
		c.Check(len(other) == 0, "no %s task without a slot id (%v)", kind.typ, other)
	}

	// Redis loses everything; both schedulers restart within the minute of
	// s2 and catch it up again.
	if time.Until(s2.Add(time.Minute)) < 20*time.Second {
		if s2, err = waitPast(ctx, 3*time.Second); err != nil {
			return err
		}
	}
	c.Stop("scheduler-a")
	c.Stop("scheduler-b")
	rc := redis.NewClient(&redis.Options{Addr: c.W.Redis.Addr()})
	err = rc.FlushAll(ctx).Err()
	rc.Close()
	if err != nil {
		return fmt.Errorf("flushall: %w", err)
	}
	if err := startBoth(); err != nil {
		return err
	}
	c.Injected("FLUSHALL, then both schedulers restarted within slot %s", s2.Format("15:04"))
	time.Sleep(3 * time.Second)
	for _, kind := range kinds {
		ids, err := pendingIDs(kind.queue, kind.typ)
		if err != nil {
			return err
		}
		id := tasks.SlotTaskID(kind.typ, s2)
		c.Check(ids[id] == 0, "%s slot %s not enqueued again after FLUSHALL (%d queued)", kind.typ, s2.Format("15:04"), ids[id])
		enq := countLines(logs(), `"outcome":"enqueued"`, `"task_id":"`+id+`"`)
		c.Check(enq == 1, "%s slot %s: still one enqueued line in all runs (%d)", kind.typ, s2.Format("15:04"), enq)
		again := countLines(logs(), `"outcome":"already_enqueued"`, `"task_id":"`+id+`"`)
		c.Check(again >= 2, "%s slot %s: both restarted schedulers found it claimed (%d already_enqueued lines)", kind.typ, s2.Format("15:04"), again)
	}
	rows := c.Int(ctx, `SELECT count(*) FROM scheduler_slots WHERE slot = $1 AND enqueued_at IS NOT NULL`, s2)
	c.Check(rows == 3, "PostgreSQL holds one enqueued claim per entry for slot %s (%d)", s2.Format("15:04"), rows)
	return nil
}

// countLines counts the lines of s holding every one of parts.
func countLines(s string, parts ...string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		all := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				all = false
				break
			}
		}
		if all {
			n++
		}
	}
	return n
}
