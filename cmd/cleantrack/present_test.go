package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountNoun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n      int
		noun   string
		plural []string
		want   string
	}{
		{0, "event", nil, "0 events"},
		{1, "event", nil, "1 event"},
		{2, "event", nil, "2 events"},
		{1, "retry", nil, "1 retry"},
		{3, "retry", nil, "3 retries"},
		{2, "day", nil, "2 days"},
		{2, "match", nil, "2 matches"},
		{2, "live scheduler", nil, "2 live schedulers"},
		{2, "archived task", nil, "2 archived tasks"},
		{1, "new piece of equipment", []string{"new pieces of equipment"}, "1 new piece of equipment"},
		{5, "new piece of equipment", []string{"new pieces of equipment"}, "5 new pieces of equipment"},
	} {
		assert.Equal(t, tc.want, countNoun(tc.n, tc.noun, tc.plural...))
	}
}

func TestRFC3339IsUTC(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, paris)
	assert.Equal(t, "2026-11-30T09:00:00Z", rfc3339(at))
	assert.Equal(t, "2026-11-30T09:00:00Z", showTime(&at))
	assert.Equal(t, "-", showTime(nil))
}

// leaves are the commands that do something, by path ("stripe events").
func leaves(t *testing.T) map[string]*cobra.Command {
	t.Helper()
	out := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Runnable() && c.Annotations["group"] == "" && c.Name() != "help" {
			out[strings.TrimPrefix(c.CommandPath(), "cleantrack ")] = c
		}
	}
	walk(newRootCmd(&env{}))
	require.NotEmpty(t, out)
	return out
}

// Every command that lists or reports takes --json; the exceptions print
// something that is not a report.
func TestEveryReportingCommandTakesJSON(t *testing.T) {
	t.Parallel()
	exempt := map[string]string{
		"email preview":   "prints the rendered email itself",
		"email send-test": "sends mail; its delivery shows in email deliveries --json",
		"version":         "prints the build",
	}
	for path, c := range leaves(t) {
		if strings.HasPrefix(path, "completion ") || strings.HasPrefix(path, "__") {
			continue
		}
		if _, ok := exempt[path]; ok {
			continue
		}
		assert.NotNil(t, c.Flags().Lookup("json"), "cleantrack %s has no --json", path)
	}
}

// workingArgs are arguments each command accepts, so that what follows is
// the command's own work, not a usage error.
var workingArgs = map[string][]string{
	"enqueue":                {"stripe:event", "--payload", `{"event_id":"evt_1"}`},
	"email preview":          {"welcome"},
	"email send-test":        {"--to", "a@example.com"},
	"email suppress":         {"a@example.com"},
	"email unsuppress":       {"a@example.com"},
	"report show":            {"--account", "demo-hospital"},
	"queues pause":           {"low"},
	"queues unpause":         {"low"},
	"tasks list":             {"low", "archived"},
	"tasks show":             {"low", "t1"},
	"tasks retry":            {"low", "t1"},
	"tasks delete":           {"low", "t1"},
	"tasks cancel":           {"t1"},
	"stripe trigger":         {"customer.created", "--account", "demo-hospital"},
	"stripe replay":          {"evt_1"},
	"stripe dismiss":         {"evt_1", "--reason", "test", "--by", "me"},
	"stripe sync":            {},
	"completion bash":        {},
	"version":                {},
	"enqueue overdue-scan":   {},
	"enqueue weekly-summary": {},
	"stripe reconcile":       {},
	"stripe check":           {},
	"stripe events":          {},
	"email deliveries":       {},
	"email check":            {},
	"migrate":                {},
	"migrate status":         {},
	"seed demo":              {},
	"schedule":               {},
	"queues":                 {},
	"workers":                {},
	"completion zsh":         {},
	"completion fish":        {},
	"completion powershell":  {},
}

// Usage mistakes exit 2 and failures exit 1, in every command: an unknown
// flag is a usage error everywhere; with PostgreSQL and Redis unreachable,
// every command that needs them fails with 1 and says what to check.
func TestExitCodesInEveryCommand(t *testing.T) {
	t.Parallel()
	// As main does: the error reaches the user once, as the command's own.
	redis.SetLogger(quietLogger{})
	down := map[string]string{
		"DATABASE_URL":          "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
		"REDIS_URL":             "redis://127.0.0.1:1",
		"STRIPE_WEBHOOK_SECRET": "whsec_test",
	}
	offline := map[string]bool{ // needs neither PostgreSQL nor Redis
		"email preview": true, "version": true,
		"completion bash": true, "completion zsh": true, "completion fish": true, "completion powershell": true,
	}
	for path := range leaves(t) {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			args, ok := workingArgs[path]
			require.True(t, ok, "add working arguments for cleantrack %s", path)
			cmd := strings.Fields(path)

			_, _, err := cli(t, down, append(append(slices.Clone(cmd), args...), "--no-such-flag")...)
			require.Error(t, err)
			assert.Equal(t, 2, exitCode(err), "unknown flag: %v", err)

			_, _, err = cli(t, down, append(slices.Clone(cmd), args...)...)
			if offline[path] {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err, "nothing is reachable")
			assert.Equal(t, 1, exitCode(err), "a failure, not a usage error: %v", err)
		})
	}
}
