// Command withpgbouncer runs a command with a private PgBouncer in
// pool_mode=transaction in front of the server of TEST_DATABASE_URL, and
// TEST_PGBOUNCER_URL pointing at it, so the tests it runs connect through the
// pooler (`make e2e-pgbouncer`). It installs pgbouncer with apt-get when it is
// missing, stops it by process id when the command ends, prints how many
// transactions went through it, and fails when none did.
//
//	go run ./internal/pgbouncertest/cmd/withpgbouncer -- go test ./internal/e2e/
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	_ "github.com/lib/pq"

	"github.com/cleantrack/jobs/internal/pgbouncertest"
	"github.com/cleantrack/jobs/internal/pgtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "withpgbouncer:", err)
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("usage: withpgbouncer -- <command> [args...]")
	}
	admin := pgtest.AdminURL()
	pgb, err := pgbouncertest.Start(pgbouncertest.Options{Upstream: admin, PoolSize: 10, Install: true})
	if err != nil {
		return err
	}
	defer pgb.Stop()
	through := pgb.URL(admin)
	fmt.Printf("withpgbouncer: PgBouncer (pool_mode=transaction, default_pool_size=10) on %s, pid %d\n", pgb.Addr(), pgb.Pid())

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = os.Stdout, os.Stderr, os.Stdin
	cmd.Env = append(os.Environ(), "TEST_PGBOUNCER_URL="+through)
	runErr := cmd.Run()

	n, err := transactions(ctx, pgb)
	if err != nil {
		return errors.Join(runErr, fmt.Errorf("read PgBouncer's stats: %w", err))
	}
	fmt.Printf("withpgbouncer: %d transactions went through PgBouncer\n", n)
	if runErr == nil && n == 0 {
		return errors.New("no transaction went through PgBouncer: the command did not use TEST_PGBOUNCER_URL")
	}
	return runErr
}

// transactions sums total_xact_count over every pool but the admin console's.
func transactions(ctx context.Context, pgb *pgbouncertest.Server) (int64, error) {
	// The admin console speaks only the simple query protocol: no parameters.
	db, err := sql.Open("postgres", "postgres://postgres@"+pgb.Addr()+"/pgbouncer?sslmode=disable")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SHOW STATS")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	var total int64
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		var db string
		var n int64
		for i, c := range cols {
			switch c {
			case "database":
				db = vals[i].String
			case "total_xact_count":
				fmt.Sscan(vals[i].String, &n)
			}
		}
		if db != "pgbouncer" {
			total += n
		}
	}
	return total, rows.Err()
}
