package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/scheduler"
)

func newScheduleCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "schedule",
		Short: "Show the live schedulers, their entries, last and next runs and last outcome",
		Long: `Show what the running schedulers recorded in PostgreSQL: each live scheduler,
each entry with the spec and zone it runs on, its next run, its newest slot and
how that slot went (enqueued, already_enqueued, already_claimed or error).

When no scheduler is live, it says so and shows what this command's own
configuration (the *_CRON variables and SCHEDULER_TIMEZONE) would run,
labelled as such. Times are RFC 3339, UTC.`,
		Args: noArgs,
		RunE: e.action(func(ctx context.Context, _ []string) error { return runSchedule(ctx, e, asJSON) }),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func runSchedule(ctx context.Context, e *env, asJSON bool) error {
	store, err := e.Store(ctx)
	if err != nil {
		return err
	}
	specs := scheduler.Specs{
		InboxRedrive:  e.cfg.InboxRedriveCron,
		OverdueScan:   e.cfg.OverdueScanCron,
		WeeklySummary: e.cfg.WeeklySummaryCron,
	}
	if e.cfg.StripeSecretKey != "" { // as cmd/scheduler: they read the Stripe API
		specs.StripeSync, specs.StripeReconcile = e.cfg.StripeSyncCron, e.cfg.StripeReconcileCron
	}
	st, err := scheduler.ReadStatus(ctx, store, scheduler.Entries(specs), e.cfg.SchedulerTimezone, time.Now())
	if err != nil {
		return fmt.Errorf("read the schedulers' records: %w (is DATABASE_URL the scheduler's database, and migrated?)", err)
	}
	if asJSON {
		return printJSON(e.stdout, st)
	}
	return printSchedule(e, st)
}

func printSchedule(e *env, st scheduler.Status) error {
	w := e.stdout
	if st.Source == scheduler.FromSchedulers {
		fmt.Fprintf(w, "%s\n", countNoun(len(st.Live), "live scheduler"))
		tw := e.table("ID", "HOST", "PID", "STARTED", "LAST HEARTBEAT")
		for _, in := range st.Live {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", in.ID, in.Host, in.PID, rfc3339(in.StartedAt), rfc3339(in.HeartbeatAt))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	} else {
		if in := st.LastSeen; in != nil {
			ended := "no heartbeat since"
			if in.StoppedAt != nil {
				ended = "stopped " + rfc3339(*in.StoppedAt) + ", last heartbeat"
			}
			fmt.Fprintf(w, "No scheduler is live. The last one seen: %s on %s (pid %d), %s %s.\n", in.ID, in.Host, in.PID, ended, rfc3339(in.HeartbeatAt))
		} else {
			fmt.Fprintln(w, "No scheduler is live: none has recorded itself in this database.")
		}
		fmt.Fprintln(w, "What this command's configuration would run (not a running scheduler):")
	}

	tw := e.table("ENTRY", "SPEC", "ZONE", "NEXT RUN", "LAST SLOT", "LAST OUTCOME")
	for _, en := range st.Entries {
		slot, outcome := "-", "never fired"
		if en.Last != nil {
			slot, outcome = rfc3339(en.Last.Slot), en.Last.Outcome
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", en.Entry, en.Spec, en.Timezone, rfc3339(en.NextRun), slot, outcome)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, en := range st.Entries {
		if en.Last != nil && en.Last.Error != "" {
			fmt.Fprintf(w, "%s, slot %s: %s\n", en.Entry, rfc3339(en.Last.Slot), en.Last.Error)
		}
	}
	if d := st.Disagreements(); len(d) > 0 {
		fmt.Fprintf(w, "warning: the live schedulers run %s with different specs or zones: one was started with another environment\n", strings.Join(d, ", "))
	}
	return nil
}
