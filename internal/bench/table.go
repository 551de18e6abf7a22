//go:build bench

package bench

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Targets of the issue, on this machine.
const (
	targetIntakeRatio   = 0.7
	targetHalfPeakP99ms = 50.0
	targetBillingRatio  = 0.7
	// Where the intake and the apply stood next to the minimal baselines
	// (about 0.9 x the receiver's rate at 1.2 x its CPU, and 1.1 x the
	// minimal apply), less some noise: they must stay there.
	targetReceiverRatio = 0.85
	targetReceiverCPU   = 1.3
	targetApplyRatio    = 1.0
	targetIdleCPU       = 1.0 // percent of one core counts as "near zero"
)

func evaluateTargets(res *Results) []Target {
	var ts []Target
	if in := res.Intake; in != nil && res.Ceilings != nil {
		ts = append(ts, Target{
			Name:     fmt.Sprintf("intake >= %.1f x lower raw ceiling", targetIntakeRatio),
			Measured: fmt.Sprintf("%.0f/s = %.2f x %.0f/s", in.PeakPerSec, in.RatioToCeiling, res.Ceilings.Lower()),
			Met:      in.RatioToCeiling >= targetIntakeRatio,
		})
		ts = append(ts, Target{
			Name:     fmt.Sprintf("intake p99 < %.0f ms at half peak", targetHalfPeakP99ms),
			Measured: fmt.Sprintf("p99 %.1f ms at %.0f/s, %d errors", in.HalfPeak.P99ms, in.HalfPeak.TargetRate, in.HalfPeak.Errors),
			Met:      in.HalfPeak.P99ms < targetHalfPeakP99ms && in.HalfPeak.Errors == 0,
		})
	}
	if in := res.Intake; in != nil && in.Baseline != nil {
		b := in.Baseline
		ts = append(ts, Target{
			Name:     fmt.Sprintf("intake >= %.2f x minimal receiver at <= %.1f x its CPU/request", targetReceiverRatio, targetReceiverCPU),
			Measured: fmt.Sprintf("%.2f x (%.0f vs %.0f/s), CPU %.2f x (%.3f vs %.3f ms)", b.Ratio, b.Ours, b.Minimal, b.CPURatio, b.OursCPUms, b.MinimalCPUms),
			Met:      b.Ratio >= targetReceiverRatio && b.CPURatio <= targetReceiverCPU,
		})
	}
	if bl := res.Billing; bl != nil && bl.Baseline != nil {
		b := bl.Baseline
		ts = append(ts, Target{
			Name:     fmt.Sprintf("billing apply >= %.1f x minimal apply", targetApplyRatio),
			Measured: fmt.Sprintf("%.2f x (%.0f vs %.0f/s)", b.Ratio, b.Ours, b.Minimal),
			Met:      b.Ratio >= targetApplyRatio,
		})
	}
	if b := res.Billing; b != nil && res.Ceilings != nil {
		ts = append(ts, Target{
			Name:     fmt.Sprintf("billing apply >= %.1f x PostgreSQL ceiling", targetBillingRatio),
			Measured: fmt.Sprintf("%.0f/s = %.2f x %.0f/s", b.PerSec, b.RatioToPG, res.Ceilings.PGInsertPerSec),
			Met:      b.RatioToPG >= targetBillingRatio,
		})
	}
	if f := res.FanOut; f != nil && len(f.Runs) > 0 {
		for _, run := range f.Runs {
			ts = append(ts, Target{
				Name:     fmt.Sprintf("email fan-out (%s) >= %.1f x Resend's %d/s", run.Name, TargetFanOutRatio, resendLimitPerSec),
				Measured: fmt.Sprintf("%.0f/s = %.2f x, %d emails in %.0f s", run.PerSec, run.Ratio, run.Emails, run.Wall),
				Met:      run.Ratio >= TargetFanOutRatio,
			})
		}
	}
	if c := res.Compliance; c != nil {
		ts = append(ts,
			Target{Name: fmt.Sprintf("overdue scan <= %.1f x its bare SQL", ScanTargetRatio), Measured: fmt.Sprintf("%.2f x", c.ScanRatio()), Met: c.ScanRatio() <= ScanTargetRatio},
			Target{Name: fmt.Sprintf("weekly summaries <= %.1f x their bare SQL", WeeklyTargetRatio), Measured: fmt.Sprintf("%.2f x", c.WeeklyRatio()), Met: c.WeeklyRatio() <= WeeklyTargetRatio},
			Target{Name: fmt.Sprintf("compliance worker memory < %d MiB", WorkerTargetMemMiB), Measured: fmt.Sprintf("%.1f MiB", c.PeakRSSMiB), Met: c.PeakRSSMiB < WorkerTargetMemMiB},
		)
	}
	names := make([]string, 0, len(res.Processes))
	for n := range res.Processes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := res.Processes[n]
		if p.IdleSeconds == 0 {
			continue
		}
		ts = append(ts, Target{
			Name:     "idle CPU near zero: " + n,
			Measured: fmt.Sprintf("%.2f%% of a core", p.IdleCPUPercent),
			Met:      p.IdleCPUPercent < targetIdleCPU,
		})
	}
	return ts
}

