package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// AlertKindOverdue is the kind of the alert the overdue scan opens.
const AlertKindOverdue = "cleaning_overdue"

// ReportingStatuses are the account statuses that receive weekly summaries:
// accounts with a live subscription (trialing, active) and those Stripe is
// still trying to charge (past_due). Canceled, unpaid and incomplete accounts
// get none.
var ReportingStatuses = []string{"trialing", "active", "past_due"}

// NextEquipmentBound returns the highest id of the next page of at most
// limit pieces of equipment with an id above afterID (of accountID only, when
// it is not 0), or 0 when there is none: keyset pagination over the primary
// key, so each page costs the same however far the scan is.
func (s *Store) NextEquipmentBound(ctx context.Context, accountID, afterID int64, limit int) (int64, error) {
	const q = `
SELECT coalesce(max(id), 0) FROM (
    SELECT id FROM equipment
    WHERE id > $2 AND ($1 = 0 OR account_id = $1)
    ORDER BY id
    LIMIT $3
) page`
	var hi int64
	if err := s.DB.GetContext(ctx, &hi, q, accountID, afterID, limit); err != nil {
		return 0, fmt.Errorf("next equipment page after %d: %w", afterID, err)
	}
	return hi, nil
}

// OpenOverdueAlerts opens, in one statement, a cleaning_overdue alert for
// every active piece of equipment with an id in (afterID, throughID] (of
// accountID only, when it is not 0) that is overdue at cutoff and has no
// active alert yet. The partial unique index on active alerts makes a repeated
// call open nothing. A piece of equipment is due at its last cleaning (or its
// creation) plus its interval, and overdue once cutoff (now minus the grace)
// is past that time.
//
// The same statement returns the emails owed on the page, one AlertNotice per
// alert and recipient, ordered by alert: those of the alerts it opened and
// those of active alerts opened before but never marked notified (a scan that
// stopped between opening and enqueueing). A page holds at most its own
// equipment's alerts, so the slice stays small.
func (s *Store) OpenOverdueAlerts(ctx context.Context, accountID, afterID, throughID int64, cutoff, now time.Time) ([]AlertNotice, error) {
	const q = `
WITH opened AS (
    INSERT INTO alerts (account_id, equipment_id, kind, status, due_at, created_at)
    SELECT e.account_id, e.id, 'cleaning_overdue', 'active', d.due_at, $5
    FROM equipment e
    LEFT JOIN LATERAL (
        SELECT c.cleaned_at FROM cleaning_logs c
        WHERE c.equipment_id = e.id
        ORDER BY c.cleaned_at DESC
        LIMIT 1
    ) last ON true
    CROSS JOIN LATERAL (
        SELECT coalesce(last.cleaned_at, e.created_at) + make_interval(hours => e.cleaning_interval_hours) AS due_at
    ) d
    WHERE e.id > $2 AND e.id <= $3
      AND ($1 = 0 OR e.account_id = $1)
      AND e.active AND d.due_at < $4
    ON CONFLICT (equipment_id, kind) WHERE status = 'active' DO NOTHING
    RETURNING id, account_id, equipment_id, due_at, created_at
), owed AS (
    SELECT id, account_id, equipment_id, due_at, created_at, true AS opened FROM opened
    UNION ALL
    -- The statement's snapshot does not hold the rows inserted above, so
    -- this part lists only alerts left unnotified by an earlier scan.
    SELECT a.id, a.account_id, a.equipment_id, a.due_at, a.created_at, false
    FROM alerts a
    WHERE a.status = 'active' AND a.notified_at IS NULL AND a.kind = 'cleaning_overdue'
      AND a.equipment_id > $2 AND a.equipment_id <= $3
      AND ($1 = 0 OR a.account_id = $1)
)
-- Lateral lookups, one row each: the planner must not hash whole tables
-- for the few alerts of a page.
SELECT o.id AS alert_id, o.opened, o.created_at AS opened_at, o.due_at, o.account_id,
       x.account_name, x.timezone, o.equipment_id, x.equipment_name, x.serial_number,
       x.location_name, last.cleaned_at AS last_cleaned_at,
       x.protocol_name, x.protocol_steps, x.estimated_duration, x.required_chemicals,
       r.id AS user_id, r.email, r.first_name, r.last_name
FROM owed o
CROSS JOIN LATERAL (
    SELECT acc.name AS account_name, acc.timezone, acc.owner_id,
           e.name AS equipment_name, e.serial_number, e.assigned_user_id,
           loc.name AS location_name,
           coalesce(p.name, '') AS protocol_name,
           coalesce(p.steps, '{}') AS protocol_steps,
           coalesce(p.estimated_duration_minutes, 0) AS estimated_duration,
           coalesce(p.required_chemicals, '{}') AS required_chemicals
    FROM equipment e
    JOIN accounts acc ON acc.id = e.account_id
    JOIN locations loc ON loc.id = e.location_id
    LEFT JOIN cleaning_protocols p ON p.id = e.protocol_id
    WHERE e.id = o.equipment_id
    LIMIT 1 -- keeps the subquery from being flattened into hash joins
) x
LEFT JOIN LATERAL (
    SELECT c.cleaned_at FROM cleaning_logs c
    WHERE c.equipment_id = o.equipment_id
    ORDER BY c.cleaned_at DESC
    LIMIT 1
) last ON true
JOIN LATERAL (
    SELECT u.id, u.email::text AS email, u.first_name, u.last_name
    FROM users u
    WHERE u.id = x.assigned_user_id
    UNION
    SELECT u.id, u.email::text, u.first_name, u.last_name
    FROM users u
    WHERE x.assigned_user_id IS NULL AND u.id = x.owner_id
    UNION
    SELECT u.id, u.email::text, u.first_name, u.last_name
    FROM account_members m
    JOIN users u ON u.id = m.user_id
    WHERE x.assigned_user_id IS NULL AND m.account_id = o.account_id
      AND m.role IN ('owner', 'admin', 'manager')
) r ON true
ORDER BY o.id, r.id`
	var out []AlertNotice
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The row estimates of the insert are rough; JIT-compiling a
		// statement that runs in milliseconds would cost more than it runs.
		if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		return tx.SelectContext(ctx, &out, q, accountID, afterID, throughID, cutoff, now)
	})
	if err != nil {
		return nil, fmt.Errorf("open overdue alerts on equipment %d-%d: %w", afterID+1, throughID, err)
	}
	return out, nil
}

