package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Tasks reads the state of many tasks at once, for sweeps that would
// otherwise ask Redis once per task. Build it with NewTasks.
type Tasks struct {
	rdb  redis.UniversalClient
	insp *asynq.Inspector
}

// NewTasks reads task states through rdb, a client on the Redis Asynq uses
// (RedisClient). Closing rdb is the caller's business.
func NewTasks(rdb redis.UniversalClient) *Tasks {
	return &Tasks{rdb: rdb, insp: asynq.NewInspectorFromRedisClient(rdb)}
}

// States returns the state of the task with each id in queue qname, in
// the order of ids: "pending", "active", "scheduled", "retry", "archived",
// "completed" or "aggregating" (asynq.TaskState's names), or "" when Redis
// holds no such task. It is one round trip whatever the number of ids: a
// pipeline of HGETs on Asynq's task hashes. That reads Asynq v0.26's key
// layout (asynq:{<queue>}:t:<id>, field "state", every key of a queue in one
// Redis Cluster slot); this package's tests hold it to the Inspector's answer
// for every state, so an upgrade that changes it fails there.
func (t *Tasks) States(ctx context.Context, qname string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, "asynq:{"+qname+"}:t:"+id, "state")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read the state of %d tasks in queue %s: %w", len(ids), qname, err)
	}
	out := make([]string, len(ids))
	for i, c := range cmds {
		v, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("read the state of task %s in queue %s: %w", ids[i], qname, err)
		default:
			out[i] = v
		}
	}
	return out, nil
}

// GetTaskInfo returns one task in full (its last error, for one), as
// asynq.Inspector.GetTaskInfo does.
func (t *Tasks) GetTaskInfo(qname, id string) (*asynq.TaskInfo, error) {
	return t.insp.GetTaskInfo(qname, id)
}

// Revoked wraps err so that Asynq ends the task at once, neither retried nor
// archived (asynq.RevokeTask), and the run does not count as a failure: the
// work is not lost but waits elsewhere, such as an unmatched inbox row. The
// task's id is free again afterwards.
func Revoked(err error) error {
	return notFailure{fmt.Errorf("%w: %w", err, asynq.RevokeTask)}
}
