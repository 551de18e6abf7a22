//go:build bench || drills

package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"sync"
	"time"

	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/cleantrack/jobs/internal/postgres"
)

// ScratchDB is a migrated database of its own on a PostgreSQL server, dropped
// by Drop.
type ScratchDB struct {
	Name     string
	URL      string
	adminURL string
}

// CreateDatabase creates a database named prefix_<random> on the server of
// adminURL and applies CleanTrack's migrations to it.
func CreateDatabase(ctx context.Context, adminURL, prefix string) (*ScratchDB, error) {
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	name := prefix + "_" + randomHex(5)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	db := &ScratchDB{Name: name, URL: WithDatabase(adminURL, name), adminURL: adminURL}
	s, err := postgres.Open(ctx, db.URL)
	if err != nil {
		db.Drop(context.Background())
		return nil, err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		db.Drop(context.Background())
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	return db, nil
}

// Drop removes the database, closing whatever still uses it.
func (d *ScratchDB) Drop(ctx context.Context) {
	admin, err := sql.Open("postgres", d.adminURL)
	if err != nil {
		return
	}
	defer admin.Close()
	_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+d.Name+" WITH (FORCE)")
}

// Open opens a plain database/sql handle on the scratch database.
func (d *ScratchDB) Open() (*sql.DB, error) { return sql.Open("postgres", d.URL) }

// WithDatabase returns raw with its path replaced by /db.
func WithDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redisLockKey is the key internal/redistest sets in a logical database it
// lends out; holding it keeps tests off the database the bench uses.
const redisLockKey = "cleantrack:redistest:lock"

// RedisDB is a logical Redis database borrowed the way internal/redistest
// lends them (databases 1-15, a lock key in each), so the bench and the test
// suite never share one. Release flushes it and gives it back.
type RedisDB struct {
	URL    string
	Client *redis.Client
	tok    string
	stop   chan struct{}
	wg     sync.WaitGroup
}

// LockRedisDB reserves a free logical database on serverURL (no path), waiting
// up to two minutes, and keeps its lock fresh until Release.
func LockRedisDB(ctx context.Context, serverURL string) (*RedisDB, error) {
	base, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	tok := randomHex(8)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for db := 15; db >= 1; db-- {
			u := *base
			u.Path = fmt.Sprintf("/%d", db)
			opt, err := redis.ParseURL(u.String())
			if err != nil {
				return nil, err
			}
			c := redis.NewClient(opt)
			ok, err := c.SetNX(ctx, redisLockKey, tok, 15*time.Minute).Result()
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("redis at %s is not reachable: %w", base.Redacted(), err)
			}
			if !ok {
				c.Close()
				continue
			}
			r := &RedisDB{URL: u.String(), Client: c, tok: tok, stop: make(chan struct{})}
			r.Flush(ctx)
			r.wg.Add(1)
			go r.refresh()
			return r, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no free Redis database on %s after 2 minutes", base.Redacted())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *RedisDB) refresh() {
	defer r.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.Client.Set(context.Background(), redisLockKey, r.tok, 15*time.Minute)
		}
	}
}

// Flush empties the database and puts the lock back.
func (r *RedisDB) Flush(ctx context.Context) {
	r.Client.FlushDB(ctx)
	r.Client.Set(ctx, redisLockKey, r.tok, 15*time.Minute)
}

// Release flushes the database (which drops the lock) and closes the client.
func (r *RedisDB) Release() {
	close(r.stop)
	r.wg.Wait()
	r.Client.FlushDB(context.Background())
	r.Client.Close()
}
