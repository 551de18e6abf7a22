// Package redistest lends each test a Redis logical database of its own on the
// server named by TEST_REDIS_URL, so tests in different packages never see each
// other's Asynq queues. The database is flushed before and after use.
//
// A Redis Cluster (TEST_REDIS_URL=redis-cluster://host:port,...) has only
// database 0, and Asynq's key names cannot be prefixed, so there a test is
// lent the whole cluster: one test at a time holds it, with every key but the
// reservations deleted before and after use. Tests that build their Redis
// client from the URL through queue.RedisOpt (the end-to-end tests) run
// unchanged; NewClient, which returns a single-server client, fails the test
// there and names NewUniversalClient. Under a cluster a test that holds it
// must not run parallel subtests: they would wait for a parallel slot that
// tests waiting for the cluster hold, for ever.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the server tests use when TEST_REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379"

// lockKey prefixes the reservations of logical databases, kept in database
// 0, and the one reservation of a whole cluster. Hash-tagged like every key of
// CleanTrack's (queue.Key; not imported, so that this package stays below
// queue).
const lockKey = "cleantrack:{redistest}:lock"

// clusterScheme starts a Redis Cluster URL.
const clusterScheme = "redis-cluster://"

// IsCluster reports whether url names a Redis Cluster.
func IsCluster(url string) bool { return strings.HasPrefix(url, clusterScheme) }

// ServerURL is TEST_REDIS_URL or DefaultURL, without a database number.
func ServerURL() string {
	if v := os.Getenv("TEST_REDIS_URL"); v != "" {
		return v
	}
	return DefaultURL
}

// NewURL reserves a free logical database (1-15) and returns a redis:// URL for
// it. It waits while all are lent out, and gives the database back, flushed,
// when t ends. On a cluster it returns TEST_REDIS_URL itself, once the test
// holds the cluster.
func NewURL(t testing.TB) string {
	t.Helper()
	wait := 3 * time.Minute
	if IsCluster(ServerURL()) {
		// Tests hold a cluster one at a time: wait for the whole queue.
		wait = 15 * time.Minute
	}
	u, release, err := Reserve(context.Background(), wait)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(release)
	return u
}

// Reserve lends a free logical database (1-15) of the TEST_REDIS_URL server,
// flushed, waiting up to wait for one; release flushes it and gives it back.
// Benchmarks and drills use it too, so nothing shares a database. The
// reservations live in database 0 (keys cleantrack:{redistest}:lock:<n>), so
// flushing a lent database never drops its own reservation. On a cluster it
// lends the whole cluster instead (see the package comment).
func Reserve(ctx context.Context, wait time.Duration) (dbURL string, release func(), err error) {
	return ReserveOn(ctx, ServerURL(), wait)
}

// ReserveOn is Reserve on the server at serverURL (a redis:// URL without a
// database number).
func ReserveOn(ctx context.Context, serverURL string, wait time.Duration) (dbURL string, release func(), err error) {
	if IsCluster(serverURL) {
		return reserveCluster(ctx, serverURL, wait)
	}
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

// NewClient is NewURL plus a go-redis client on it, closed when t ends. It
// needs a single server: under a cluster TEST_REDIS_URL it fails the test,
// naming NewUniversalClient.
func NewClient(t testing.TB) (*redis.Client, string) {
	t.Helper()
	if IsCluster(ServerURL()) {
		t.Fatalf("redistest: NewClient needs a single Redis server, TEST_REDIS_URL is a cluster; use NewUniversalClient")
	}
	u := NewURL(t)
	opt, _ := redis.ParseURL(u)
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c, u
}

// NewUniversalClient is NewURL plus a go-redis client on it that works on a
// single server and on a cluster alike, closed when t ends.
func NewUniversalClient(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	u := NewURL(t)
	c, err := Open(u)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, u
}

// Keys lists every key of the Redis a test was lent (on a cluster, of every
// master, but the reservations).
func Keys(t testing.TB, url string) []string {
	t.Helper()
	c, err := Open(url)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer c.Close()
	ctx := context.Background()
	var out []string
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			keys, err := ownKeys(ctx, m)
			mu.Lock()
			out = append(out, keys...)
			mu.Unlock()
			return err
		})
	} else {
		out, err = ownKeys(ctx, c.(*redis.Client))
	}
	if err != nil {
		t.Fatalf("redistest: list keys: %v", err)
	}
	return out
}

// Open opens a go-redis client on a URL NewURL or Reserve returned: a
// cluster client for redis-cluster://, a plain client otherwise.
func Open(url string) (redis.UniversalClient, error) {
	if IsCluster(url) {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(strings.TrimPrefix(url, clusterScheme), ",")}), nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	return redis.NewClient(opt), nil
}

// Flush deletes every key of the Redis a test was lent (url from NewURL), as
// a crash without persistence or an operator's FLUSHALL would. On a cluster
// it empties every master but keeps the test's reservation.
func Flush(t testing.TB, url string) {
	t.Helper()
	c, err := Open(url)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer c.Close()
	if err := flush(context.Background(), c); err != nil {
		t.Fatalf("redistest: flush %s: %v", url, err)
	}
}
