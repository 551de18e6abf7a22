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
	u, release, err := Reserve(context.Background(), 3*time.Minute)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(release)
	return u
}

// Reserve lends a free logical database (1-15) of the TEST_REDIS_URL server,
// flushed, waiting up to wait for one; release flushes it and gives it back.
// Benchmarks and drills use it too, so nothing shares a database. The
// reservations live in database 0 (keys cleantrack:redistest:lock:<n>), so
// flushing a lent database never drops its own reservation.
func Reserve(ctx context.Context, wait time.Duration) (dbURL string, release func(), err error) {
	return ReserveOn(ctx, ServerURL(), wait)
}

// ReserveOn is Reserve on the server at serverURL (a redis:// URL without a
// database number).
func ReserveOn(ctx context.Context, serverURL string, wait time.Duration) (dbURL string, release func(), err error) {
	base, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("redis server URL: %w", err)
	}
	locks, err := client(base, 0)
	if err != nil {
		return "", nil, err
	}
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	tok := hex.EncodeToString(token)
	deadline := time.Now().Add(wait)
	for {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("%s:%d", lockKey, db)
			ok, err := locks.SetNX(ctx, key, tok, 30*time.Minute).Result()
			if err != nil {
				locks.Close()
				return "", nil, fmt.Errorf("cannot reach Redis at TEST_REDIS_URL (%s): %w; start it (see README, \"Running the tests\")", base.Redacted(), err)
			}
			if !ok {
				continue
			}
			c, _ := client(base, db)
			c.FlushDB(ctx)
			release := func() {
				cctx := context.Background()
				c.FlushDB(cctx)
				c.Close()
				// Release only our own reservation.
				if locks.Get(cctx, key).Val() == tok {
					locks.Del(cctx, key)
				}
				locks.Close()
			}
			u := *base
			u.Path = fmt.Sprintf("/%d", db)
			return u.String(), release, nil
		}
		if time.Now().After(deadline) {
			locks.Close()
			return "", nil, fmt.Errorf("no free Redis database after %s", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func client(base *url.URL, db int) (*redis.Client, error) {
	u := *base
	u.Path = fmt.Sprintf("/%d", db)
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("TEST_REDIS_URL: %w", err)
	}
	return redis.NewClient(opt), nil
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
