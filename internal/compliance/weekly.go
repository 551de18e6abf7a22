package compliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/tasks"
)

// ParseISOWeek reads an ISO 8601 week such as "2026-W47" and returns the date
// (at UTC midnight) of its Monday.
func ParseISOWeek(s string) (time.Time, error) {
	year, week, ok := strings.Cut(strings.TrimSpace(s), "-W")
	y, err1 := strconv.Atoi(year)
	w, err2 := strconv.Atoi(week)
	if !ok || err1 != nil || err2 != nil || len(year) != 4 || len(week) != 2 || w < 1 || w > 53 {
		return time.Time{}, fmt.Errorf("week %q is not an ISO week like 2026-W47", s)
	}
	// Week 1 is the week holding January 4th.
	jan4 := time.Date(y, time.January, 4, 0, 0, 0, 0, time.UTC)
	monday := jan4.AddDate(0, 0, -(int(jan4.Weekday())+6)%7+(w-1)*7)
	if gy, gw := monday.ISOWeek(); gy != y || gw != w {
		return time.Time{}, fmt.Errorf("week %q does not exist: %d has no week %d", s, y, w)
	}
	return monday, nil
}

// ISOWeek formats the ISO week holding t, in t's location: "2026-W47".
func ISOWeek(t time.Time) string {
	y, w := t.ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// HandleWeeklySummary is the report:weekly_summary fan-out. It pages through
// the reporting accounts (status trialing, active or past_due; one account
// when the payload names it), records each page's figures in one statement,
// stages the emails of the page's unsent reports for Resend's batch API
// (batches of up to 100 across accounts) and marks those reports sent. The
// recorded rows and the emails' keys make a repeated fan-out harmless.
func (s *Service) HandleWeeklySummary(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.WeeklySummaryPayload](t)
	if err != nil {
		return err
	}
	week := postgres.WeekSpec{Ref: p.Slot}
	if week.Ref.IsZero() {
		week.Ref = s.now()
	}
	if p.Week != "" {
		monday, err := ParseISOWeek(p.Week)
		if err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		week.Monday = monday
	}
	start := time.Now()
	r, err := s.FanOut(ctx, p.AccountID, week)
	if err != nil {
		return err
	}
	s.log.Info("weekly summary fan-out done",
		slog.Int64("account_id", p.AccountID),
		slog.String("week", p.Week),
		slog.Int("accounts", r.Accounts),
		slog.Int("reported", r.Reported),
		slog.Int("emails", r.Emails),
		slog.Int("already_sent", r.AlreadySent),
		slog.Int("failed", r.Failed),
		slog.Duration("duration", time.Since(start)))
	return nil
}

// FanOutResult counts what one weekly fan-out did.
type FanOutResult struct {
	Accounts    int // reporting accounts seen
	Reported    int // accounts whose report's emails were staged and the report marked sent
	Emails      int // emails staged for batches
	Refused     int // emails recorded failed for their address
	AlreadySent int // accounts whose report for the week was sent before
	Failed      int // accounts whose figures could not be computed (logged)
}

// recordPage records one page of reports in one statement. When that
// statement fails for a reason of the data (an account whose time zone
// PostgreSQL does not know, say), it records the page account by account,
// so one bad account costs only its own report: that one is logged and
// skipped. A failure of the database itself is returned, and the task retried.
func (s *Service) recordPage(ctx context.Context, ids []int64, week postgres.WeekSpec, r *FanOutResult) ([]postgres.PendingReport, error) {
	reps, err := s.store.RecordWeeklyReports(ctx, ids, week, s.now())
	if err == nil || !postgres.IsDataError(err) {
		return reps, err
	}
	reps = reps[:0]
	for _, id := range ids {
		one, err := s.store.RecordWeeklyReports(ctx, []int64{id}, week, s.now())
		if err != nil && postgres.IsDataError(err) {
			r.Failed++
			s.log.Warn("weekly summary skipped", slog.Int64("account_id", id), slog.String("error", err.Error()))
			continue
		}
		if err != nil {
			return nil, err
		}
		reps = append(reps, one...)
	}
	return reps, nil
}

// FanOut records the selected week's figures of every reporting account (or
// of onlyAccount), a page at a time, and sends each page's unsent reports:
// their emails (owner and admins of each account) are prepared by
// EnqueueWorkers goroutines, staged in one SendBatch call, and the reports
// marked sent. The first failure stops the fan-out; the page's reports stay
// unsent, so a retry stages them again under the same keys.
func (s *Service) FanOut(ctx context.Context, onlyAccount int64, week postgres.WeekSpec) (FanOutResult, error) {
	var r FanOutResult
	var after int64
	for {
		ids, err := s.store.ReportingAccountIDs(ctx, after, s.opt.AccountPage, onlyAccount)
		if err != nil || len(ids) == 0 {
			return r, err
		}
		after = ids[len(ids)-1]
		reps, err := s.recordPage(ctx, ids, week, &r)
		r.Accounts += len(ids)
		if err != nil {
			return r, err
		}
		var pending []postgres.PendingReport
		for _, rep := range reps {
			if rep.Sent {
				r.AlreadySent++
				continue
			}
			pending = append(pending, rep)
		}
		if err := s.sendReports(ctx, pending, &r); err != nil {
			return r, err
		}
	}
}