// ResolveOverdueAlerts resolves the active cleaning_overdue alerts on
// equipment ids in (afterID, throughID] (of accountID only, when it is not 0)
// whose equipment is no longer overdue at cutoff, because it was cleaned
// since, or that was deactivated. It returns how many it resolved.
func (s *Store) ResolveOverdueAlerts(ctx context.Context, accountID, afterID, throughID int64, cutoff, now time.Time) (int64, error) {
	// The lateral subquery makes the active alerts drive the statement: a
	// few index lookups each, never a pass over all equipment.
	const q = `
UPDATE alerts a
SET status = 'resolved', resolved_at = $5
FROM (
    SELECT x.id
    FROM alerts x
    CROSS JOIN LATERAL (
        SELECT e.active,
               coalesce(last.cleaned_at, e.created_at) + make_interval(hours => e.cleaning_interval_hours) AS due_at
        FROM equipment e
        LEFT JOIN LATERAL (
            SELECT c.cleaned_at FROM cleaning_logs c
            WHERE c.equipment_id = e.id
            ORDER BY c.cleaned_at DESC
            LIMIT 1
        ) last ON true
        WHERE e.id = x.equipment_id
    ) d
    WHERE x.status = 'active' AND x.kind = 'cleaning_overdue'
      AND x.equipment_id > $2 AND x.equipment_id <= $3
      AND ($1 = 0 OR x.account_id = $1)
      AND (NOT d.active OR d.due_at >= $4)
) done
WHERE a.id = done.id AND a.status = 'active'`
	res, err := s.DB.ExecContext(ctx, q, accountID, afterID, throughID, cutoff, now)
	if err != nil {
		return 0, fmt.Errorf("resolve overdue alerts on equipment %d-%d: %w", afterID+1, throughID, err)
	}
	return res.RowsAffected()
}

