package enginetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/enginetest"
)

func requireRedisServer(t *testing.T) {
	t.Helper()
	if err := enginetest.Available(); err != nil {
		t.Skip(err.Error())
	}
}

// A write to the primary survives its SIGKILL: the replica is promoted, a
// Sentinel-aware client finds it, and the old primary comes back as a
// replica of the new one.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	requireRedisServer(t)
	ctx := context.Background()
	g, err := enginetest.StartSentinel(ctx, t.TempDir(), enginetest.SentinelOptions{})
	require.NoError(t, err)
	t.Cleanup(g.Stop)

	c := g.Client()
	defer c.Close()
	require.NoError(t, c.Set(ctx, "before", "kept", 0).Err())
	// Replication is asynchronous: wait until the replica has the write
	// before killing the primary.
	require.NoError(t, c.Do(ctx, "WAIT", 1, 5000).Err())

	old, err := g.KillPrimary(ctx)
	require.NoError(t, err)
	assert.False(t, old.Running())
	p, err := g.WaitPromotion(ctx, old.Addr(), 30*time.Second)
	require.NoError(t, err)
	assert.NotEqual(t, old.Addr(), p.Addr())

	assert.Equal(t, "kept", c.Get(ctx, "before").Val(), "the client follows the promoted replica")
	require.NoError(t, c.Set(ctx, "after", "written", 0).Err())

	require.NoError(t, g.Restart(ctx, old))
	oc := old.Client()
	defer oc.Close()
	role, err := oc.Do(ctx, "ROLE").Slice()
	require.NoError(t, err)
	assert.Equal(t, "slave", role[0], "the old primary comes back as a replica")
	assert.Eventually(t, func() bool { return oc.Get(ctx, "after").Val() == "written" }, 10*time.Second, 50*time.Millisecond)
	assert.Contains(t, g.URL(), "redis-sentinel://127.0.0.1:")
}

// The cluster serves every slot, a cross-slot command is refused as in
// production, and FlushAll empties every master.
func TestCluster(t *testing.T) {
	t.Parallel()
	requireRedisServer(t)
	ctx := context.Background()
	cl, err := enginetest.StartCluster(ctx, t.TempDir(), enginetest.ClusterOptions{})
	require.NoError(t, err)
	t.Cleanup(cl.Stop)
	require.Len(t, cl.Nodes, 3)

	c := cl.Client()
	defer c.Close()
	for i := range 30 {
		require.NoError(t, c.Set(ctx, "key:"+string(rune('a'+i)), i, 0).Err())
	}
	n, err := cl.DBSize(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 30, n)
	perNode := 0
	for _, node := range cl.Nodes {
		nc := node.Client()
		if k := nc.DBSize(ctx).Val(); k > 0 {
			perNode++
		}
		nc.Close()
	}
	assert.Equal(t, 3, perNode, "keys spread over every master")

	assert.ErrorContains(t, c.Do(ctx, "MSET", "key:a", "1", "key:b", "2").Err(), "CROSSSLOT",
		"keys in different slots cannot share a command")
	assert.NoError(t, c.Do(ctx, "MSET", "{t}a", "1", "{t}b", "2").Err(), "hash-tagged keys can")

	require.NoError(t, cl.FlushAll(ctx))
	n, err = cl.DBSize(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
}
