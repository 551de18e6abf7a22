package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/scheduler"
)

func newScheduleCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "schedule",
		Short: "List the scheduler's entries, their cron specs and next run times",
		Args:  noArgs,
		RunE:  e.action(func(context.Context, []string) error { return runSchedule(e, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func runSchedule(e *env, asJSON bool) error {
	loc := e.cfg.SchedulerTimezone
	now := time.Now().In(loc)
	type row struct {
		Entry   string    `json:"entry"`
		Env     string    `json:"env"`
		Spec    string    `json:"spec"`
		NextRun time.Time `json:"next_run"`
	}
	var rows []row
	specs := scheduler.Specs{
		InboxRedrive:  e.cfg.InboxRedriveCron,
		OverdueScan:   e.cfg.OverdueScanCron,
		WeeklySummary: e.cfg.WeeklySummaryCron,
	}
	for _, en := range scheduler.Entries(specs) {
		next, err := scheduler.NextRun(en, now)
		if err != nil {
			return err
		}
		rows = append(rows, row{en.Name, en.Env, en.Spec, next})
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := e.table("ENTRY", "SPEC", "VARIABLE", "NEXT RUN ("+loc.String()+")", "IN")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Entry, r.Spec, r.Env, r.NextRun.Format("Mon 2006-01-02 15:04"), r.NextRun.Sub(now).Round(time.Second))
	}
	return tw.Flush()
}
