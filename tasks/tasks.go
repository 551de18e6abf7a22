// Package tasks is the contract between whoever enqueues work (the web process,
// the scheduler, the CLI, other handlers) and the worker that runs it: task type
// names, JSON payloads, and constructors that set each task's queue, TaskID and
// retention. It imports Asynq and the standard library only.
package tasks

import (
	"encoding/json"
	"fmt"
)

// Queue names, highest priority first. The worker weighs them 6:3:1.
const (
	QueueCritical = "critical"
	QueueDefault  = "default"
	QueueLow      = "low"
)

// Decode unmarshals a task payload into v, naming the task type on failure.
// Handlers wrap the error with asynq.SkipRetry: a payload that does not decode
// never will.
func Decode(taskType string, payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("decode %s payload: %w", taskType, err)
	}
	return nil
}