// AlertNotice is one email an overdue alert owes: the alert, its equipment
// and protocol, and one recipient. The recipient is the assigned user or,
// when none is assigned, each of the account's owner, admins and managers.
type AlertNotice struct {
	AlertID           int64          `db:"alert_id"`
	Opened            bool           `db:"opened"` // opened by this statement, not owed from before
	OpenedAt          time.Time      `db:"opened_at"`
	DueAt             time.Time      `db:"due_at"`
	AccountID         int64          `db:"account_id"`
	AccountName       string         `db:"account_name"`
	Timezone          string         `db:"timezone"`
	EquipmentID       int64          `db:"equipment_id"`
	EquipmentName     string         `db:"equipment_name"`
	SerialNumber      string         `db:"serial_number"`
	LocationName      string         `db:"location_name"`
	LastCleanedAt     sql.NullTime   `db:"last_cleaned_at"`
	ProtocolName      string         `db:"protocol_name"`
	ProtocolSteps     pq.StringArray `db:"protocol_steps"`
	EstimatedDuration int            `db:"estimated_duration"`
	RequiredChemicals pq.StringArray `db:"required_chemicals"`
	UserID            int64          `db:"user_id"`
	Email             string         `db:"email"`
	FirstName         string         `db:"first_name"`
	LastName          string         `db:"last_name"`
}

// MarkAlertsNotified records that the emails of the given alerts are enqueued.
func (s *Store) MarkAlertsNotified(ctx context.Context, alertIDs []int64, now time.Time) error {
	if len(alertIDs) == 0 {
		return nil
	}
	const q = `UPDATE alerts SET notified_at = $2 WHERE id = ANY($1) AND notified_at IS NULL`
	if _, err := s.DB.ExecContext(ctx, q, pq.Array(alertIDs), now); err != nil {
		return fmt.Errorf("mark alerts notified: %w", err)
	}
	return nil
}

// Alert is one alert row.
type Alert struct {
	ID          int64        `db:"id"`
	AccountID   int64        `db:"account_id"`
	EquipmentID int64        `db:"equipment_id"`
	Kind        string       `db:"kind"`
	Status      string       `db:"status"`
	DueAt       time.Time    `db:"due_at"`
	CreatedAt   time.Time    `db:"created_at"`
	ResolvedAt  sql.NullTime `db:"resolved_at"`
	NotifiedAt  sql.NullTime `db:"notified_at"`
}

// AccountAlerts lists an account's alerts, oldest first.
func (s *Store) AccountAlerts(ctx context.Context, accountID int64) ([]Alert, error) {
	const q = `
SELECT id, account_id, equipment_id, kind, status, due_at, created_at, resolved_at, notified_at
FROM alerts WHERE account_id = $1 ORDER BY id`
	var out []Alert
	if err := s.DB.SelectContext(ctx, &out, q, accountID); err != nil {
		return nil, fmt.Errorf("list alerts of account %d: %w", accountID, err)
	}
	return out, nil
}

// ReportAccount is what the compliance jobs need to know about an account.
type ReportAccount struct {
	ID       int64  `db:"id"`
	Name     string `db:"name"`
	Slug     string `db:"slug"`
	Status   string `db:"status"`
	Timezone string `db:"timezone"`
}

// ReportAccountBySlug finds an account by slug, or returns ErrNotFound.
func (s *Store) ReportAccountBySlug(ctx context.Context, slug string) (ReportAccount, error) {
	const q = `SELECT id, name, slug, status, timezone FROM accounts WHERE slug = $1`
	var a ReportAccount
	if err := s.DB.GetContext(ctx, &a, q, slug); err != nil {
		return ReportAccount{}, fmt.Errorf("account %q: %w", slug, notFound(err))
	}
	return a, nil
}

// ReportAccountByID finds an account by id, or returns ErrNotFound.
func (s *Store) ReportAccountByID(ctx context.Context, id int64) (ReportAccount, error) {
	const q = `SELECT id, name, slug, status, timezone FROM accounts WHERE id = $1`
	var a ReportAccount
	if err := s.DB.GetContext(ctx, &a, q, id); err != nil {
		return ReportAccount{}, fmt.Errorf("account %d: %w", id, notFound(err))
	}
	return a, nil
}

// ReportingAccountIDs returns the next page of at most limit ids, above
// afterID, of accounts whose status is one of ReportingStatuses. When onlyID
// is not 0 the page holds that account alone (if it reports).
func (s *Store) ReportingAccountIDs(ctx context.Context, afterID int64, limit int, onlyID int64) ([]int64, error) {
	const q = `
SELECT id FROM accounts
WHERE id > $1 AND status = ANY($3) AND ($4 = 0 OR id = $4)
ORDER BY id
LIMIT $2`
	var ids []int64
	if err := s.DB.SelectContext(ctx, &ids, q, afterID, limit, pq.Array(ReportingStatuses), onlyID); err != nil {
		return nil, fmt.Errorf("list reporting accounts: %w", err)
	}
	return ids, nil
}

