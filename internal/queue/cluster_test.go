package queue_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/enginetest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// Keys of one tag land in one Redis Cluster slot, as a real cluster computes
// it (CLUSTER KEYSLOT), so multi-key commands over them work there; so do
// Asynq's keys of one queue, which Tasks.States pipelines together.
func TestKeysOfOneTagShareASlot(t *testing.T) {
	t.Parallel()
	if err := enginetest.Available(); err != nil {
		t.Skip(err.Error())
	}
	ctx := context.Background()
	cl, err := enginetest.StartCluster(ctx, t.TempDir(), enginetest.ClusterOptions{})
	require.NoError(t, err)
	t.Cleanup(cl.Stop)
	c := cl.Client()
	defer c.Close()
	slot := func(key string) int64 {
		t.Helper()
		s, err := c.ClusterKeySlot(ctx, key).Result()
		require.NoError(t, err)
		return s
	}

	assert.Equal(t, "cleantrack:{email}:resend_next_slot", queue.Key("email", "resend_next_slot"))
	groups := map[string][]string{
		"email":     {queue.Key("email", "resend_next_slot"), queue.Key("email", "other")},
		"redistest": {queue.Key("redistest", "lock:1"), queue.Key("redistest", "lock:15"), queue.Key("redistest", "lock:cluster")},
	}
	for _, q := range []string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueLow} {
		groups["asynq "+q] = []string{"asynq:{" + q + "}:t:evt_1", "asynq:{" + q + "}:t:evt_2", "asynq:{" + q + "}:pending", "asynq:{" + q + "}:active"}
	}
	slots := map[int64]string{}
	for name, keys := range groups {
		s := slot(keys[0])
		for _, k := range keys[1:] {
			assert.Equal(t, s, slot(k), "%s: %s and %s share a slot", name, keys[0], k)
		}
		slots[s] = name
	}
	assert.Len(t, slots, len(groups), "each tag has a slot of its own, so load spreads: %v", slots)

	a, b := queue.Key("email", "a"), queue.Key("email", "b")
	assert.NoError(t, c.MSet(ctx, a, "1", b, "2").Err(), "a multi-key command over one tag")
	assert.Equal(t, []any{"1", "2"}, c.MGet(ctx, a, b).Val())
}
