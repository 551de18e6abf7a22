//go:build bench || drills

package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/redistest"
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

// RedisDB is a logical Redis database borrowed through internal/redistest's
// reservations (databases 1-15, reserved in database 0), so the bench and the
// test suite never share one. Release flushes it and gives it back.
type RedisDB struct {
	URL     string
	Client  *redis.Client
	release func()
}

// LockRedisDB reserves a free logical database on serverURL (no path),
// waiting up to two minutes.
func LockRedisDB(ctx context.Context, serverURL string) (*RedisDB, error) {
	u, release, err := redistest.ReserveOn(ctx, serverURL, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		release()
		return nil, err
	}
	return &RedisDB{URL: u, Client: redis.NewClient(opt), release: release}, nil
}

// Flush empties the database; the reservation lives elsewhere and stays.
func (r *RedisDB) Flush(ctx context.Context) {
	r.Client.FlushDB(ctx)
}

// Release flushes the database, closes the client and gives the database back.
func (r *RedisDB) Release() {
	r.Client.Close()
	r.release()
}
