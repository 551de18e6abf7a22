package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

func newSeedCmd(e *env) *cobra.Command {
	var asJSON bool
	demo := &cobra.Command{
		Use:   "demo",
		Short: "Create the demo account demo-hospital with members, equipment and cleaning history (idempotent)",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runSeedDemo(ctx, e, asJSON) }),
	}
	demo.Flags().BoolVar(&asJSON, "json", false, "print what was created as JSON")
	return group("seed", "Create demo data", demo)
}

func newEnqueueOverdueScanCmd(e *env) *cobra.Command {
	var slug string
	c := &cobra.Command{
		Use:   "overdue-scan",
		Short: "Enqueue an overdue-cleaning scan of all accounts, or of one",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runEnqueueOverdueScan(ctx, e, slug) }),
	}
	c.Flags().BoolVar(&e.enqueueJSON, "json", false, "print the enqueued task as JSON")
	c.Flags().StringVar(&slug, "account", "", "scan only this account (slug)")
	return c
}

func newEnqueueWeeklySummaryCmd(e *env) *cobra.Command {
	var slug, week string
	c := &cobra.Command{
		Use:   "weekly-summary",
		Short: "Enqueue the weekly compliance summaries (default: last week, per account time zone)",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runEnqueueWeeklySummary(ctx, e, slug, week) }),
	}
	c.Flags().BoolVar(&e.enqueueJSON, "json", false, "print the enqueued task as JSON")
	c.Flags().StringVar(&slug, "account", "", "report only this account (slug)")
	c.Flags().StringVar(&week, "week", "", "ISO week to report, like 2026-W47 (default: the last full week in each account's time zone)")
	return c
}

func newReportCmd(e *env) *cobra.Command {
	var slug, week string
	var asJSON bool
	show := &cobra.Command{
		Use:   "show --account <slug>",
		Short: "Show an account's weekly compliance figures without sending anything",
		Args:  noArgs,
		RunE:  e.action(func(ctx context.Context, _ []string) error { return runReportShow(ctx, e, slug, week, asJSON) }),
	}
	show.Flags().StringVar(&slug, "account", "", "account slug (required)")
	show.Flags().StringVar(&week, "week", "", "ISO week, like 2026-W47 (default: the last full week in the account's time zone)")
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of tables")
	return group("report", "Weekly compliance reports", show)
}

func runSeedDemo(ctx context.Context, e *env, asJSON bool) error {
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	r, err := s.SeedDemo(ctx, time.Now())
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, map[string]any{
			"account": postgres.DemoAccountSlug, "account_id": r.AccountID, "stripe_customer": postgres.DemoCustomerID,
			"account_created": r.AccountCreated, "users": r.Users,
			"equipment_created": r.EquipmentCreated, "cleanings_created": r.CleaningsCreated,
		})
	}
	state := "already existed"
	if r.AccountCreated {
		state = "created"
	}
	fmt.Fprintf(e.stdout, "account %s (id %d, Stripe customer %s) %s\n", postgres.DemoAccountSlug, r.AccountID, postgres.DemoCustomerID, state)
	fmt.Fprintf(e.stdout, "%s, %s, %s\n", countNoun(r.Users, "user"),
		countNoun(r.EquipmentCreated, "new piece of equipment", "new pieces of equipment"), countNoun(r.CleaningsCreated, "new cleaning"))
	fmt.Fprintln(e.stdout, "next: cleantrack enqueue overdue-scan --account demo-hospital")
	return nil
}

// accountFlag resolves --account to an id; an empty slug means all accounts.
func accountFlag(ctx context.Context, e *env, slug string) (int64, error) {
	if slug == "" {
		return 0, nil
	}
	s, err := e.Store(ctx)
	if err != nil {
		return 0, err
	}
	a, err := s.ReportAccountBySlug(ctx, slug)
	if errors.Is(err, postgres.ErrNotFound) {
		return 0, usagef("--account: no account has slug %q", slug)
	}
	return a.ID, err
}

func runEnqueueOverdueScan(ctx context.Context, e *env, slug string) error {
	id, err := accountFlag(ctx, e, slug)
	if err != nil {
		return err
	}
	task, err := tasks.NewOverdueScan(tasks.OverdueScanPayload{AccountID: id})
	if err != nil {
		return err
	}
	return enqueueAndSay(ctx, e, task.Type(), func(c queue.Enqueuer) (string, bool, error) {
		info, dup, err := queue.Enqueue(ctx, c, task)
		if err != nil || dup {
			return "", dup, err
		}
		return info.ID, false, nil
	})
}

func runEnqueueWeeklySummary(ctx context.Context, e *env, slug, week string) error {
	if week != "" {
		if _, err := compliance.ParseISOWeek(week); err != nil {
			return usagef("--week: %v", err)
		}
	}
	id, err := accountFlag(ctx, e, slug)
	if err != nil {
		return err
	}
	task, err := tasks.NewWeeklySummary(tasks.WeeklySummaryPayload{Week: week, AccountID: id})
	if err != nil {
		return err
	}
	return enqueueAndSay(ctx, e, task.Type(), func(c queue.Enqueuer) (string, bool, error) {
		info, dup, err := queue.Enqueue(ctx, c, task)
		if err != nil || dup {
			return "", dup, err
		}
		return info.ID, false, nil
	})
}