// PrintTable writes the run's figures as aligned text.
func PrintTable(out io.Writer, res *Results) {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "\nMachine\t%d CPUs, %s, %d MB RAM, Linux %s, %s\n", res.Machine.CPUs, res.Machine.CPUModel, res.Machine.MemoryMB, res.Machine.Kernel, res.Machine.Go)
	fmt.Fprintln(w, "\nMeasure\tFigure\tRatio")
	if c := res.Ceilings; c != nil {
		fmt.Fprintf(w, "raw: asynq enqueue (%d goroutines)\t%.0f tasks/s\t\n", c.EnqueueWorkers, c.EnqueuePerSec)
		fmt.Fprintf(w, "raw: asynq no-op processing (concurrency %d)\t%.0f tasks/s\t\n", c.NoopConcurrency, c.NoopPerSec)
		fmt.Fprintf(w, "raw: PostgreSQL insert+commit of an inbox-sized row (16 / 32 conns)\t%.0f / %.0f rows/s\t\n", c.PGInsert16PerSec, c.PGInsert32PerSec)
	}
	if in := res.Intake; in != nil {
		for _, s := range in.Steps {
			fmt.Fprintf(w, "intake c=%d\t%.0f req/s, p50 %.2f / p95 %.2f / p99 %.2f ms, %d errors\tCPU %% of a core: machine %.0f, web %.0f, load generator %.0f\n",
				s.Concurrency, s.PerSec, s.P50ms, s.P95ms, s.P99ms, s.Errors, s.MachineCPU, s.WebCPU, s.LoaderCPU)
		}
		fmt.Fprintf(w, "intake peak\t%.0f req/s\t%.2f x lower ceiling\n", in.PeakPerSec, in.RatioToCeiling)
		h := in.HalfPeak
		fmt.Fprintf(w, "intake at half peak (%.0f/s, open loop)\tp50 %.2f / p95 %.2f / p99 %.2f ms, %d errors\t\n", h.TargetRate, h.P50ms, h.P95ms, h.P99ms, h.Errors)
		fmt.Fprintf(w, "intake durability\t%d answered 200: %d inbox rows, %d tasks queued\t\n", in.Accepted, in.InboxRows, in.Enqueued)
		if b := in.Baseline; b != nil {
			fmt.Fprintf(w, "minimal receiver (verify, insert, enqueue)\t%.0f req/s at %.3f ms CPU/request; web %.0f req/s at %.3f ms\t%.2f x rate, %.2f x CPU/request\n",
				b.Minimal, b.MinimalCPUms, b.Ours, b.OursCPUms, b.Ratio, b.CPURatio)
		}
	}
	if b := res.Billing; b != nil {
		fmt.Fprintf(w, "billing apply (%d events, concurrency %d)\t%.0f events/s (%.1f s; %.1f s incl. start; CPU %% of a core: machine %.0f, worker %.0f)\t%.2f x PG ceiling\n", b.Events, b.Concurrency, b.PerSec, b.Seconds, b.WallSeconds, b.MachineCPU, b.WorkerCPU, b.RatioToPG)
		if m := b.Baseline; m != nil {
			fmt.Fprintf(w, "minimal apply (one transaction per event, concurrency 32)\t%.0f events/s; worker %.0f events/s\t%.2f x minimal apply\n", m.Minimal, m.Ours, m.Ratio)
		}
	}
	if e := res.Email; e != nil {
		fmt.Fprintf(w, "email path (%d emails)\t%.0f emails/s, %d requests, %d keys (CPU %% of a core: machine %.0f, worker %.0f)\t%.2f x no-op ceiling\n", e.Emails, e.PerSec, e.Requests, e.DistinctKeys, e.MachineCPU, e.WorkerCPU, e.RatioToNoop)
	}
	if f := res.FanOut; f != nil {
		for _, r := range f.Runs {
			fmt.Fprintf(w, "email fan-out: %s (%d accounts)\t%d emails in %.1f s, %.0f emails/s, %d requests, %d answered 429\t%.2f x Resend's %d/s\n",
				r.Name, f.Accounts, r.Emails, r.Wall, r.PerSec, r.Requests, r.Refused, r.Ratio, resendLimitPerSec)
		}
	}
	if c := res.Compliance; c != nil {
		fmt.Fprintf(w, "compliance data set\t%d equipment, %d accounts, %d overdue (built in %s)\t\n", c.Equipment, c.Accounts, c.Overdue, c.Build.Round(time.Second))
		fmt.Fprintf(w, "overdue scan vs bare SQL (best of %d)\t%s vs %s (%d alerts, %d emails)\t%.2f x bare SQL\n", c.Runs, c.Scan.Round(time.Millisecond), c.BareScan.Round(time.Millisecond), c.Opened, c.Emails, c.ScanRatio())
		fmt.Fprintf(w, "weekly summaries vs grouped SQL (best of %d)\t%s vs %s (%d accounts)\t%.2f x bare SQL\n", c.Runs, c.Weekly.Round(time.Millisecond), c.BareWeekly.Round(time.Millisecond), c.Reports, c.WeeklyRatio())
		fmt.Fprintf(w, "compliance worker code peak memory\tRSS %.1f MiB (Go heap %.1f MiB)\t\n", c.PeakRSSMiB, c.PeakHeapMiB)
	}
	names := make([]string, 0, len(res.Processes))
	for n := range res.Processes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := res.Processes[n]
		idle := "not measured"
		if p.IdleSeconds > 0 {
			idle = fmt.Sprintf("%.2f%% of a core idle (%.0f s)", p.IdleCPUPercent, p.IdleSeconds)
		}
		fmt.Fprintf(w, "process %s\tpeak RSS %.1f MB, %s\t\n", n, p.PeakRSSMB, idle)
	}
	if len(res.Targets) > 0 {
		fmt.Fprintln(w, "\nTarget\tMeasured\tMet")
		for _, t := range res.Targets {
			met := "yes"
			if !t.Met {
				met = "NO"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", t.Name, t.Measured, met)
		}
	}
	for _, e := range res.Errors {
		fmt.Fprintf(w, "error\t%s\t\n", e)
	}
	fmt.Fprintf(w, "\ntotal time\t%.0f s\t\n", res.Seconds)
	w.Flush()
}
