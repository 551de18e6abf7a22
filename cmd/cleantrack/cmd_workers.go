package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"
)

func newWorkersCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "workers",
		Short: "The live worker processes: host, pid, concurrency, queues, started, and the tasks each is running",
		Long: `The live worker processes, as Asynqmon's Servers page shows them: host, pid,
concurrency, queue weights, when each started, its status, and the tasks it is
running now (task id, type, queue, started). Workers record themselves in Redis
every few seconds; one that stopped drops out within about half a minute.
Times are RFC 3339, UTC.`,
		Args: noArgs,
		RunE: e.action(func(context.Context, []string) error { return runWorkers(e, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of tables")
	return c
}

func newTasksCancelCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "cancel <task-id>",
		Short: "Cancel a running task: its handler's context is cancelled and Asynq retries it by its policy",
		Long: `Cancel a task a worker is running now. The worker cancels the handler's
context; the handler returns, and the task is retried later by its retry
policy (or archived when its retries are used up). Handlers are idempotent, so
a cancelled task that had half-done its work completes it on the retry.
"cleantrack workers" lists the running tasks; a task not running is refused.`,
		Args: exactArgs(1, "usage: cleantrack tasks cancel <task-id> (\"cleantrack workers\" lists the running tasks)"),
		RunE: e.action(func(_ context.Context, args []string) error { return runTasksCancel(e, args[0], asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	return c
}

// workerView is one live worker process as "workers" prints it.
type workerView struct {
	ID          string           `json:"id"`
	Host        string           `json:"host"`
	PID         int              `json:"pid"`
	Concurrency int              `json:"concurrency"`
	Queues      map[string]int   `json:"queues"`
	Strict      bool             `json:"strict_priority"`
	Started     time.Time        `json:"started"`
	Status      string           `json:"status"`
	Active      []activeTaskView `json:"active_tasks"`
}

// activeTaskView is a task a worker is running.
type activeTaskView struct {
	ID       string     `json:"id"`
	Type     string     `json:"type"`
	Queue    string     `json:"queue"`
	Started  time.Time  `json:"started"`
	Deadline *time.Time `json:"deadline,omitempty"`
}

func liveWorkers(insp *asynq.Inspector) ([]workerView, error) {
	servers, err := insp.Servers()
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", redisHint(err))
	}
	out := make([]workerView, 0, len(servers))
	for _, s := range servers {
		v := workerView{
			ID: s.ID, Host: s.Host, PID: s.PID, Concurrency: s.Concurrency, Queues: s.Queues,
			Strict: s.StrictPriority, Started: s.Started.UTC(), Status: s.Status, Active: []activeTaskView{},
		}
		for _, w := range s.ActiveWorkers {
			v.Active = append(v.Active, activeTaskView{ID: w.TaskID, Type: w.TaskType, Queue: w.Queue, Started: w.Started.UTC(), Deadline: optTime(w.Deadline)})
		}
		sort.Slice(v.Active, func(i, j int) bool { return v.Active[i].Started.Before(v.Active[j].Started) })
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return out[i].PID < out[j].PID
	})
	return out, nil
}

func runWorkers(e *env, asJSON bool) error {
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	ws, err := liveWorkers(insp)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, ws)
	}
	if len(ws) == 0 {
		fmt.Fprintln(e.stdout, "no live worker: nothing runs the queued tasks (start one with \"bin/worker\" or \"make dev\")")
		return nil
	}
	busy := 0
	for _, w := range ws {
		busy += len(w.Active)
	}
	fmt.Fprintf(e.stdout, "%s, %s\n", countNoun(len(ws), "live worker"), countNoun(busy, "running task"))
	tw := e.table("HOST", "PID", "CONCURRENCY", "QUEUES", "STARTED", "STATUS", "ACTIVE")
	for _, w := range ws {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\n", w.Host, w.PID, w.Concurrency, queueWeights(w.Queues), rfc3339(w.Started), w.Status, len(w.Active))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if busy == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	tw = e.table("TASK ID", "TYPE", "QUEUE", "STARTED", "HOST", "PID")
	for _, w := range ws {
		for _, a := range w.Active {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", a.ID, a.Type, a.Queue, rfc3339(a.Started), w.Host, w.PID)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "cancel one with: cleantrack tasks cancel <task-id>")
	return nil
}

// queueWeights is "critical=6,default=3,low=1": CleanTrack's queues in
// priority order, then any other.
func queueWeights(q map[string]int) string {
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(queueNames, a), slices.Index(queueNames, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, q[n])
	}
	return strings.Join(parts, ",")
}

func runTasksCancel(e *env, id string, asJSON bool) error {
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	ws, err := liveWorkers(insp)
	if err != nil {
		return err
	}
	// Asynq's cancel is a broadcast that succeeds whether or not the task
	// runs anywhere: look for it first, so a wrong id is not a silent no-op.
	var on *workerView
	var task activeTaskView
	for i, w := range ws {
		for _, a := range w.Active {
			if a.ID == id {
				on, task = &ws[i], a
			}
		}
	}
	if on == nil {
		return fmt.Errorf("task %q is not running on any live worker (workers report what they run every few seconds); "+
			"\"cleantrack workers\" lists the running tasks, \"cleantrack tasks delete <queue> %s\" removes one that waits", id, id)
	}
	if err := insp.CancelProcessing(id); err != nil {
		return fmt.Errorf("cancel task %s: %w", id, redisHint(err))
	}
	if asJSON {
		return printJSON(e.stdout, map[string]any{"id": id, "type": task.Type, "queue": task.Queue, "host": on.Host, "pid": on.PID, "cancel_requested": true})
	}
	fmt.Fprintf(e.stdout, "asked worker %s (pid %d) to cancel task %s (%s, queue %s); it is retried by its policy: follow it with \"cleantrack tasks show %s %s\"\n",
		on.Host, on.PID, id, task.Type, task.Queue, task.Queue, id)
	return nil
}
