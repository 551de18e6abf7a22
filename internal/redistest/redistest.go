// Package redistest lends each test a Redis logical database of its own on the
// server named by TEST_REDIS_URL, so tests in different packages never see each
// other's Asynq queues. The database is flushed before and after use.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the server tests use when TEST_REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379"

const lockKey = "cleantrack:redistest:lock"

// ServerURL is TEST_REDIS_URL or DefaultURL, without a database number.
func ServerURL() string {
	if v := os.Getenv("TEST_REDIS_URL"); v != "" {
		return v
	}
	return DefaultURL
}

// NewURL reserves a free logical database (1-15) and returns a redis:// URL for
// it. It waits while all are lent out, and gives the database back, flushed,
// when t ends.
func NewURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("redistest: TEST_REDIS_URL: %v", err)
	}
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	tok := hex.EncodeToString(token)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for db := 1; db <= 15; db++ {
			u := *base
			u.Path = fmt.Sprintf("/%d", db)
			opt, err := redis.ParseURL(u.String())
			if err != nil {
				t.Fatalf("redistest: %v", err)
			}
			c := redis.NewClient(opt)
			ok, err := c.SetNX(ctx, lockKey, tok, 15*time.Minute).Result()
			if err != nil {
				c.Close()
				t.Fatalf("redistest: Redis at TEST_REDIS_URL (%s) is not reachable: %v; start it (see README, \"Running the tests\")", base.Redacted(), err)
			}
			if !ok {
				c.Close()
				continue
			}
			flushKeepingLock(ctx, c, tok)
			t.Cleanup(func() {
				defer c.Close()
				cctx := context.Background()
				c.FlushDB(cctx)
			})
			return u.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: no free Redis database after 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NewClient is NewURL plus a go-redis client on it, closed when t ends.
func NewClient(t testing.TB) (*redis.Client, string) {
	t.Helper()
	u := NewURL(t)
	opt, _ := redis.ParseURL(u)
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c, u
}

func flushKeepingLock(ctx context.Context, c *redis.Client, tok string) {
	c.FlushDB(ctx)
	c.Set(ctx, lockKey, tok, 15*time.Minute)
}
