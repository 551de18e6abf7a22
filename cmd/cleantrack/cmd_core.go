package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

func newMigrateCmd(e *env) *cobra.Command {
	var asJSON, statusJSON bool
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (idempotent; safe when two run at once)",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runMigrate(ctx, e, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the applied migrations as JSON")
	status := &cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runMigrateStatus(ctx, e, statusJSON) }),
	}
	status.Flags().BoolVar(&statusJSON, "json", false, "print JSON instead of a table")
	c.AddCommand(status)
	return c
}

func newEnqueueCmd(e *env) *cobra.Command {
	var o enqueueOptions
	c := &cobra.Command{
		Use:   "enqueue <task-type>",
		Short: "Enqueue any task by hand, with the queue, retries and TaskID the system gives it",
		Long: "Enqueue a task by hand. The payload is decoded and built by the task type's own constructor,\n" +
			"so the task gets the queue, retries, timeout, retention and TaskID the system gives the same task;\n" +
			"--queue and --task-id override them.\n\n" +
			"Task types: " + strings.Join(tasks.TypeNames(), ", ") + ".",
		Args:              exactArgs(1, "enqueue takes exactly one task type: "+strings.Join(tasks.TypeNames(), ", ")),
		ValidArgsFunction: completeArgs(tasks.TypeNames()),
		RunE:              e.action(func(ctx context.Context, args []string) error { return runEnqueue(ctx, e, args[0], o) }),
	}
	c.Flags().StringVar(&o.payload, "payload", "{}", "task payload, as JSON (the fields of the type's payload)")
	c.Flags().StringVar(&o.queue, "queue", "", "queue: critical, default or low (default: the task type's queue)")
	c.Flags().StringVar(&o.taskID, "task-id", "", "TaskID (dedup key) (default: the type's own, such as the event id, or a random one)")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the enqueued task as JSON")
	completeFlag(c, "queue", queueNames...)
	c.AddCommand(newEnqueueOverdueScanCmd(e), newEnqueueWeeklySummaryCmd(e))
	return c
}

// migrationView is one migration as "migrate --json" and "migrate status
// --json" print it.
type migrationView struct {
	Version    int64      `json:"version"`
	Name       string     `json:"name"`
	Applied    bool       `json:"applied"`
	AppliedAt  *time.Time `json:"applied_at,omitempty"`
	DurationMS *int64     `json:"duration_ms,omitempty"`
}

func runMigrate(ctx context.Context, e *env, asJSON bool) error {
	s, err := e.MigrateStore(ctx)
	if err != nil {
		return err
	}
	applied, err := s.Migrate(ctx)
	if asJSON {
		views := make([]migrationView, 0, len(applied))
		for _, m := range applied {
			ms := m.Duration.Milliseconds()
			views = append(views, migrationView{Version: m.Version, Name: m.Name, Applied: true, DurationMS: &ms})
		}
		if err != nil {
			return err
		}
		return printJSON(e.stdout, map[string]any{"applied": views})
	}
	for _, m := range applied {
		fmt.Fprintf(e.stdout, "applied %05d %s (%s)\n", m.Version, m.Name, m.Duration.Round(1e6))
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.stdout, "database is up to date; nothing to apply")
	}
	return nil
}

func runMigrateStatus(ctx context.Context, e *env, asJSON bool) error {
	s, err := e.MigrateStore(ctx)
	if err != nil {
		return err
	}
	st, err := s.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		views := make([]migrationView, 0, len(st))
		for _, m := range st {
			v := migrationView{Version: m.Version, Name: m.Name, Applied: m.Applied}
			if m.Applied {
				v.AppliedAt = optTime(m.AppliedAt)
			}
			views = append(views, v)
		}
		return printJSON(e.stdout, views)
	}
	tw := e.table("VERSION", "NAME", "STATE", "APPLIED AT")
	pending := 0
	for _, m := range st {
		state, at := "pending", ""
		if m.Applied {
			state, at = "applied", rfc3339(m.AppliedAt)
		} else {
			pending++
		}
		fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%s, %d pending\n", countNoun(len(st), "migration"), pending)
	return nil
}

// enqueueOptions are the flags of "enqueue".
type enqueueOptions struct {
	payload, queue, taskID string
	asJSON                 bool
}

// checkTaskType refuses a type no handler serves, naming the known ones and
// the closest (the part after the colon: "overdue_scan").
func checkTaskType(taskType string) error {
	if _, ok := tasks.Types[taskType]; ok {
		return nil
	}
	msg := fmt.Sprintf("no worker serves task type %q", taskType)
	for _, t := range tasks.TypeNames() {
		_, name, _ := strings.Cut(t, ":")
		if name == taskType || strings.EqualFold(t, taskType) {
			msg += fmt.Sprintf(" (did you mean %q?)", t)
			break
		}
	}
	return usagef("%s; the task types are %s", msg, strings.Join(tasks.TypeNames(), ", "))
}

func runEnqueue(ctx context.Context, e *env, taskType string, o enqueueOptions) error {
	taskType = strings.TrimSpace(taskType)
	if err := checkTaskType(taskType); err != nil {
		return err
	}
	if o.queue != "" {
		if _, ok := queue.Weights[o.queue]; !ok {
			return usagef("--queue %q is not one of critical, default, low", o.queue)
		}
	}
	if !json.Valid([]byte(o.payload)) {
		return usagef("--payload is not valid JSON")
	}
	task, err := tasks.NewFromJSON(taskType, []byte(o.payload))
	if err != nil {
		return usagef("--payload: %v", err)
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	// Options given here come after the constructor's, so they win.
	var opts []asynq.Option
	if o.queue != "" {
		opts = append(opts, asynq.Queue(o.queue))
	}
	if o.taskID != "" {
		opts = append(opts, asynq.TaskID(o.taskID))
	}
	info, dup, err := queue.Enqueue(ctx, c, task, opts...)
	if err != nil {
		return fmt.Errorf("%w (is Redis running, and is REDIS_URL right?)", err)
	}
	q := o.queue
	if q == "" {
		q = tasks.Types[taskType].Queue
	}
	if o.asJSON {
		out := map[string]any{"type": taskType, "queue": q, "enqueued": !dup}
		if info != nil {
			out["id"], out["max_retry"], out["timeout"], out["retention"] = info.ID, info.MaxRetry, info.Timeout.String(), info.Retention.String()
		}
		return printJSON(e.stdout, out)
	}
	if dup {
		fmt.Fprintf(e.stdout, "already enqueued: %s's task id is taken in queue %s; nothing added\n", taskType, q)
		return nil
	}
	fmt.Fprintf(e.stdout, "enqueued %s as %s in queue %s (up to %s, timeout %s, retention %s)\n",
		info.Type, info.ID, info.Queue, countNoun(info.MaxRetry, "retry"), info.Timeout, info.Retention)
	return nil
}
