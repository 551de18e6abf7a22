// Package pgtest gives each test its own freshly migrated PostgreSQL database on
// the server named by TEST_DATABASE_URL, cloned from a migrated template so a
// new database costs milliseconds, and dropped when the test ends. With
// TEST_PGBOUNCER_URL set (a PgBouncer in front of that server, as `make
// e2e-pgbouncer` starts), the URLs it hands out go through PgBouncer, while
// databases are still created, migrated and dropped on the server directly.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/migrations"
)

// DefaultURL is the server tests use when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is TEST_DATABASE_URL or DefaultURL.
func AdminURL() string {
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		return v
	}
	return DefaultURL
}

// PoolerURL is TEST_PGBOUNCER_URL: a PgBouncer in front of AdminURL's
// server, or "" to connect directly.
func PoolerURL() string { return os.Getenv("TEST_PGBOUNCER_URL") }

// NewURL creates an isolated, migrated database and returns its URL, through
// PgBouncer when TEST_PGBOUNCER_URL is set. The database is dropped when t
// ends.
func NewURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open("postgres", AdminURL())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("pgtest: PostgreSQL at TEST_DATABASE_URL (%s) is not reachable: %v; start it (see README, \"Running the tests\")", redact(AdminURL()), err)
	}
	tmpl := ensureTemplate(t, admin)
	name := "cleantrack_test_" + randomSuffix()
	var lastErr error
	for i := 0; i < 20; i++ {
		// Two packages cloning the template at once may collide; try again.
		if _, lastErr = admin.ExecContext(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); lastErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("pgtest: create database: %v", lastErr)
	}
	t.Cleanup(func() {
		a, err := sql.Open("postgres", AdminURL())
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	if p := PoolerURL(); p != "" {
		return withDatabase(p, name)
	}
	return withDatabase(AdminURL(), name)
}

// NewStore is NewURL plus an open postgres.Store, closed when t ends.
func NewStore(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	u := NewURL(t)
	s, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, u
}

// ensureTemplate builds, once per migration set, a migrated template database.
func ensureTemplate(t testing.TB, admin *sql.DB) string {
	t.Helper()
	ctx := context.Background()
	name := "cleantrack_tmpl_" + migrationsHash()
	conn, err := admin.Conn(ctx)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close()
	// Serialise template creation across test packages running in parallel.
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		t.Fatalf("pgtest: lock: %v", err)
	}
	defer conn.ExecContext(ctx, "SELECT pg_advisory_unlock(727274)")
	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if exists {
		return name
	}
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create template: %v", err)
	}
	s, err := postgres.Open(ctx, withDatabase(AdminURL(), name))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		s.Close()
		_, _ = conn.ExecContext(ctx, "DROP DATABASE "+name)
		t.Fatalf("pgtest: migrate template: %v", err)
	}
	s.Close()
	return name
}

func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(migrations.FS, p)
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func withDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return strings.ReplaceAll(u.Redacted(), "%2A", "*")
}
