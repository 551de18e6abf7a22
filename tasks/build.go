package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hibiken/asynq"
)

// builders decode each type's JSON payload and call its constructor, so a
// task built from JSON carries the same options as the system's own.
var builders = map[string]func([]byte) (*asynq.Task, error){
	TypeStripeEvent:          build(NewStripeEvent),
	TypeInboxRedrive:         build(NewInboxRedrive),
	TypeEmailSend:            build(NewEmailSend),
	TypeEmailBatch:           build(NewEmailBatch),
	TypeOverdueScan:          build(NewOverdueScan),
	TypeWeeklySummary:        build(NewWeeklySummary),
	TypeWeeklySummaryAccount: build(NewWeeklySummaryAccount),
	TypeStripeSync:           build(NewStripeSync),
	TypeStripeReconcile:      build(NewStripeReconcile),
}

func build[P any](newTask func(P) (*asynq.Task, error)) func([]byte) (*asynq.Task, error) {
	return func(raw []byte) (*asynq.Task, error) {
		var p P
		dec := json.NewDecoder(bytes.NewReader(raw))
		// A misspelt field would otherwise be dropped without a word.
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("payload of %s: %w", typeName(newTask), err)
		}
		return newTask(p)
	}
}

// typeName is only for messages: the payload type's name.
func typeName[P any](func(P) (*asynq.Task, error)) string {
	var p P
	return fmt.Sprintf("%T", p)
}

// NewFromJSON builds a task of a type in Types from its JSON payload through
// the type's constructor, with the queue, retries, timeout, retention and
// TaskID the system gives it. Unknown fields in the payload are an error, as
// is a type the worker does not serve (see TypeNames). The CLI's "enqueue"
// calls it.
func NewFromJSON(taskType string, payload []byte) (*asynq.Task, error) {
	b, ok := builders[taskType]
	if !ok {
		return nil, fmt.Errorf("no task type %q", taskType)
	}
	return b(payload)
}

// TypeNames lists Types' names, sorted.
func TypeNames() []string {
	names := make([]string, 0, len(Types))
	for t := range Types {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}
