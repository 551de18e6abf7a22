package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

func coreCommands() []command {
	return []command{
		{name: "migrate", args: "", summary: "apply pending database migrations (idempotent; safe when two run at once)", run: runMigrate},
		{name: "migrate status", args: "", summary: "list migrations and whether each is applied", run: runMigrateStatus},
		{name: "enqueue", args: "<task-type> --payload <json> [--queue q] [--task-id id]", summary: "enqueue any task by hand", run: runEnqueue},
	}
}

func runMigrate(ctx context.Context, e *env, args []string) error {
	if _, err := parse(flags("migrate", e), args); err != nil {
		return err
	}
	s, err := e.Store(ctx)
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

func runMigrateStatus(ctx context.Context, e *env, args []string) error {
	if _, err := parse(flags("migrate status", e), args); err != nil {
		return err
	}
	s, err := e.Store(ctx)
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

func runEnqueue(ctx context.Context, e *env, args []string) error {
	fs := flags("enqueue", e)
	payload := fs.String("payload", "{}", "task payload, as JSON")
	q := fs.String("queue", tasks.QueueDefault, "queue: critical, default or low")
	id := fs.String("task-id", "", "TaskID (dedup key); empty for a random one")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("enqueue takes exactly one task type, such as %s", tasks.TypeStripeEvent)
	}
	if _, ok := queue.Weights[*q]; !ok {
		return usagef("--queue %q is not one of critical, default, low", *q)
	}
	if !json.Valid([]byte(*payload)) {
		return usagef("--payload is not valid JSON")
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	opts := []asynq.Option{asynq.Queue(*q)}
	if *id != "" {
		opts = append(opts, asynq.TaskID(*id))
	}
	info, dup, err := queue.Enqueue(ctx, c, asynq.NewTask(strings.TrimSpace(pos[0]), []byte(*payload)), opts...)
	if err != nil {
		return fmt.Errorf("%w (is Redis running, and is REDIS_URL right?)", err)
	}
	if dup {
		fmt.Fprintf(e.stdout, "already enqueued: task id %s is taken in queue %s\n", *id, *q)
		return nil
	}
	fmt.Fprintf(e.stdout, "enqueued %s as %s in queue %s\n", info.Type, info.ID, info.Queue)
	return nil
}
