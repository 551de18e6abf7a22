// Package postgres is CleanTrack's store: every SQL statement the system runs
// lives here, behind methods that take a context first and speak in domain
// terms. It knows nothing of HTTP or Asynq. PostgreSQL is the system of record;
// Redis only carries tasks.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/cleantrack/jobs/migrations"
)

// ErrNotFound is returned when the row a method looks for does not exist.
var ErrNotFound = errors.New("not found")

// Store is the handle every process shares. It is safe for concurrent use.
type Store struct {
	DB *sqlx.DB
}

// DefaultMaxConns is the pool size of a Store opened without MaxConns.
const DefaultMaxConns = 25

// Options tune the connection pool of a Store.
type Options struct {
	// MaxConns caps the connections the pool holds open at once
	// (DATABASE_MAX_CONNS); 0 means DefaultMaxConns. Through PgBouncer these
	// are client connections; straight to PostgreSQL each is a backend, and
	// the sum over every process must stay under max_connections.
	MaxConns int
}

// Open connects to databaseURL with the default pool and checks the
// connection within ctx.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	return OpenWith(ctx, databaseURL, Options{})
}

// OpenWith connects to databaseURL with the pool o describes and checks the
// connection within ctx. The URL may point at PostgreSQL or at PgBouncer in
// transaction mode: see PoolerSafeURL.
func OpenWith(ctx context.Context, databaseURL string, o Options) (*Store, error) {
	dsn, err := PoolerSafeURL(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	n := o.MaxConns
	if n <= 0 {
		n = DefaultMaxConns
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &Store{DB: db}, nil
}

// PoolerSafeURL returns databaseURL (a postgres:// URL or a key=value DSN)
// with lib/pq's binary_parameters=yes added unless the URL sets it already.
//
// Without it lib/pq runs a statement with parameters outside a transaction
// in two round trips: Parse and Describe of an unnamed statement, a Sync,
// then Bind and Execute. PgBouncer in pool_mode=transaction may hand the
// server connection to another client at that Sync, and the Bind then fails
// ("unnamed prepared statement does not exist", 26000) or lands on another
// client's statement ("bind message supplies 3 parameters, but prepared
// statement \"\" requires 1", 08P01). With it, Parse, Bind and Execute go in
// one message batch ended by one Sync, which PgBouncer never splits. The
// store passes JSON and text as strings, so only []byte values change wire
// format (they travel as binary, as bytea expects).
func PoolerSafeURL(databaseURL string) (string, error) {
	if strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://") {
		u, err := url.Parse(databaseURL)
		if err != nil {
			// The parse error may quote the URL, and with it a password.
			return "", errors.New("database URL is not a valid URL")
		}
		q := u.Query()
		if q.Get("binary_parameters") == "" {
			q.Set("binary_parameters", "yes")
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	if strings.Contains(databaseURL, "binary_parameters=") {
		return databaseURL, nil
	}
	return strings.TrimSpace(databaseURL + " binary_parameters=yes"), nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.DB.Close() }

// Ping reports whether the database answers within ctx.
func (s *Store) Ping(ctx context.Context) error { return s.DB.PingContext(ctx) }

// inTx runs fn in a transaction, committing when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// notFound maps sql.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// migrationLockID is the advisory lock that makes concurrent migrate runs wait
// for each other instead of racing.
const migrationLockID = 0x436c65616e54 // "CleanT"

func (s *Store) migrator() (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID))
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, s.DB.DB, migrations.FS,
		goose.WithSessionLocker(locker))
}

// AppliedMigration describes one migration Migrate ran.
type AppliedMigration struct {
	Version  int64
	Name     string
	Duration time.Duration
}

// Migrate applies every pending migration and returns those it applied (none
// when the schema is current). Concurrent callers serialise on an advisory
// lock, so two deploys migrating at once are safe.
func (s *Store) Migrate(ctx context.Context) ([]AppliedMigration, error) {
	p, err := s.migrator()
	if err != nil {
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	results, err := p.Up(ctx)
	var out []AppliedMigration
	for _, r := range results {
		out = append(out, AppliedMigration{Version: r.Source.Version, Name: baseName(r.Source.Path), Duration: r.Duration})
	}
	if err != nil {
		return out, fmt.Errorf("migrate: %w", err)
	}
	return out, nil
}

// MigrationState is one migration and whether it has been applied.
type MigrationState struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// MigrationStatus lists every known migration with its state.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	p, err := s.migrator()
	if err != nil {
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]MigrationState, 0, len(st))
	for _, m := range st {
		out = append(out, MigrationState{
			Version:   m.Source.Version,
			Name:      baseName(m.Source.Path),
			Applied:   m.State == goose.StateApplied,
			AppliedAt: m.AppliedAt,
		})
	}
	return out, nil
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
