package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
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

// reportView is what `report show --json` prints. Figures are what the
// summary says: the stored figures once the week's report is recorded, the
// live ones before. Stored are the figures as recorded at send time; Live
// are computed now, and differ from Stored as alerts open and close.
type reportView struct {
	Account     string                  `json:"account"`
	Week        string                  `json:"week"`
	Timezone    string                  `json:"timezone"`
	PeriodStart time.Time               `json:"period_start"`
	PeriodEnd   time.Time               `json:"period_end"`
	Recorded    bool                    `json:"recorded"`
	RecordedAt  *time.Time              `json:"recorded_at,omitempty"`
	SentAt      *time.Time              `json:"sent_at,omitempty"`
	Source      string                  `json:"figures_source"` // stored or live
	Figures     postgres.WeeklyFigures  `json:"figures"`
	Stored      *postgres.WeeklyFigures `json:"stored_figures,omitempty"`
	Live        postgres.WeeklyFigures  `json:"live_figures"`
	ComputedAt  time.Time               `json:"live_computed_at"`
}

func runReportShow(ctx context.Context, e *env, slug, week string, asJSON bool) error {
	if slug == "" {
		return usagef("--account is required")
	}
	now := time.Now()
	spec := postgres.WeekSpec{Ref: now}
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
	rep, err := s.ComputeWeeklyReport(ctx, acc.ID, spec, now)
	if err != nil {
		return err
	}
	v := reportView{
		Account: acc.Slug, Week: rep.ISOWeek, Timezone: acc.Timezone,
		PeriodStart: rep.PeriodStart.UTC(), PeriodEnd: rep.PeriodEnd.UTC(),
		Source: "live", Figures: rep.Figures, Live: rep.Figures, ComputedAt: now.UTC(),
	}
	// A recorded report is what was (or will be) sent: its figures are the
	// summary's, kept as they were.
	recorded, err := s.WeeklyReport(ctx, acc.ID, rep.ISOWeek)
	switch {
	case err == nil:
		stored := recorded.Figures
		v.Recorded, v.Source, v.Figures, v.Stored = true, "stored", stored, &stored
		v.RecordedAt = optTime(recorded.CreatedAt)
		if recorded.SentAt.Valid {
			v.SentAt = optTime(recorded.SentAt.Time)
		}
	case !errors.Is(err, postgres.ErrNotFound):
		return err
	}
	if asJSON {
		return printJSON(e.stdout, v)
	}
	printReport(e, acc, v)
	return nil
}

func printReport(e *env, acc postgres.ReportAccount, v reportView) {
	loc, err := time.LoadLocation(acc.Timezone)
	if err != nil {
		loc = time.UTC
	}
	fmt.Fprintf(e.stdout, "%s (%s), week %s: %s to %s (%s to %s %s)\n", acc.Name, acc.Slug, v.Week,
		rfc3339(v.PeriodStart), rfc3339(v.PeriodEnd),
		v.PeriodStart.In(loc).Format("Mon 15:04"), v.PeriodEnd.In(loc).Format("Mon 15:04"), acc.Timezone)
	switch {
	case v.SentAt != nil:
		fmt.Fprintf(e.stdout, "recorded %s, sent %s: STORED is what the summary said, LIVE is computed now (%s)\n\n",
			rfc3339(*v.RecordedAt), rfc3339(*v.SentAt), rfc3339(v.ComputedAt))
	case v.Recorded:
		fmt.Fprintf(e.stdout, "recorded %s, not sent yet: STORED is what the summary will say, LIVE is computed now (%s)\n\n",
			rfc3339(*v.RecordedAt), rfc3339(v.ComputedAt))
	default:
		fmt.Fprintf(e.stdout, "not recorded: LIVE figures computed now (%s), nothing sent\n\n", rfc3339(v.ComputedAt))
	}
	type row struct {
		name string
		get  func(postgres.WeeklyFigures) string
	}
	rows := []row{
		{"total equipment (active)", func(f postgres.WeeklyFigures) string { return fmt.Sprint(f.TotalEquipment) }},
		{"cleanings completed", func(f postgres.WeeklyFigures) string { return fmt.Sprint(f.CleaningsCompleted) }},
		{"  of them on time", func(f postgres.WeeklyFigures) string { return fmt.Sprint(f.CleaningsOnTime) }},
		{"overdue at week end", func(f postgres.WeeklyFigures) string { return fmt.Sprint(f.OverdueAtEnd) }},
		{"compliance rate", func(f postgres.WeeklyFigures) string { return fmt.Sprintf("%.1f%%", f.ComplianceRate) }},
		{"active alerts", func(f postgres.WeeklyFigures) string { return fmt.Sprint(f.ActiveAlerts) }},
	}
	var tw *tabwriter.Writer
	if v.Stored != nil {
		tw = e.table("FIGURE", "STORED AT SEND", "LIVE NOW")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, r.get(*v.Stored), r.get(v.Live))
		}
	} else {
		tw = e.table("FIGURE", "LIVE NOW")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\n", r.name, r.get(v.Live))
		}
	}
	tw.Flush()
	// The lists are the summary's: stored once recorded.
	label := "live now"
	if v.Stored != nil {
		label = "stored at send"
	}
	f := v.Figures
	if len(f.TopLocations) > 0 {
		fmt.Fprintln(e.stdout)
		tw = e.table("TOP LOCATION ("+label+")", "CLEANINGS", "COMPLIANCE")
		for _, l := range f.TopLocations {
			fmt.Fprintf(tw, "%s\t%d\t%.1f%%\n", l.Name, l.Cleanings, l.ComplianceRate)
		}
		tw.Flush()
	}
	if len(f.Alerts) > 0 {
		fmt.Fprintln(e.stdout)
		tw = e.table("ACTIVE ALERT ("+label+")", "LOCATION", "HOURS OVERDUE")
		for _, a := range f.Alerts {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", a.EquipmentName, a.LocationName, a.HoursOverdue)
		}
		tw.Flush()
	}
}
