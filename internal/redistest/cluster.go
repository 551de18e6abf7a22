package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// reserveCluster lends the whole cluster at url: it takes the one
// reservation key (SET NX with a token, renewed while held), then deletes
// every other key on every master. release deletes them again and gives the
// reservation back.
func reserveCluster(ctx context.Context, url string, wait time.Duration) (string, func(), error) {
	addrs := strings.Split(strings.TrimPrefix(url, clusterScheme), ",")
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	tok := hex.EncodeToString(token)
	key := lockKey + ":cluster"
	// The reservation expires, so a test binary killed mid-test does not
	// block the cluster for good; a holder renews it while it runs.
	const ttl = time.Minute
	deadline := time.Now().Add(wait)
	for {
		ok, err := c.SetNX(ctx, key, tok, ttl).Result()
		if err != nil {
			c.Close()
			return "", nil, fmt.Errorf("cannot reach the Redis Cluster at TEST_REDIS_URL (%s): %w; start one (see docs/scaling.md)", url, err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			c.Close()
			return "", nil, fmt.Errorf("the Redis Cluster stayed lent to another test for %s", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(ttl / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				c.Expire(context.Background(), key, ttl)
			}
		}
	}()
	if err := flush(ctx, c); err != nil {
		close(stop)
		wg.Wait()
		c.Del(context.Background(), key)
		c.Close()
		return "", nil, err
	}
	release := func() {
		close(stop)
		wg.Wait()
		cctx := context.Background()
		_ = flush(cctx, c)
		if c.Get(cctx, key).Val() == tok {
			c.Del(cctx, key)
		}
		c.Close()
	}
	return url, release, nil
}

// flush empties a lent Redis. On a single server that is FLUSHDB of the lent
// database (the reservations live in database 0). On a cluster it deletes,
// master by master, every key but the reservations, which FLUSHALL would
// drop too.
func flush(ctx context.Context, c redis.UniversalClient) error {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return c.FlushDB(ctx).Err()
	}
	return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := ownKeys(ctx, m)
		if err != nil || len(keys) == 0 {
			return err
		}
		// One key per UNLINK: keys on one node may sit in different slots.
		_, err = m.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Unlink(ctx, k)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete %d keys on %s: %w", len(keys), m.Options().Addr, err)
		}
		return nil
	})
}

// ownKeys lists the keys of one server's current database but the
// reservations.
func ownKeys(ctx context.Context, m *redis.Client) ([]string, error) {
	var keys []string
	iter := m.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); !strings.HasPrefix(k, lockKey) {
			keys = append(keys, k)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", m.Options().Addr, err)
	}
	return keys, nil
}
