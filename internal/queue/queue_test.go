package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
)

func TestRedisOpt(t *testing.T) {
	opt, err := queue.RedisOpt("redis://ops:pw@cache:6380/3")
	require.NoError(t, err)
	c := opt.(asynq.RedisClientOpt)
	assert.Equal(t, "ops", c.Username, "the ACL username must survive")
	assert.Equal(t, "pw", c.Password)
	assert.Equal(t, "cache:6380", c.Addr)
	assert.Equal(t, 3, c.DB)
	assert.Nil(t, c.TLSConfig)

	opt, err = queue.RedisOpt("rediss://default:pw@secure.example:6380/0")
	require.NoError(t, err)
	c = opt.(asynq.RedisClientOpt)
	require.NotNil(t, c.TLSConfig)
	assert.Equal(t, "secure.example", c.TLSConfig.ServerName)
	assert.Equal(t, "default", c.Username)

	opt, err = queue.RedisOpt("redis-sentinel://ops:pw@s1:26379,s2:26379?master=main")
	require.NoError(t, err)
	f := opt.(asynq.RedisFailoverClientOpt)
	assert.Equal(t, "main", f.MasterName)
	assert.Equal(t, []string{"s1:26379", "s2:26379"}, f.SentinelAddrs)
	assert.Equal(t, "ops", f.Username)

	opt, err = queue.RedisOpt("redis-cluster://ops:pw@n1:7000,n2:7001,n3:7002")
	require.NoError(t, err)
	cl := opt.(asynq.RedisClusterClientOpt)
	assert.Equal(t, []string{"n1:7000", "n2:7001", "n3:7002"}, cl.Addrs)
	assert.Equal(t, "ops", cl.Username)
	assert.Equal(t, "pw", cl.Password)

	_, err = queue.RedisOpt("memcached://x")
	assert.ErrorContains(t, err, "REDIS_URL")
}

// A username in REDIS_URL really authenticates against a Redis ACL user.
func TestRedisOptUsernameAuthenticates(t *testing.T) {
	url := redistest.NewURL(t)
	admin := queue.RedisClient(mustOpt(t, url))
	defer admin.Close()
	ctx := context.Background()
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "cleantrack_test", "on", ">s3cret", "~*", "&*", "+@all").Err())
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", "cleantrack_test") })

	withUser := "redis://cleantrack_test:s3cret@" + url[len("redis://"):]
	c := queue.RedisClient(mustOpt(t, withUser))
	defer c.Close()
	assert.Equal(t, "cleantrack_test", c.Do(ctx, "ACL", "WHOAMI").Val())
}

func mustOpt(t *testing.T, url string) asynq.RedisConnOpt {
	t.Helper()
	o, err := queue.RedisOpt(url)
	require.NoError(t, err)
	return o
}

func TestEnqueueReportsDuplicates(t *testing.T) {
	opt := mustOpt(t, redistest.NewURL(t))
	client := asynq.NewClient(opt)
	defer client.Close()
	ctx := context.Background()
	task := asynq.NewTask("probe", []byte(`{}`))
	info, dup, err := queue.Enqueue(ctx, client, task, asynq.TaskID("same"))
	require.NoError(t, err)
	assert.False(t, dup)
	assert.Equal(t, "same", info.ID)
	_, dup, err = queue.Enqueue(ctx, client, task, asynq.TaskID("same"))
	require.NoError(t, err)
	assert.True(t, dup)
}

func TestRetryDelayAndFailureClasses(t *testing.T) {
	boom := errors.New("boom")
	prev := time.Duration(0)
	for n := 0; n < 6; n++ {
		d := queue.RetryDelay(n, boom, nil)
		assert.Greater(t, d, prev/2, "backoff grows")
		assert.LessOrEqual(t, d, 72*time.Minute, "backoff is capped")
		prev = d
	}
	assert.LessOrEqual(t, queue.RetryDelay(50, boom, nil), 72*time.Minute)

	limited := queue.RateLimited(7*time.Second, boom)
	assert.Equal(t, 7*time.Second, queue.RetryDelay(3, limited, nil))
	assert.False(t, queue.IsFailure(limited), "a rate limit does not use up the retry budget")
	assert.True(t, queue.IsFailure(boom))
	assert.ErrorIs(t, limited, boom)
}
