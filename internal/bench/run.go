//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/proctest"
)

// Options steer one bench run.
type Options struct {
	OutDir        string
	Only          string
	BillingEvents int
	Emails        int
	// FanOutAccounts is how many accounts the fan-out phase mails (two
	// recipients each, twice: weekly summaries, then a scan's alerts).
	FanOutAccounts int
	Step           time.Duration
	AdminDBURL     string
	RedisServer    string
}

// DefaultOptions reads TEST_DATABASE_URL and TEST_REDIS_URL like the tests do.
func DefaultOptions() Options {
	o := Options{
		OutDir:         "tmp/bench",
		BillingEvents:  5000,
		Emails:         2000,
		FanOutAccounts: 10000,
		Step:           4 * time.Second,
		AdminDBURL:     "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		RedisServer:    "redis://127.0.0.1:6379",
	}
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		o.AdminDBURL = v
	}
	if v := os.Getenv("TEST_REDIS_URL"); v != "" {
		o.RedisServer = v
	}
	return o
}

func (o Options) runs(phase string) bool {
	if o.Only == "" {
		return true
	}
	for _, p := range strings.Split(o.Only, ",") {
		if strings.TrimSpace(p) == phase {
			return true
		}
	}
	return false
}

// Machine describes where the figures were measured.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemoryMB int64  `json:"memory_mb"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

// Results is everything one run measured; absent phases stay nil.
type Results struct {
	StartedAt  time.Time            `json:"started_at"`
	Seconds    float64              `json:"seconds"`
	Machine    Machine              `json:"machine"`
	Ceilings   *Ceilings            `json:"ceilings,omitempty"`
	Intake     *IntakeResult        `json:"intake,omitempty"`
	Billing    *BillingResult       `json:"billing,omitempty"`
	Email      *EmailResult         `json:"email,omitempty"`
	FanOut     *FanOutResult        `json:"fanout,omitempty"`
	Compliance *ComplianceResults   `json:"compliance,omitempty"`
	Processes  map[string]ProcStats `json:"processes,omitempty"`
	Targets    []Target             `json:"targets,omitempty"`
	Errors     []string             `json:"errors,omitempty"`
}

// ProcStats is one process's peak memory and idle CPU.
type ProcStats struct {
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	IdleCPUPercent float64 `json:"idle_cpu_percent"`
	IdleSeconds    float64 `json:"idle_seconds"`
}

// Target is one of the targets and whether this run met it.
type Target struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Run executes the phases Options selects, printing progress and the table to
// out and writing the JSON to OutDir/results-<time>.json and OutDir/latest.json.
func Run(ctx context.Context, o Options, out io.Writer) error {
	root, err := proctest.ModuleRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(o.OutDir) {
		o.OutDir = filepath.Join(root, o.OutDir)
	}
	res := &Results{StartedAt: time.Now().UTC(), Machine: DescribeMachine(), Processes: map[string]ProcStats{}}
	fmt.Fprintf(out, "bench: %d CPUs (%s), %d MB RAM\n", res.Machine.CPUs, res.Machine.CPUModel, res.Machine.MemoryMB)

	world, err := newEnv(ctx, o, root, out)
	if err != nil {
		return err
	}
	defer world.close()

	phases := []struct {
		name string
		fn   func(context.Context, *env, *Results) error
	}{
		{"ceilings", phaseCeilings},
		{"intake", phaseIntake},
		{"billing", phaseBilling},
		{"email", phaseEmail},
		{"fanout", phaseFanOut},
		{"compliance", phaseCompliance},
		{"idle", phaseIdle},
	}
	for _, p := range phases {
		if !o.runs(p.name) || ctx.Err() != nil {
			continue
		}
		fmt.Fprintf(out, "bench: %s ...\n", p.name)
		t0 := time.Now()
		if err := p.fn(ctx, world, res); err != nil {
			msg := fmt.Sprintf("%s: %v", p.name, err)
			res.Errors = append(res.Errors, msg)
			fmt.Fprintf(out, "bench: %s failed: %v\n", p.name, err)
		} else {
			fmt.Fprintf(out, "bench: %s done in %s\n", p.name, time.Since(t0).Round(time.Second))
		}
	}
	world.collectMemory(res)
	res.Targets = evaluateTargets(res)
	res.Seconds = time.Since(res.StartedAt).Seconds()
	PrintTable(out, res)
	return writeJSON(o.OutDir, res, out)
}

func writeJSON(dir string, res *Results, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(dir, "results-"+res.StartedAt.Format("20060102-150405")+".json")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "bench: results written to %s\n", name)
	return nil
}

// DescribeMachine reads the CPU count and model, memory and kernel.
func DescribeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb)
			}
		}
		m.MemoryMB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