func enqueueAndSay(ctx context.Context, e *env, taskType string, enqueue func(queue.Enqueuer) (string, bool, error)) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	id, dup, err := enqueue(c)
	if err != nil {
		return fmt.Errorf("%w (is Redis running, and is REDIS_URL right?)", err)
	}
	q := tasks.Types[taskType].Queue
	if e.enqueueJSON {
		return printJSON(e.stdout, map[string]any{"type": taskType, "id": id, "queue": q, "enqueued": !dup})
	}
	if dup {
		fmt.Fprintf(e.stdout, "%s is already enqueued\n", taskType)
		return nil
	}
	fmt.Fprintf(e.stdout, "enqueued %s as %s in queue %s; a running worker picks it up\n", taskType, id, q)
	return nil
}

// reportView is what `report show --json` prints.
type reportView struct {
	Account     string                 `json:"account"`
	Week        string                 `json:"week"`
	Timezone    string                 `json:"timezone"`
	PeriodStart time.Time              `json:"period_start"`
	PeriodEnd   time.Time              `json:"period_end"`
	Recorded    bool                   `json:"recorded"`
	RecordedAt  *time.Time             `json:"recorded_at,omitempty"`
	SentAt      *time.Time             `json:"sent_at,omitempty"`
	Figures     postgres.WeeklyFigures `json:"figures"`
}

func runReportShow(ctx context.Context, e *env, slug, week string, asJSON bool) error {
	if slug == "" {
		return usagef("--account is required")
	}
	spec := postgres.WeekSpec{Ref: time.Now()}
	if week != "" {
		monday, err := compliance.ParseISOWeek(week)
		if err != nil {
			return usagef("--week: %v", err)
		}
		spec.Monday = monday
	}
	s, err := e.Store(ctx)
	if err != nil {
		return err
	}
	acc, err := s.ReportAccountBySlug(ctx, slug)
	if errors.Is(err, postgres.ErrNotFound) {
		return usagef("--account: no account has slug %q", slug)
	}
	if err != nil {
		return err
	}
	rep, err := s.ComputeWeeklyReport(ctx, acc.ID, spec, time.Now())
	if err != nil {
		return err
	}
	v := reportView{Account: acc.Slug, Week: rep.ISOWeek, Timezone: acc.Timezone, PeriodStart: rep.PeriodStart, PeriodEnd: rep.PeriodEnd, Figures: rep.Figures}
	// A recorded report is what was (or will be) sent: show that.
	recorded, err := s.WeeklyReport(ctx, acc.ID, rep.ISOWeek)
	switch {
	case err == nil:
		v.Recorded, v.Figures = true, recorded.Figures
		v.RecordedAt = &recorded.CreatedAt
		if recorded.SentAt.Valid {
			v.SentAt = &recorded.SentAt.Time
		}
	case !errors.Is(err, postgres.ErrNotFound):
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	printReport(e, acc, v)
	return nil
}

func printReport(e *env, acc postgres.ReportAccount, v reportView) {
	loc, err := time.LoadLocation(acc.Timezone)
	if err != nil {
		loc = time.UTC
	}
	const layout = "Mon 2006-01-02 15:04"
	fmt.Fprintf(e.stdout, "%s (%s), week %s: %s to %s %s\n", acc.Name, acc.Slug, v.Week,
		v.PeriodStart.In(loc).Format(layout), v.PeriodEnd.In(loc).Format(layout), acc.Timezone)
	switch {
	case v.SentAt != nil:
		fmt.Fprintf(e.stdout, "recorded %s, sent %s\n\n", rfc3339(*v.RecordedAt), rfc3339(*v.SentAt))
	case v.Recorded:
		fmt.Fprintf(e.stdout, "recorded %s, not sent yet\n\n", rfc3339(*v.RecordedAt))
	default:
		fmt.Fprintf(e.stdout, "not recorded: computed now, nothing sent\n\n")
	}
	f := v.Figures
	tw := e.table("FIGURE", "VALUE")
	fmt.Fprintf(tw, "total equipment (active)\t%d\n", f.TotalEquipment)
	fmt.Fprintf(tw, "cleanings completed\t%d\n", f.CleaningsCompleted)
	fmt.Fprintf(tw, "  of them on time\t%d\n", f.CleaningsOnTime)
	fmt.Fprintf(tw, "overdue at week end\t%d\n", f.OverdueAtEnd)
	fmt.Fprintf(tw, "compliance rate\t%.1f%%\n", f.ComplianceRate)
	fmt.Fprintf(tw, "active alerts (now)\t%d\n", f.ActiveAlerts)
	tw.Flush()
	if len(f.TopLocations) > 0 {
		fmt.Fprintln(e.stdout)
		tw = e.table("TOP LOCATION", "CLEANINGS", "COMPLIANCE")
		for _, l := range f.TopLocations {
			fmt.Fprintf(tw, "%s\t%d\t%.1f%%\n", l.Name, l.Cleanings, l.ComplianceRate)
		}
		tw.Flush()
	}
	if len(f.Alerts) > 0 {
		fmt.Fprintln(e.stdout)
		tw = e.table("ACTIVE ALERT", "LOCATION", "HOURS OVERDUE")
		for _, a := range f.Alerts {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", a.EquipmentName, a.LocationName, a.HoursOverdue)
		}
		tw.Flush()
	}
}
