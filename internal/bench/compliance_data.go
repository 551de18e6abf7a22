//go:build bench

package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/cleantrack/jobs/internal/postgres"
)

// The compliance benchmark's own SQL: loading its data set and the bare
// statements it measures the product's queries against. It lives here, not
// in the product store, because nothing but the benchmark runs it.

// ComplianceDataShape is the size of the compliance benchmark's data set.
type ComplianceDataShape struct {
	Accounts          int // each with one owner, two locations and a protocol
	EquipmentPerAcct  int
	CleaningsPerEquip int
	OverdueEveryNth   int // every Nth piece of equipment is overdue
	InactiveEveryNth  int // every Nth (offset 7) is deactivated
	IntervalHours     int
	LateEveryNth      int // every Nth cleans at 52 h gaps instead of 40 h
}

// buildComplianceData fills an empty, migrated database with the benchmark
// data set in a handful of generate_series statements, relative to now. FK
// triggers are off while loading (the rows are consistent by construction);
// the indexes are those of the migrations. Statistics are refreshed at the end.
func buildComplianceData(ctx context.Context, db *sqlx.DB, sh ComplianceDataShape, now time.Time) error {
	const (
		qUsers = `
INSERT INTO users (id, email, first_name, last_name)
SELECT a, 'owner' || a || '@bench.example.com', 'Owner', 'No ' || a FROM generate_series(1, $1) a`
		qAccounts = `
INSERT INTO accounts (id, name, slug, owner_id, status, timezone, created_at)
SELECT a, 'Bench ' || a, 'bench-' || a, a, (ARRAY['trialing', 'active', 'past_due', 'active'])[a % 4 + 1],
       (ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Sydney'])[a % 5 + 1],
       $2::timestamptz - interval '60 days'
FROM generate_series(1, $1) a`
		qMembers = `
INSERT INTO account_members (account_id, user_id, role) SELECT a, a, 'owner' FROM generate_series(1, $1) a`
		qLocations = `
INSERT INTO locations (id, account_id, name) SELECT l, (l + 1) / 2, 'Location ' || l FROM generate_series(1, 2 * $1) l`
		qProtocols = `
INSERT INTO cleaning_protocols (id, account_id, name, steps, estimated_duration_minutes, required_chemicals)
SELECT a, a, 'Protocol ' || a, ARRAY['Power off', 'Wipe every surface', 'Let dry'], 15, ARRAY['Disinfectant']
FROM generate_series(1, $1) a`
		qEquipment = `
INSERT INTO equipment (id, account_id, location_id, name, serial_number, protocol_id,
                       cleaning_interval_hours, assigned_user_id, active, created_at)
SELECT i, (i - 1) / $2 + 1, 2 * ((i - 1) / $2) + 1 + i % 2, 'Equipment ' || i, 'SN-' || i, (i - 1) / $2 + 1,
       $3, CASE WHEN i % 2 = 0 THEN (i - 1) / $2 + 1 END, i % $4 <> 7, $5::timestamptz - interval '30 days'
FROM generate_series(1, $1::bigint * $2) i`
		// Cleanings walk back from a last one 0-35 h ago (overdue ones 50-69 h
		// ago) in 40 h steps, or 52 h (late) for every LateEveryNth.
		qCleanings = `
INSERT INTO cleaning_logs (equipment_id, cleaned_by, cleaned_at)
SELECT i, NULL,
       $5::timestamptz
       - make_interval(hours => (CASE WHEN i % $3 = 0 THEN 50 + i % 20 ELSE i % 36 END)::int)
       - make_interval(hours => (k * CASE WHEN i % $4 = 0 THEN 52 ELSE 40 END)::int)
FROM generate_series(1, $1::bigint) i, generate_series(0, $2 - 1) k`
		qSequences = `
SELECT setval('users_id_seq', $1), setval('accounts_id_seq', $1), setval('locations_id_seq', 2 * $1),
       setval('cleaning_protocols_id_seq', $1), setval('equipment_id_seq', $2)`
	)
	equipment := int64(sh.Accounts) * int64(sh.EquipmentPerAcct)
	err := inTx(ctx, db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return fmt.Errorf("disable FK triggers (needs a superuser): %w", err)
		}
		steps := []struct {
			q    string
			args []any
		}{
			{qUsers, []any{sh.Accounts}},
			{qAccounts, []any{sh.Accounts, now}},
			{qMembers, []any{sh.Accounts}},
			{qLocations, []any{sh.Accounts}},
			{qProtocols, []any{sh.Accounts}},
			{qEquipment, []any{sh.Accounts, sh.EquipmentPerAcct, sh.IntervalHours, sh.InactiveEveryNth, now}},
			{qCleanings, []any{equipment, sh.CleaningsPerEquip, sh.OverdueEveryNth, sh.LateEveryNth, now}},
			{qSequences, []any{sh.Accounts, equipment}},
		}
		for _, st := range steps {
			if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("build compliance bench data: %w", err)
	}
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// resetComplianceData removes what a scan or a fan-out wrote, so the next
// run starts from the same state.
func resetComplianceData(ctx context.Context, db *sqlx.DB) error {
	if _, err := db.ExecContext(ctx, `TRUNCATE alerts, weekly_reports, email_deliveries, email_batches`); err != nil {
		return fmt.Errorf("reset compliance bench: %w", err)
	}
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE alerts, weekly_reports, email_deliveries, email_batches`); err != nil {
		return fmt.Errorf("reset compliance bench: %w", err)
	}
	return nil
}

// bareOverdueIDs is the baseline of the scan: the one plain statement that
// selects the ids of the active equipment overdue at cutoff, read into Go.
func bareOverdueIDs(ctx context.Context, db *sqlx.DB, cutoff time.Time) (int, error) {
	const q = `
SELECT e.id
FROM equipment e
LEFT JOIN LATERAL (
    SELECT c.cleaned_at FROM cleaning_logs c
    WHERE c.equipment_id = e.id
    ORDER BY c.cleaned_at DESC
    LIMIT 1
) last ON true
WHERE e.active
  AND coalesce(last.cleaned_at, e.created_at) + make_interval(hours => e.cleaning_interval_hours) < $1`
	var ids []int64
	if err := db.SelectContext(ctx, &ids, q, cutoff); err != nil {
		return 0, fmt.Errorf("bare overdue set: %w", err)
	}
	return len(ids), nil
}

// groupedWeeklyFigures is the baseline of the weekly summaries: one grouped
// statement computing, for every reporting account, its week (the one before
// ref, in its time zone), cleanings, on-time cleanings, equipment overdue at
// the week's end, active equipment, active alerts and the compliance rate.
// It returns the number of accounts.
func groupedWeeklyFigures(ctx context.Context, db *sqlx.DB, ref time.Time) (int, error) {
	const q = `
WITH wk AS MATERIALIZED (
    SELECT a.id AS account_id,
           (date_trunc('week', $1::timestamptz AT TIME ZONE a.timezone) - interval '7 days') AT TIME ZONE a.timezone AS period_start,
           date_trunc('week', $1::timestamptz AT TIME ZONE a.timezone) AT TIME ZONE a.timezone AS period_end
    FROM accounts a
    WHERE a.status = ANY($2)
), cl AS (
    SELECT e.account_id, count(*) AS cleanings,
           count(*) FILTER (WHERE c.cleaned_at <= coalesce(prev.cleaned_at, e.created_at)
                                                  + make_interval(hours => e.cleaning_interval_hours)) AS on_time
    FROM wk
    JOIN equipment e ON e.account_id = wk.account_id
    JOIN cleaning_logs c ON c.equipment_id = e.id AND c.cleaned_at >= wk.period_start AND c.cleaned_at < wk.period_end
    LEFT JOIN LATERAL (
        SELECT p.cleaned_at FROM cleaning_logs p
        WHERE p.equipment_id = c.equipment_id AND p.cleaned_at < c.cleaned_at
        ORDER BY p.cleaned_at DESC LIMIT 1
    ) prev ON true
    GROUP BY e.account_id
), od AS (
    SELECT e.account_id, count(*) FILTER (WHERE coalesce(last.cleaned_at, e.created_at)
                                                + make_interval(hours => e.cleaning_interval_hours) < wk.period_end) AS overdue,
           count(*) AS total
    FROM wk
    JOIN equipment e ON e.account_id = wk.account_id AND e.active AND e.created_at < wk.period_end
    LEFT JOIN LATERAL (
        SELECT l.cleaned_at FROM cleaning_logs l
        WHERE l.equipment_id = e.id AND l.cleaned_at < wk.period_end
        ORDER BY l.cleaned_at DESC LIMIT 1
    ) last ON true
    GROUP BY e.account_id
), al AS (
    SELECT account_id, count(*) AS active_alerts FROM alerts WHERE status = 'active' GROUP BY account_id
)
SELECT wk.account_id, coalesce(cl.cleanings, 0), coalesce(od.total, 0), coalesce(al.active_alerts, 0),
       CASE WHEN coalesce(cl.cleanings, 0) + coalesce(od.overdue, 0) = 0 THEN 100.0
            ELSE round(100.0 * coalesce(cl.on_time, 0) / (coalesce(cl.cleanings, 0) + coalesce(od.overdue, 0)), 1) END
FROM wk
LEFT JOIN cl ON cl.account_id = wk.account_id
LEFT JOIN od ON od.account_id = wk.account_id
LEFT JOIN al ON al.account_id = wk.account_id`
	rows, err := db.QueryContext(ctx, q, ref, pq.Array(postgres.ReportingStatuses))
	if err != nil {
		return 0, fmt.Errorf("grouped weekly figures: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, cleanings, total, alerts int64
		var rate float64
		if err := rows.Scan(&id, &cleanings, &total, &alerts, &rate); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}

// inTx runs fn in a transaction on db, committing when fn returns nil.
func inTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
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