// WeeklyFigures are the figures of one account's weekly compliance summary,
// as recorded in weekly_reports.figures.
type WeeklyFigures struct {
	TotalEquipment     int `json:"total_equipment"`
	CleaningsCompleted int `json:"cleanings_completed"`
	// CleaningsOnTime and OverdueAtEnd are the numerator and the second part
	// of the denominator of ComplianceRate.
	CleaningsOnTime int             `json:"cleanings_on_time"`
	OverdueAtEnd    int             `json:"overdue_at_end"`
	ActiveAlerts    int             `json:"active_alerts"`
	ComplianceRate  float64         `json:"compliance_rate"`
	TopLocations    []LocationShare `json:"top_locations"`
	Alerts          []OpenAlert     `json:"alerts"`
}

// LocationShare is one location's part of a weekly summary.
type LocationShare struct {
	Name           string  `json:"name"`
	Cleanings      int     `json:"cleanings"`
	ComplianceRate float64 `json:"compliance_rate"`
}

// OpenAlert is an active alert listed in a weekly summary.
type OpenAlert struct {
	EquipmentName string `json:"equipment_name"`
	LocationName  string `json:"location_name"`
	HoursOverdue  int    `json:"hours_overdue"`
}

// WeeklyReport is one account's summary for one ISO week.
type WeeklyReport struct {
	AccountID   int64         `db:"account_id"`
	ISOWeek     string        `db:"iso_week"`
	PeriodStart time.Time     `db:"period_start"`
	PeriodEnd   time.Time     `db:"period_end"`
	Figures     WeeklyFigures `db:"figures"`
	CreatedAt   time.Time     `db:"created_at"`
	SentAt      sql.NullTime  `db:"sent_at"`
}

// Scan reads figures from jsonb.
func (f *WeeklyFigures) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok {
		return fmt.Errorf("weekly figures: unexpected %T", src)
	}
	return json.Unmarshal(b, f)
}

