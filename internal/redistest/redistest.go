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
// when t ends. The reservations live in database 0 (keys
// cleantrack:redistest:lock:<n>), so flushing a lent database never drops its
// own reservation.
func NewURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("redistest: TEST_REDIS_URL: %v", err)
	}
	locks := client(t, base, 0)
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	tok := hex.EncodeToString(token)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("%s:%d", lockKey, db)
			ok, err := locks.SetNX(ctx, key, tok, 20*time.Minute).Result()
			if err != nil {
				locks.Close()
				t.Fatalf("redistest: Redis at TEST_REDIS_URL (%s) is not reachable: %v; start it (see README, \"Running the tests\")", base.Redacted(), err)
			}
			if !ok {
				continue
			}
			c := client(t, base, db)
			c.FlushDB(ctx)
			t.Cleanup(func() {
				cctx := context.Background()
				c.FlushDB(cctx)
				c.Close()
				// Release only our own reservation.
				if locks.Get(cctx, key).Val() == tok {
					locks.Del(cctx, key)
				}
				locks.Close()
			})
			u := *base
			u.Path = fmt.Sprintf("/%d", db)
			return u.String()
		}
		if time.Now().After(deadline) {
			locks.Close()
			t.Fatalf("redistest: no free Redis database after 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func client(t testing.TB, base *url.URL, db int) *redis.Client {
	t.Helper()
	u := *base
	u.Path = fmt.Sprintf("/%d", db)
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return redis.NewClient(opt)
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
