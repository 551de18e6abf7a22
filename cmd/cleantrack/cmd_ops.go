package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/tasks"
)

func newQueuesCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "queues",
		Short: "Each queue's pending, active, scheduled, retry, archived and completed tasks, and latency",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q: did you mean \"cleantrack queues pause %s\" or \"cleantrack tasks list %s archived\"?", args[0], args[0], args[0])
			}
			return nil
		},
		RunE: e.action(func(context.Context, []string) error { return runQueues(e, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	c.AddCommand(newQueuePauseCmd(e, true), newQueuePauseCmd(e, false))
	return c
}

func newQueuePauseCmd(e *env, pause bool) *cobra.Command {
	verb, short := "pause", "Stop workers from taking tasks from a queue (enqueueing continues)"
	if !pause {
		verb, short = "unpause", "Let workers take tasks from a paused queue again"
	}
	var asJSON bool
	c := &cobra.Command{
		Use:               verb + " <queue>",
		Short:             short,
		Args:              exactArgs(1, "usage: cleantrack queues "+verb+" <queue>"),
		ValidArgsFunction: completeArgs(queueNames),
		RunE:              e.action(func(_ context.Context, args []string) error { return setPaused(e, args[0], pause, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	return c
}

func newTasksCmd(e *env) *cobra.Command {
	return group("tasks", "List, show, retry, delete and cancel the tasks of a queue",
		newTasksListCmd(e), newTasksShowCmd(e), newTasksRetryOrDeleteCmd(e, "retry"), newTasksRetryOrDeleteCmd(e, "delete"),
		newTasksCancelCmd(e))
}

func newTasksListCmd(e *env) *cobra.Command {
	var limit int
	var asJSON bool
	var taskType string
	c := &cobra.Command{
		Use:               "list <queue> <" + strings.Join(opsStates, "|") + ">",
		Short:             "List a queue's tasks in one state, newest failures with their error; --type for one task type",
		Args:              exactArgs(2, "usage: cleantrack tasks list <queue> <"+strings.Join(opsStates, "|")+"> [--type t] [--limit n]"),
		ValidArgsFunction: completeArgs(queueNames, opsStates),
		RunE: e.action(func(_ context.Context, args []string) error {
			return runTasksList(e, args[0], args[1], taskType, limit, asJSON)
		}),
	}
	c.Flags().IntVar(&limit, "limit", 20, "show at most this many tasks")
	c.Flags().StringVar(&taskType, "type", "", "only tasks of this type, such as "+tasks.TypeEmailSend)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	completeFlag(c, "type", tasks.TypeNames()...)
	return c
}

func newTasksShowCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:               "show <queue> <task-id>",
		Short:             "One task: payload, state, retries and last error",
		Args:              exactArgs(2, "usage: cleantrack tasks show <queue> <task-id>"),
		ValidArgsFunction: completeArgs(queueNames),
		RunE:              e.action(func(_ context.Context, args []string) error { return runTasksShow(e, args[0], args[1], asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	return c
}

// bulkStates are the states "tasks retry|delete --all" act on.
var bulkStates = map[string][]string{
	"retry":  {"archived", "retry", "scheduled"},
	"delete": {"archived", "retry", "pending", "scheduled"},
}

// newTasksRetryOrDeleteCmd builds "tasks retry" and "tasks delete": one task
// by id, or every task of a queue in one state (--all), optionally of one
// type (--type).
func newTasksRetryOrDeleteCmd(e *env, verb string) *cobra.Command {
	var allArchived, asJSON bool
	var all, taskType string
	states := bulkStates[verb]
	short := "Run an archived, retry or scheduled task now; --all <state> for every such task of the queue"
	if verb == "delete" {
		short = "Delete a task that is not running; --all <state> for every such task of the queue"
	}
	c := &cobra.Command{
		Use:   verb + " <queue> <task-id>|--all <" + strings.Join(states, "|") + ">",
		Short: short,
		Args: func(_ *cobra.Command, args []string) error {
			bulk := all != "" || allArchived
			switch {
			case all != "" && allArchived:
				return usagef("--all and --all-archived exclude each other; --all-archived is --all archived")
			case bulk && len(args) != 1:
				return usagef("usage: cleantrack tasks %s <queue> --all <%s> (no task id with --all)", verb, strings.Join(states, "|"))
			case !bulk && len(args) != 2:
				return usagef("usage: cleantrack tasks %s <queue> <task-id>, or <queue> --all <%s>", verb, strings.Join(states, "|"))
			case !bulk && taskType != "":
				return usagef("--type goes with --all: one task is named by its id")
			case all != "" && !slices.Contains(states, all):
				return usagef("--all %q: tasks %s acts on %s tasks", all, verb, strings.Join(states, ", "))
			}
			return nil
		},
		ValidArgsFunction: completeArgs(queueNames),
		RunE: e.action(func(_ context.Context, args []string) error {
			if allArchived {
				all = "archived"
			}
			if all != "" {
				return runTasksBulk(e, verb, args[0], all, taskType, asJSON)
			}
			if verb == "retry" {
				return runTasksRetry(e, args[0], args[1], asJSON)
			}
			return runTasksDelete(e, args[0], args[1], asJSON)
		}),
	}
	c.Flags().StringVar(&all, "all", "", "act on every task of the queue in this state: "+strings.Join(states, ", "))
	c.Flags().BoolVar(&allArchived, "all-archived", false, "act on every archived task of the queue (--all archived)")
	c.Flags().StringVar(&taskType, "type", "", "with --all: only tasks of this type")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	completeFlag(c, "all", states...)
	completeFlag(c, "type", tasks.TypeNames()...)
	return c
}

// queueNames are CleanTrack's queues, in priority order.
var queueNames = []string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueLow}

// opsStates are the task states "tasks list" accepts, in lifecycle order.
var opsStates = []string{"pending", "active", "scheduled", "retry", "archived", "completed"}

// opsQueue is one line of "cleantrack queues".
type opsQueue struct {
	Queue          string  `json:"queue"`
	Paused         bool    `json:"paused"`
	Size           int     `json:"size"`
	Pending        int     `json:"pending"`
	Active         int     `json:"active"`
	Scheduled      int     `json:"scheduled"`
	Retry          int     `json:"retry"`
	Archived       int     `json:"archived"`
	Completed      int     `json:"completed"`
	LatencySeconds float64 `json:"latency_seconds"`
	ProcessedToday int     `json:"processed_today"`
	FailedToday    int     `json:"failed_today"`
}

func runQueues(e *env, asJSON bool) error {
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	names, err := allQueues(insp)
	if err != nil {
		return err
	}
	rows := make([]opsQueue, 0, len(names))
	for _, q := range names {
		info, err := insp.GetQueueInfo(q)
		if errors.Is(err, asynq.ErrQueueNotFound) || (err != nil && strings.Contains(err.Error(), "does not exist")) {
			// A CleanTrack queue nothing was enqueued to yet: empty, not missing.
			rows = append(rows, opsQueue{Queue: q})
			continue
		}
		if err != nil {
			return fmt.Errorf("queue %s: %w", q, redisHint(err))
		}
		rows = append(rows, opsQueue{
			Queue: q, Paused: info.Paused, Size: info.Size,
			Pending: info.Pending, Active: info.Active, Scheduled: info.Scheduled,
			Retry: info.Retry, Archived: info.Archived, Completed: info.Completed,
			LatencySeconds: info.Latency.Seconds(),
			ProcessedToday: info.Processed, FailedToday: info.Failed,
		})
	}
	if asJSON {
		return printJSON(e.stdout, rows)
	}
	tw := e.table("QUEUE", "STATE", "PENDING", "ACTIVE", "SCHEDULED", "RETRY", "ARCHIVED", "COMPLETED", "LATENCY", "PROCESSED TODAY", "FAILED TODAY")
	for _, r := range rows {
		state := "running"
		if r.Paused {
			state = "paused"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\n", r.Queue, state,
			r.Pending, r.Active, r.Scheduled, r.Retry, r.Archived, r.Completed,
			showLatency(r.LatencySeconds), r.ProcessedToday, r.FailedToday)
	}
	return tw.Flush()
}

func setPaused(e *env, q string, pause, asJSON bool) error {
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	if err := checkQueue(insp, q); err != nil {
		return err
	}
	paused, err := isPaused(insp, q)
	if err != nil {
		return err
	}
	msg := ""
	switch {
	case pause && paused:
		msg = fmt.Sprintf("queue %s was already paused; \"cleantrack queues unpause %s\" resumes it", q, q)
	case !pause && !paused:
		msg = fmt.Sprintf("queue %s is not paused; workers are taking its tasks", q)
	case pause:
		if err := insp.PauseQueue(q); err != nil {
			return fmt.Errorf("pause %s: %w", q, redisHint(err))
		}
		msg = fmt.Sprintf("paused queue %s: workers take no more of its tasks (running ones finish); \"cleantrack queues unpause %s\" resumes it", q, q)
	default:
		if err := insp.UnpauseQueue(q); err != nil {
			return fmt.Errorf("unpause %s: %w", q, redisHint(err))
		}
		msg = fmt.Sprintf("unpaused queue %s: workers take its tasks again", q)
	}
	if asJSON {
		return printJSON(e.stdout, map[string]any{"queue": q, "paused": pause})
	}
	fmt.Fprintln(e.stdout, msg)
	return nil
}

// opsTask is a task as "tasks list" and "tasks show" print it.
type opsTask struct {
	ID            string          `json:"id"`
	Queue         string          `json:"queue"`
	Type          string          `json:"type"`
	State         string          `json:"state"`
	Payload       json.RawMessage `json:"payload"`
	Retried       int             `json:"retried"`
	MaxRetry      int             `json:"max_retry"`
	LastError     string          `json:"last_error,omitempty"`
	LastFailedAt  *time.Time      `json:"last_failed_at,omitempty"`
	NextProcessAt *time.Time      `json:"next_process_at,omitempty"`
	CompletedAt   *time.Time      `json:"completed_at,omitempty"`
	Timeout       string          `json:"timeout,omitempty"`
	Deadline      *time.Time      `json:"deadline,omitempty"`
	Retention     string          `json:"retention,omitempty"`
}

func newOpsTask(t *asynq.TaskInfo) opsTask {
	v := opsTask{
		ID: t.ID, Queue: t.Queue, Type: t.Type, State: t.State.String(),
		Payload: payloadValue(t.Payload), Retried: t.Retried, MaxRetry: t.MaxRetry,
		LastError: t.LastErr, LastFailedAt: optTime(t.LastFailedAt),
		NextProcessAt: optTime(t.NextProcessAt), CompletedAt: optTime(t.CompletedAt),
		Deadline: optTime(t.Deadline),
	}
	if t.Timeout > 0 {
		v.Timeout = t.Timeout.String()
	}
	if t.Retention > 0 {
		v.Retention = t.Retention.String()
	}
	return v
}

func runTasksList(e *env, q, state, taskType string, limit int, asJSON bool) error {
	if !slices.Contains(opsStates, state) {
		return usagef("unknown state %q: use one of %s", state, strings.Join(opsStates, ", "))
	}
	if limit < 1 {
		return usagef("--limit must be at least 1")
	}
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	if err := checkQueue(insp, q); err != nil {
		return err
	}
	var list []*asynq.TaskInfo
	var total int
	if taskType == "" {
		list, total, err = listTasksIn(insp, q, state, limit)
	} else {
		list, total, err = listTasksOfType(insp, q, state, taskType, limit)
	}
	if err != nil {
		return err
	}
	views := make([]opsTask, 0, len(list))
	for _, t := range list {
		views = append(views, newOpsTask(t))
	}
	if asJSON {
		return printJSON(e.stdout, views)
	}
	what := state + " task"
	if taskType != "" {
		what = fmt.Sprintf("%s %s task", state, taskType)
	}
	if len(views) == 0 {
		fmt.Fprintf(e.stdout, "no %ss in queue %s\n", what, q)
		if _, ok := tasks.Types[taskType]; taskType != "" && !ok {
			fmt.Fprintf(e.stdout, "(no worker serves type %q; the task types are %s)\n", taskType, strings.Join(tasks.TypeNames(), ", "))
		}
		return nil
	}
	when := map[string]string{"scheduled": "RUNS AT", "retry": "NEXT TRY", "archived": "FAILED AT", "completed": "COMPLETED AT"}[state]
	header := []string{"ID", "TYPE", "RETRIED"}
	if when != "" {
		header = append(header, when)
	}
	header = append(header, "LAST ERROR")
	tw := e.table(header...)
	for _, v := range views {
		cols := []string{v.ID, v.Type, fmt.Sprintf("%d/%d", v.Retried, v.MaxRetry)}
		switch state {
		case "scheduled", "retry":
			cols = append(cols, showTime(v.NextProcessAt))
		case "archived":
			cols = append(cols, showTime(v.LastFailedAt))
		case "completed":
			cols = append(cols, showTime(v.CompletedAt))
		}
		cols = append(cols, foldLine(v.LastError, 80))
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if total > len(views) {
		fmt.Fprintf(e.stdout, "showing %d of %s in %s; --limit %d shows all\n", len(views), countNoun(total, what), q, total)
	}
	return nil
}

func runTasksShow(e *env, q, id string, asJSON bool) error {
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	t, err := findTask(insp, q, id)
	if err != nil {
		return err
	}
	v := newOpsTask(t)
	if asJSON {
		return printJSON(e.stdout, v)
	}
	tw := e.table("FIELD", "VALUE")
	row := func(k, val string) { fmt.Fprintf(tw, "%s\t%s\n", k, val) }
	row("id", v.ID)
	row("queue", v.Queue)
	row("type", v.Type)
	row("state", v.State)
	row("retried", fmt.Sprintf("%d of %d", v.Retried, v.MaxRetry))
	row("last error", dashIfEmpty(foldLine(v.LastError, 0)))
	row("last failed at", showTime(v.LastFailedAt))
	row("next run at", showTime(v.NextProcessAt))
	row("completed at", showTime(v.CompletedAt))
	row("timeout", dashIfEmpty(v.Timeout))
	row("retention", dashIfEmpty(v.Retention))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "payload:\n%s\n", prettyJSON(v.Payload))
	switch v.State {
	case "archived", "retry", "scheduled":
		fmt.Fprintf(e.stdout, "\nrun it now: cleantrack tasks retry %s %s\n", q, id)
	}
	return nil
}

func runTasksRetry(e *env, q, id string, asJSON bool) error {
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	t, err := findTask(insp, q, id)
	if err != nil {
		return err
	}
	switch t.State {
	case asynq.TaskStatePending:
		return fmt.Errorf("task %s in %s is already pending: a worker runs it when one is free (is the queue paused? see \"cleantrack queues\")", id, q)
	case asynq.TaskStateActive:
		return fmt.Errorf("task %s in %s is running right now; nothing to retry", id, q)
	case asynq.TaskStateCompleted:
		return fmt.Errorf("task %s in %s completed; enqueue new work instead of retrying it", id, q)
	}
	if err := insp.RunTask(q, id); err != nil {
		return fmt.Errorf("retry task %s in %s: %w", id, q, taskHint(err, q, id))
	}
	if asJSON {
		return printJSON(e.stdout, map[string]any{"queue": q, "id": id, "retried": 1})
	}
	fmt.Fprintf(e.stdout, "task %s in %s is pending again; a worker runs it next (follow it with \"cleantrack tasks show %s %s\")\n", id, q, q, id)
	return nil
}

func runTasksDelete(e *env, q, id string, asJSON bool) error {
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	t, err := findTask(insp, q, id)
	if err != nil {
		return err
	}
	if t.State == asynq.TaskStateActive {
		return fmt.Errorf("task %s in %s is running and cannot be deleted; wait for it, or cancel it: cleantrack tasks cancel %s", id, q, id)
	}
	if err := insp.DeleteTask(q, id); err != nil {
		return fmt.Errorf("delete task %s in %s: %w", id, q, taskHint(err, q, id))
	}
	if asJSON {
		return printJSON(e.stdout, map[string]any{"queue": q, "id": id, "deleted": 1})
	}
	fmt.Fprintf(e.stdout, "deleted task %s from %s\n", id, q)
	return nil
}

// runTasksBulk retries or deletes every task of q in one state. Without a
// type it is one call to Redis, which moves them all at once; with one it
// lists the state's tasks and acts on those of the type, one by one.
func runTasksBulk(e *env, verb, q, state, taskType string, asJSON bool) error {
	insp, err := e.Inspector()
	if err != nil {
		return err
	}
	if err := checkQueue(insp, q); err != nil {
		return err
	}
	var n int
	if taskType == "" {
		n, err = bulkCall(insp, verb, state)(q)
	} else {
		n, err = bulkByType(insp, verb, q, state, taskType)
	}
	if isQueueMissing(err) {
		// A CleanTrack queue nothing was enqueued to yet holds no tasks.
		n, err = 0, nil
	}
	if err != nil {
		return fmt.Errorf("%s %s tasks in %s: %w", verb, state, q, redisHint(err))
	}
	past := map[string]string{"retry": "retried", "delete": "deleted"}[verb]
	if asJSON {
		out := map[string]any{"queue": q, "state": state, past: n}
		if taskType != "" {
			out["type"] = taskType
		}
		return printJSON(e.stdout, out)
	}
	what := state + " task"
	if taskType != "" {
		what = fmt.Sprintf("%s %s task", state, taskType)
	}
	switch {
	case n == 0:
		fmt.Fprintf(e.stdout, "no %ss in %s\n", what, q)
	case verb == "retry":
		fmt.Fprintf(e.stdout, "retried %s in %s; they are pending and workers run them next\n", countNoun(n, what), q)
	default:
		fmt.Fprintf(e.stdout, "deleted %s from %s\n", countNoun(n, what), q)
	}
	return nil
}

// bulkCall is Asynq's one-call bulk operation for verb and state.
func bulkCall(insp *asynq.Inspector, verb, state string) func(string) (int, error) {
	return map[string]func(string) (int, error){
		"retry archived":   insp.RunAllArchivedTasks,
		"retry retry":      insp.RunAllRetryTasks,
		"retry scheduled":  insp.RunAllScheduledTasks,
		"delete archived":  insp.DeleteAllArchivedTasks,
		"delete retry":     insp.DeleteAllRetryTasks,
		"delete pending":   insp.DeleteAllPendingTasks,
		"delete scheduled": insp.DeleteAllScheduledTasks,
	}[verb+" "+state]
}

// bulkByType acts on the tasks of one type among q's tasks in state. It
// collects the ids first: acting while paging would shift the pages.
func bulkByType(insp *asynq.Inspector, verb, q, state, taskType string) (int, error) {
	list, _, err := listTasksOfType(insp, q, state, taskType, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range list {
		if verb == "retry" {
			err = insp.RunTask(q, t.ID)
		} else {
			err = insp.DeleteTask(q, t.ID)
		}
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound):
			// It ran or was removed meanwhile.
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

// listTasksOfType pages through q's tasks in state and keeps those of
// taskType: at most limit of them (0: all), and how many there are.
func listTasksOfType(insp *asynq.Inspector, q, state, taskType string, limit int) ([]*asynq.TaskInfo, int, error) {
	const pageSize = 500
	var out []*asynq.TaskInfo
	total := 0
	for page := 1; ; page++ {
		list, err := listPage(insp, q, state, asynq.PageSize(pageSize), asynq.Page(page))
		if isQueueMissing(err) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("list %s tasks in %s: %w", state, q, redisHint(err))
		}
		for _, t := range list {
			if t.Type != taskType {
				continue
			}
			total++
			if limit == 0 || len(out) < limit {
				out = append(out, t)
			}
		}
		if len(list) < pageSize {
			return out, total, nil
		}
	}
}

func listPage(insp *asynq.Inspector, q, state string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error) {
	switch state {
	case "pending":
		return insp.ListPendingTasks(q, opts...)
	case "active":
		return insp.ListActiveTasks(q, opts...)
	case "scheduled":
		return insp.ListScheduledTasks(q, opts...)
	case "retry":
		return insp.ListRetryTasks(q, opts...)
	case "archived":
		return insp.ListArchivedTasks(q, opts...)
	case "completed":
		return insp.ListCompletedTasks(q, opts...)
	}
	return nil, fmt.Errorf("unknown state %q", state)
}

// allQueues is CleanTrack's queues, in priority order, then any other queue
// found in Redis.
func allQueues(insp *asynq.Inspector) ([]string, error) {
	names := slices.Clone(queueNames)
	found, err := insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", redisHint(err))
	}
	slices.Sort(found)
	for _, q := range found {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	return names, nil
}

// checkQueue accepts CleanTrack's queues and any queue Redis knows.
func checkQueue(insp *asynq.Inspector, q string) error {
	names, err := allQueues(insp)
	if err != nil {
		return err
	}
	if !slices.Contains(names, q) {
		return fmt.Errorf("unknown queue %q: the queues are %s (see \"cleantrack queues\")", q, strings.Join(names, ", "))
	}
	return nil
}

func isPaused(insp *asynq.Inspector, q string) (bool, error) {
	info, err := insp.GetQueueInfo(q)
	if isQueueMissing(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue %s: %w", q, redisHint(err))
	}
	return info.Paused, nil
}

// isQueueMissing is true for a queue Redis has never seen a task in. Asynq
// reports it as ErrQueueNotFound from some calls and as a plain error from
// GetQueueInfo.
func isQueueMissing(err error) bool {
	return err != nil && (errors.Is(err, asynq.ErrQueueNotFound) || strings.Contains(err.Error(), "does not exist"))
}

func findTask(insp *asynq.Inspector, q, id string) (*asynq.TaskInfo, error) {
	if err := checkQueue(insp, q); err != nil {
		return nil, err
	}
	t, err := insp.GetTaskInfo(q, id)
	if err != nil {
		return nil, taskHint(err, q, id)
	}
	return t, nil
}

// taskHint turns Asynq's not-found errors into a message that says what to do.
func taskHint(err error, q, id string) error {
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return fmt.Errorf("task %q not found in queue %s: it may have completed (completed tasks are kept only for their retention) or been deleted; "+
			"list candidates with \"cleantrack tasks list %s archived\"", id, q, q)
	}
	return redisHint(err)
}

// redisHint adds what to check to an error that is most likely Redis being
// unreachable.
func redisHint(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "connection refused") || strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "no such host") {
		return fmt.Errorf("%w (is Redis running, and is REDIS_URL right?)", err)
	}
	return err
}

func listTasksIn(insp *asynq.Inspector, q, state string, limit int) ([]*asynq.TaskInfo, int, error) {
	info, err := insp.GetQueueInfo(q)
	if isQueueMissing(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("queue %s: %w", q, redisHint(err))
	}
	list, err := listPage(insp, q, state, asynq.PageSize(limit), asynq.Page(1))
	total := map[string]int{
		"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
		"retry": info.Retry, "archived": info.Archived, "completed": info.Completed,
	}[state]
	if err != nil {
		return nil, 0, fmt.Errorf("list %s tasks in %s: %w", state, q, redisHint(err))
	}
	return list, total, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// payloadValue keeps a JSON payload as JSON and quotes anything else.
func payloadValue(p []byte) json.RawMessage {
	if len(p) > 0 && json.Valid(p) {
		return json.RawMessage(p)
	}
	b, _ := json.Marshal(string(p))
	return b
}

func prettyJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func showTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return rfc3339(*t)
}

func showLatency(seconds float64) string {
	if seconds <= 0 {
		return "0s"
	}
	d := time.Duration(seconds * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// foldLine folds an error message onto one line for a table, cut at max runes
// (0 means no cut).
func foldLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); max > 0 && len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
