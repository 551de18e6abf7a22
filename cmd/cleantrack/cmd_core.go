package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

func newMigrateCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (idempotent; safe when two run at once)",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runMigrate(ctx, e) }),
	}
	c.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runMigrateStatus(ctx, e) }),
	})
	return c
}

func newEnqueueCmd(e *env) *cobra.Command {
	var o enqueueOptions
	c := &cobra.Command{
		Use:   "enqueue <task-type>",
		Short: "Enqueue any task by hand",
		Args:  exactArgs(1, "enqueue takes exactly one task type, such as "+tasks.TypeStripeEvent),
		ValidArgsFunction: completeArgs([]string{
			tasks.TypeStripeEvent, tasks.TypeInboxRedrive, tasks.TypeEmailSend,
			tasks.TypeOverdueScan, tasks.TypeWeeklySummary, tasks.TypeWeeklySummaryAccount,
		}),
		RunE: e.action(func(ctx context.Context, args []string) error { return runEnqueue(ctx, e, args[0], o) }),
	}
	c.Flags().StringVar(&o.payload, "payload", "{}", "task payload, as JSON")
	c.Flags().StringVar(&o.queue, "queue", tasks.QueueDefault, "queue: critical, default or low")
	c.Flags().StringVar(&o.taskID, "task-id", "", "TaskID (dedup key); empty for a random one")
	completeFlag(c, "queue", queueNames...)
	c.AddCommand(newEnqueueOverdueScanCmd(e), newEnqueueWeeklySummaryCmd(e))
	return c
}

func runMigrate(ctx context.Context, e *env) error {
	s, err := e.MigrateStore(ctx)
	if err != nil {
		return err
	}
	applied, err := s.Migrate(ctx)
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

func runMigrateStatus(ctx context.Context, e *env) error {
	s, err := e.MigrateStore(ctx)
	if err != nil {
		return err
	}
	st, err := s.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	tw := e.table("VERSION", "NAME", "STATE", "APPLIED AT")
	pending := 0
	for _, m := range st {
		state, at := "pending", ""
		if m.Applied {
			state, at = "applied", m.AppliedAt.Format("2006-01-02 15:04:05Z07:00")
		} else {
			pending++
		}
		fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d migrations, %d pending\n", len(st), pending)
	return nil
}

// enqueueOptions are the flags of "enqueue".
type enqueueOptions struct {
	payload, queue, taskID string
}

func runEnqueue(ctx context.Context, e *env, taskType string, o enqueueOptions) error {
	if _, ok := queue.Weights[o.queue]; !ok {
		return usagef("--queue %q is not one of critical, default, low", o.queue)
	}
	if !json.Valid([]byte(o.payload)) {
		return usagef("--payload is not valid JSON")
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	opts := []asynq.Option{asynq.Queue(o.queue)}
	if o.taskID != "" {
		opts = append(opts, asynq.TaskID(o.taskID))
	}
	info, dup, err := queue.Enqueue(ctx, c, asynq.NewTask(strings.TrimSpace(taskType), []byte(o.payload)), opts...)
	if err != nil {
		return fmt.Errorf("%w (is Redis running, and is REDIS_URL right?)", err)
	}
	if dup {
		fmt.Fprintf(e.stdout, "already enqueued: task id %s is taken in queue %s\n", o.taskID, o.queue)
		return nil
	}
	fmt.Fprintf(e.stdout, "enqueued %s as %s in queue %s\n", info.Type, info.ID, info.Queue)
	return nil
}
