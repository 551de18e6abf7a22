package redistest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/enginetest"
	"github.com/cleantrack/jobs/internal/redistest"
)

// Two reservations of one server never share a database, and a lent
// database starts empty.
func TestReserveLendsDistinctEmptyDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, relA, err := redistest.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	defer relA()
	b, relB, err := redistest.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	defer relB()
	assert.NotEqual(t, a, b)
	c, err := redistest.Open(a)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Set(ctx, "probe", "1", 0).Err())
	assert.Equal(t, []string{"probe"}, redistest.Keys(t, a))
	assert.Empty(t, redistest.Keys(t, b))
	redistest.Flush(t, a)
	assert.Empty(t, redistest.Keys(t, a))
}

// On a cluster a test holds the whole cluster: a second reservation waits
// for the first, and each starts with every key of the previous one gone
// from every master.
func TestReserveOnCluster(t *testing.T) {
	t.Parallel()
	if err := enginetest.Available(); err != nil {
		t.Skip(err.Error())
	}
	ctx := context.Background()
	cl, err := enginetest.StartCluster(ctx, t.TempDir(), enginetest.ClusterOptions{})
	require.NoError(t, err)
	t.Cleanup(cl.Stop)
	require.True(t, redistest.IsCluster(cl.URL()))

	u, release, err := redistest.ReserveOn(ctx, cl.URL(), time.Minute)
	require.NoError(t, err)
	assert.Equal(t, cl.URL(), u)
	c, err := redistest.Open(u)
	require.NoError(t, err)
	defer c.Close()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		require.NoError(t, c.Set(ctx, k, k, 0).Err())
	}
	assert.Len(t, redistest.Keys(t, u), 6)

	_, _, err = redistest.ReserveOn(ctx, cl.URL(), 300*time.Millisecond)
	assert.ErrorContains(t, err, "lent to another test", "one test at a time holds a cluster")

	redistest.Flush(t, u)
	assert.Empty(t, redistest.Keys(t, u))
	_, _, err = redistest.ReserveOn(ctx, cl.URL(), 300*time.Millisecond)
	assert.Error(t, err, "a flush keeps the holder's reservation")

	require.NoError(t, c.Set(ctx, "left-behind", "x", 0).Err())
	release()
	_, release2, err := redistest.ReserveOn(ctx, cl.URL(), 5*time.Second)
	require.NoError(t, err, "released, the cluster is free")
	defer release2()
	n, err := cl.DBSize(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "only the new reservation is left")
}