// sendReports stages the emails of reports in one SendBatch call and marks
// the reports sent.
func (s *Service) sendReports(ctx context.Context, reps []postgres.PendingReport, r *FanOutResult) error {
	if len(reps) == 0 {
		return nil
	}
	per := make([][]email.Item, len(reps))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opt.EnqueueWorkers)
	for i, rep := range reps {
		g.Go(func() error {
			items, err := s.weeklyItems(gctx, rep.AccountID, rep.ISOWeek)
			per[i] = items
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var items []email.Item
	for _, p := range per {
		items = append(items, p...)
	}
	br, err := s.mailer.SendBatch(ctx, email.TemplateWeeklySummary, items)
	if err != nil {
		return fmt.Errorf("weekly summary emails: %w", err)
	}
	for _, rep := range reps {
		if _, err := s.store.MarkWeeklyReportSent(ctx, rep.AccountID, rep.ISOWeek, s.now()); err != nil {
			return err
		}
	}
	r.Reported += len(reps)
	r.Emails += len(items)
	r.Refused += br.Refused
	return nil
}

// weeklyItems are the weekly summary emails of one account's recorded
// report, one per recipient (the owner and the admins).
func (s *Service) weeklyItems(ctx context.Context, accountID int64, week string) ([]email.Item, error) {
	rep, err := s.store.WeeklyReport(ctx, accountID, week)
	if err != nil {
		return nil, err
	}
	acc, err := s.store.ReportAccountByID(ctx, accountID)
	if err != nil {
		return nil, err
	}
	recipients, err := s.store.WeeklySummaryRecipients(ctx, accountID)
	if err != nil {
		return nil, err
	}
	items := make([]email.Item, 0, len(recipients))
	for _, u := range recipients {
		items = append(items, email.Item{To: u.Email, Key: WeeklyKey(accountID, week, u.UserID), Data: s.weeklyData(acc, rep, u)})
	}
	return items, nil
}

// WeeklyKey is the idempotency key of one recipient's weekly summary:
// "weekly/<account id>/<ISO week>/<user id>".
func WeeklyKey(accountID int64, week string, userID int64) string {
	return fmt.Sprintf("weekly/%d/%s/%d", accountID, week, userID)
}

// HandleWeeklySummaryAccount is the report:weekly_summary_account handler:
// it sends one account's recorded report for one week to the account's owner
// and admins (recording the figures first when no fan-out did), through the
// batch API like the fan-out, then marks the report sent. A report marked
// sent is never sent again; a retry before that stages the same emails under
// the same keys (weekly/<account>/<week>/<user>), which send once.
func (s *Service) HandleWeeklySummaryAccount(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.WeeklySummaryAccountPayload](t)
	if err != nil {
		return err
	}
	n, err := s.SendWeeklyReport(ctx, p.AccountID, p.Week)
	if err != nil {
		return err
	}
	s.log.Info("weekly summary sent",
		slog.Int64("account_id", p.AccountID),
		slog.String("week", p.Week),
		slog.Int("emails", n))
	return nil
}

// SendWeeklyReport stages the weekly summary emails of one account and ISO
// week and returns how many it staged (0 when the report was sent before).
// HandleWeeklySummaryAccount describes the guarantees.
func (s *Service) SendWeeklyReport(ctx context.Context, accountID int64, week string) (int, error) {
	monday, err := ParseISOWeek(week)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	rep, err := s.store.WeeklyReport(ctx, accountID, week)
	if errors.Is(err, postgres.ErrNotFound) {
		if _, err := s.store.RecordWeeklyReports(ctx, []int64{accountID}, postgres.WeekSpec{Monday: monday}, s.now()); err != nil {
			return 0, err
		}
		rep, err = s.store.WeeklyReport(ctx, accountID, week)
	}
	if errors.Is(err, postgres.ErrNotFound) {
		return 0, fmt.Errorf("account %d does not exist: %w", accountID, asynq.SkipRetry)
	}
	if err != nil {
		return 0, err
	}
	if rep.SentAt.Valid {
		return 0, nil
	}
	var r FanOutResult
	if err := s.sendReports(ctx, []postgres.PendingReport{{AccountID: accountID, ISOWeek: week}}, &r); err != nil {
		return 0, err
	}
	return r.Emails, nil
}

// weeklyData is the weekly summary email's context. StartDate is the week's
// first instant (Monday 00:00 in the account's zone); EndDate its last day's
// end, the following Monday 00:00, exclusive.
func (s *Service) weeklyData(acc postgres.ReportAccount, rep postgres.WeeklyReport, u postgres.Recipient) email.WeeklySummaryData {
	f := rep.Figures
	d := email.WeeklySummaryData{
		UserName:           email.DisplayName(u.FirstName, u.LastName),
		AccountName:        acc.Name,
		StartDate:          rep.PeriodStart,
		EndDate:            rep.PeriodEnd,
		TotalEquipment:     f.TotalEquipment,
		CleaningsCompleted: f.CleaningsCompleted,
		ActiveAlerts:       f.ActiveAlerts,
		ComplianceRate:     f.ComplianceRate,
		TopLocations:       make([]email.LocationSummary, 0, len(f.TopLocations)),
		Alerts:             make([]email.AlertSummary, 0, len(f.Alerts)),
		DashboardURL:       s.opt.SiteURL + "/dashboard",
		Timezone:           acc.Timezone,
	}
	for _, l := range f.TopLocations {
		d.TopLocations = append(d.TopLocations, email.LocationSummary{Name: l.Name, Cleanings: l.Cleanings, ComplianceRate: l.ComplianceRate})
	}
	for _, a := range f.Alerts {
		d.Alerts = append(d.Alerts, email.AlertSummary{EquipmentName: a.EquipmentName, LocationName: a.LocationName, HoursOverdue: a.HoursOverdue})
	}
	return d
}