// weeklyFiguresQuery computes, for the accounts in $1, the figures of one week
// each: the ISO week whose Monday is $2 (a date; NULL for the week before the
// one holding the instant $3), from Monday 00:00 to the next Monday 00:00 in
// the account's time zone. $4 is "now", for the active alerts and their hours
// overdue. The compliance rate is on-time cleanings in the week divided by
// (cleanings in the week + active equipment overdue at the week's end), in
// percent with one decimal, 100.0 when nothing was due. A cleaning is on time
// when it happened no later than the previous cleaning (or the equipment's
// creation) plus the interval.
const weeklyFiguresQuery = `
WITH acc AS (
    SELECT a.id, a.timezone,
           coalesce($2::date::timestamp,
                    date_trunc('week', $3::timestamptz AT TIME ZONE a.timezone) - interval '7 days') AS local_start
    FROM accounts a
    WHERE a.id = ANY($1::bigint[])
), wk AS MATERIALIZED (
    SELECT id AS account_id, to_char(local_start, 'IYYY-"W"IW') AS iso_week,
           local_start AT TIME ZONE timezone AS period_start,
           (local_start + interval '7 days') AT TIME ZONE timezone AS period_end
    FROM acc
), cleanings AS (
    SELECT e.account_id, e.location_id,
           c.cleaned_at <= coalesce(prev.cleaned_at, e.created_at)
                           + make_interval(hours => e.cleaning_interval_hours) AS on_time
    FROM wk
    JOIN equipment e ON e.account_id = wk.account_id
    JOIN cleaning_logs c ON c.equipment_id = e.id
                        AND c.cleaned_at >= wk.period_start AND c.cleaned_at < wk.period_end
    LEFT JOIN LATERAL (
        SELECT p.cleaned_at FROM cleaning_logs p
        WHERE p.equipment_id = c.equipment_id AND p.cleaned_at < c.cleaned_at
        ORDER BY p.cleaned_at DESC
        LIMIT 1
    ) prev ON true
), overdue AS (
    SELECT e.account_id, e.location_id
    FROM wk
    JOIN equipment e ON e.account_id = wk.account_id AND e.active AND e.created_at < wk.period_end
    LEFT JOIN LATERAL (
        SELECT l.cleaned_at FROM cleaning_logs l
        WHERE l.equipment_id = e.id AND l.cleaned_at < wk.period_end
        ORDER BY l.cleaned_at DESC
        LIMIT 1
    ) last ON true
    WHERE coalesce(last.cleaned_at, e.created_at) + make_interval(hours => e.cleaning_interval_hours) < wk.period_end
), by_location AS MATERIALIZED (
    SELECT account_id, location_id,
           count(on_time) AS cleanings,
           count(*) FILTER (WHERE on_time) AS on_time,
           count(*) - count(on_time) AS overdue
    FROM (SELECT account_id, location_id, on_time FROM cleanings
          UNION ALL
          SELECT account_id, location_id, NULL FROM overdue) x
    GROUP BY account_id, location_id
), totals AS (
    SELECT account_id, sum(cleanings) AS cleanings, sum(on_time) AS on_time, sum(overdue) AS overdue
    FROM by_location
    GROUP BY account_id
)
SELECT wk.account_id, wk.iso_week, wk.period_start, wk.period_end,
       jsonb_build_object(
           'total_equipment', (SELECT count(*) FROM equipment e WHERE e.account_id = wk.account_id AND e.active),
           'cleanings_completed', coalesce(t.cleanings, 0),
           'cleanings_on_time', coalesce(t.on_time, 0),
           'overdue_at_end', coalesce(t.overdue, 0),
           'active_alerts', (SELECT count(*) FROM alerts a WHERE a.account_id = wk.account_id AND a.status = 'active'),
           'compliance_rate', CASE WHEN coalesce(t.cleanings + t.overdue, 0) = 0 THEN 100.0
                                   ELSE round(100.0 * t.on_time / (t.cleanings + t.overdue), 1) END,
           'top_locations', coalesce((
               SELECT jsonb_agg(jsonb_build_object(
                          'name', x.name, 'cleanings', x.cleanings,
                          'compliance_rate', round(100.0 * x.on_time / (x.cleanings + x.overdue), 1))
                      ORDER BY x.cleanings DESC, x.name, x.location_id)
               FROM (SELECT bl.location_id, loc.name, bl.cleanings, bl.on_time, bl.overdue
                     FROM by_location bl
                     JOIN locations loc ON loc.id = bl.location_id
                     WHERE bl.account_id = wk.account_id
                     ORDER BY bl.cleanings DESC, loc.name, bl.location_id
                     LIMIT 5) x), '[]'::jsonb),
           'alerts', coalesce((
               SELECT jsonb_agg(jsonb_build_object(
                          'equipment_name', y.equipment_name, 'location_name', y.location_name,
                          'hours_overdue', y.hours_overdue)
                      ORDER BY y.due_at, y.id)
               FROM (SELECT a.id, a.due_at, e.name AS equipment_name, loc.name AS location_name,
                            greatest(floor(extract(epoch FROM $4::timestamptz - a.due_at) / 3600), 0)::int AS hours_overdue
                     FROM alerts a
                     JOIN equipment e ON e.id = a.equipment_id
                     JOIN locations loc ON loc.id = e.location_id
                     WHERE a.account_id = wk.account_id AND a.status = 'active'
                     ORDER BY a.due_at, a.id
                     LIMIT 10) y), '[]'::jsonb)
       ) AS figures
FROM wk
LEFT JOIN totals t ON t.account_id = wk.account_id`

// WeekSpec selects the week of a weekly summary: Monday, when set, is the
// Monday (a calendar date) of an explicit ISO week; otherwise the week is the
// one before the week holding Ref, in each account's time zone.
type WeekSpec struct {
	Monday time.Time
	Ref    time.Time
}

func (w WeekSpec) args() (sql.NullString, time.Time) {
	if w.Monday.IsZero() {
		return sql.NullString{}, w.Ref
	}
	return sql.NullString{String: w.Monday.Format("2006-01-02"), Valid: true}, w.Ref
}

// IsDataError reports whether err is PostgreSQL rejecting the data a
// statement met (SQLSTATE class 22, such as an unknown time zone name), as
// opposed to the database being unavailable or the statement being wrong.
func IsDataError(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code.Class() == "22"
}

// PendingReport names a recorded weekly report and whether it went out.
type PendingReport struct {
	AccountID int64  `db:"account_id"`
	ISOWeek   string `db:"iso_week"`
	Sent      bool   `db:"sent"`
}

// RecordWeeklyReports computes the figures of the selected week for each
// account in accountIDs, in one statement, and records them in weekly_reports
// unless a report for that account and week exists already (recorded figures
// are never recomputed, so a retried send sends what was recorded). It returns
// every account's week and whether its report was sent before.
func (s *Store) RecordWeeklyReports(ctx context.Context, accountIDs []int64, week WeekSpec, now time.Time) ([]PendingReport, error) {
	const q = `
WITH computed AS (` + weeklyFiguresQuery + `
), recorded AS (
    INSERT INTO weekly_reports (account_id, iso_week, period_start, period_end, figures, created_at)
    SELECT account_id, iso_week, period_start, period_end, figures, $4
    FROM computed
    ON CONFLICT (account_id, iso_week) DO NOTHING
)
SELECT c.account_id, c.iso_week, (w.sent_at IS NOT NULL) AS sent
FROM computed c
LEFT JOIN weekly_reports w ON w.account_id = c.account_id AND w.iso_week = c.iso_week
ORDER BY c.account_id`
	monday, ref := week.args()
	var out []PendingReport
	if err := s.DB.SelectContext(ctx, &out, q, pq.Array(accountIDs), monday, ref, now); err != nil {
		return nil, fmt.Errorf("record weekly reports: %w", err)
	}
	return out, nil
}

// ComputeWeeklyReport computes one account's figures for the selected week
// without recording anything.
func (s *Store) ComputeWeeklyReport(ctx context.Context, accountID int64, week WeekSpec, now time.Time) (WeeklyReport, error) {
	const q = weeklyFiguresQuery
	monday, ref := week.args()
	var r WeeklyReport
	if err := s.DB.GetContext(ctx, &r, q, pq.Array([]int64{accountID}), monday, ref, now); err != nil {
		return WeeklyReport{}, fmt.Errorf("compute weekly report of account %d: %w", accountID, notFound(err))
	}
	return r, nil
}

// WeeklyReport reads the recorded report of an account and ISO week, or
// returns ErrNotFound.
func (s *Store) WeeklyReport(ctx context.Context, accountID int64, isoWeek string) (WeeklyReport, error) {
	const q = `
SELECT account_id, iso_week, period_start, period_end, figures, created_at, sent_at
FROM weekly_reports WHERE account_id = $1 AND iso_week = $2`
	var r WeeklyReport
	if err := s.DB.GetContext(ctx, &r, q, accountID, isoWeek); err != nil {
		return WeeklyReport{}, fmt.Errorf("weekly report %d/%s: %w", accountID, isoWeek, notFound(err))
	}
	return r, nil
}

// MarkWeeklyReportSent records that the report's emails were enqueued. It
// reports false when the report was marked sent before.
func (s *Store) MarkWeeklyReportSent(ctx context.Context, accountID int64, isoWeek string, now time.Time) (bool, error) {
	const q = `
UPDATE weekly_reports SET sent_at = $3
WHERE account_id = $1 AND iso_week = $2 AND sent_at IS NULL`
	res, err := s.DB.ExecContext(ctx, q, accountID, isoWeek, now)
	if err != nil {
		return false, fmt.Errorf("mark weekly report %d/%s sent: %w", accountID, isoWeek, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Recipient is a user an email goes to.
type Recipient struct {
	UserID    int64  `db:"user_id"`
	Email     string `db:"email"`
	FirstName string `db:"first_name"`
	LastName  string `db:"last_name"`
}

// WeeklySummaryRecipients lists the account's owner and admins, by user id.
func (s *Store) WeeklySummaryRecipients(ctx context.Context, accountID int64) ([]Recipient, error) {
	const q = `
SELECT u.id AS user_id, u.email::text AS email, u.first_name, u.last_name
FROM users u
WHERE u.id = (SELECT owner_id FROM accounts WHERE id = $1)
UNION
SELECT u.id, u.email::text, u.first_name, u.last_name
FROM account_members m
JOIN users u ON u.id = m.user_id
WHERE m.account_id = $1 AND m.role IN ('owner', 'admin')
ORDER BY user_id`
	var out []Recipient
	if err := s.DB.SelectContext(ctx, &out, q, accountID); err != nil {
		return nil, fmt.Errorf("weekly summary recipients of account %d: %w", accountID, err)
	}
	return out, nil
}
