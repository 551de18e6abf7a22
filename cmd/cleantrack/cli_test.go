package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/tasks"
)

// brokenEnv is a configuration that fails to load and points at servers
// that do not exist: help, usage errors and completion must not care.
var brokenEnv = map[string]string{
	"OVERDUE_SCAN_CRON": "often",
	"DATABASE_URL":      "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
	"REDIS_URL":         "redis://127.0.0.1:1",
}

func TestRootHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		out, stderr, err := cli(t, brokenEnv, args...)
		require.NoError(t, err, args)
		assert.Empty(t, stderr)
		assert.Contains(t, out, "Usage:\n  cleantrack [command]\n")
		for _, name := range []string{"completion", "email", "enqueue", "migrate", "queues", "report", "schedule", "seed", "stripe", "tasks", "workers"} {
			assert.Regexp(t, `(?m)^  `+name+` +[A-Z]`, out, "%v lists %s with its summary", args, name)
		}
	}

	out, stderr, err := cli(t, brokenEnv)
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err), "no command is a usage error")
	assert.Equal(t, "cleantrack needs a command; the commands are listed above", err.Error())
	assert.Empty(t, out)
	assert.Contains(t, stderr, "Available Commands:")
}

func TestGroupHelp(t *testing.T) {
	t.Parallel()
	groups := map[string][]string{
		"stripe":     {"check", "dismiss", "events", "replay", "trigger"},
		"email":      {"deliveries", "preview", "send-test", "suppress", "unsuppress"},
		"tasks":      {"cancel", "delete", "list", "retry", "show"},
		"seed":       {"demo"},
		"report":     {"show"},
		"completion": {"bash", "fish", "powershell", "zsh"},
	}
	for name, children := range groups {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, _, err := cli(t, brokenEnv, name, "--help")
			require.NoError(t, err)
			assert.Contains(t, out, "Usage:\n  cleantrack "+name+" [command]\n")
			assert.NotContains(t, out, "cleantrack "+name+" [flags]", "a group runs only one of its commands")
			assert.Contains(t, out, "Available Commands:")
			for _, c := range children {
				assert.Regexp(t, `(?m)^  `+c+` +[A-Z]`, out)
			}
			viaHelp, _, err := cli(t, brokenEnv, "help", name)
			require.NoError(t, err)
			assert.Equal(t, out, viaHelp, "cleantrack help %s", name)

			// Alone, the group names the problem and shows its commands.
			out, stderr, err := cli(t, brokenEnv, name)
			require.Error(t, err)
			assert.Equal(t, 2, exitCode(err))
			assert.Equal(t, "cleantrack "+name+" needs a command; the commands are listed above", err.Error())
			assert.Empty(t, out)
			assert.Contains(t, stderr, "  "+children[0]+" ")
		})
	}

	// Commands that run and hold others show both forms.
	out, _, err := cli(t, brokenEnv, "enqueue", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "Usage:\n  cleantrack enqueue <task-type> [flags]\n  cleantrack enqueue [command]\n")
	assert.Regexp(t, `(?m)^  overdue-scan +Enqueue an overdue-cleaning scan`, out)
	assert.Regexp(t, `(?m)^  weekly-summary +Enqueue the weekly compliance summaries`, out)
}

func TestCommandHelpShowsFlagsWithDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"stripe", "events"}, []string{
			"List recorded Stripe events, newest first",
			"Usage:\n  cleantrack stripe events [flags]\n",
			"--failed ", "--json ", "--since string ",
			"--limit int        at most this many events (default 50)",
		}},
		{[]string{"stripe", "trigger"}, []string{
			"Event types: customer.created, customer.subscription.created,",
			"Usage:\n  cleantrack stripe trigger <event-type> --account <slug> [flags]\n",
			`--shape string     API shape: 2023 (2023-10-16) or 2025 (2025-03-31.basil) (default "2025")`,
		}},
		{[]string{"tasks", "list"}, []string{
			"Usage:\n  cleantrack tasks list <queue> <pending|active|scheduled|retry|archived|completed> [flags]\n",
			"--limit int   show at most this many tasks (default 20)",
		}},
		{[]string{"tasks", "retry"}, []string{"--all-archived   act on every archived task of the queue"}},
		{[]string{"enqueue"}, []string{"Task types: cleaning:overdue_scan, email:batch, email:send,", `--queue string queue: critical, default or low (default: the task type's queue)`}},
		{[]string{"email", "preview"}, []string{"Templates: " + strings.Join(email.Templates(), ", ")}},
		{[]string{"email", "suppress"}, []string{`--reason string   why the address must not get email (default "added by hand")`}},
		{[]string{"migrate"}, []string{"Usage:\n  cleantrack migrate [flags]\n  cleantrack migrate [command]\n", "  status "}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			// After the arguments, before them, or through "help": the same page.
			out, stderr, err := cli(t, brokenEnv, append(tc.args, "--help")...)
			require.NoError(t, err, "help needs no configuration, PostgreSQL or Redis")
			assert.Empty(t, stderr)
			// Column widths depend on the longest flag: compare words.
			spaces := regexp.MustCompile(` +`)
			for _, w := range tc.want {
				assert.Contains(t, spaces.ReplaceAllString(out, " "), spaces.ReplaceAllString(w, " "))
			}
			assert.Contains(t, out, "-h, --help")
			viaHelp, _, err := cli(t, brokenEnv, append([]string{"help"}, tc.args...)...)
			require.NoError(t, err)
			assert.Equal(t, out, viaHelp)
		})
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate" for "cleantrack"`},
		{"suggestion", []string{"stirpe", "events"}, `unknown command "stirpe" for "cleantrack" (did you mean "stripe"?)`},
		{"unknown command in a group", []string{"stripe", "evnets"}, `unknown command "evnets" for "cleantrack stripe" (did you mean "events"?)`},
		{"unknown command under a command", []string{"migrate", "stauts"}, `unknown command "stauts" for "cleantrack migrate" (did you mean "status"?)`},
		{"unknown flag", []string{"stripe", "events", "--bogus"}, `unknown flag: --bogus (see "cleantrack stripe events --help")`},
		{"single-dash long flag", []string{"stripe", "events", "-since", "1h"}, `unknown shorthand flag: 's' in -since`},
		{"flag without its value", []string{"enqueue", "stripe:event", "--payload"}, "flag needs an argument: --payload"},
		{"bad flag value", []string{"tasks", "list", "low", "archived", "--limit", "many"}, `invalid argument "many" for "--limit" flag`},
		{"bad bool value", []string{"queues", "--json=maybe"}, `invalid argument "maybe" for "--json" flag`},
		{"too few arguments", []string{"tasks", "show", "low"}, "usage: cleantrack tasks show <queue> <task-id>"},
		{"too many arguments", []string{"stripe", "replay", "evt_1", "evt_2"}, "stripe replay takes one event id"},
		{"argument to a flags-only command", []string{"stripe", "events", "failed"}, `unexpected argument "failed": cleantrack stripe events takes no arguments, only flags`},
		{"not an address", []string{"email", "suppress", "nobody"}, "email suppress takes one email address"},
		{"queues with a queue", []string{"queues", "low"}, `did you mean "cleantrack queues pause low"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The broken configuration shows that usage is checked first.
			_, _, err := cli(t, brokenEnv, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, 2, exitCode(err), "%v", err)
		})
	}

	// Value checks come after the configuration is read; a valid one here.
	for _, args := range [][]string{
		{"stripe", "events", "--limit", "0"},
		{"email", "deliveries", "--status", "lost"},
		{"tasks", "list", "low", "failed"},
		{"enqueue", "stripe:event", "--queue", "urgent"},
		{"enqueue", "overdue_scan"},
	} {
		_, _, err := cli(t, nil, args...)
		require.Error(t, err, args)
		assert.Equal(t, 2, exitCode(err), "%v: %v", args, err)
	}

	// A failure, not a usage error.
	_, _, err := cli(t, brokenEnv, "migrate")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), "OVERDUE_SCAN_CRON")
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, marker := range map[string]string{
		"bash":       "__start_cleantrack",
		"zsh":        "#compdef cleantrack",
		"fish":       "complete -c cleantrack",
		"powershell": "Register-ArgumentCompleter",
	} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			out, _, err := cli(t, brokenEnv, "completion", shell)
			require.NoError(t, err)
			assert.Contains(t, out, marker)
		})
	}

	// What the shell scripts ask the binary: candidates, then ":directive"
	// (4 is "no file completion").
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"tasks", "list", ""}, []string{"critical", "default", "low"}},
		{[]string{"tasks", "list", "low", ""}, opsStates},
		{[]string{"tasks", "retry", ""}, []string{"critical", "default", "low"}},
		{[]string{"queues", "pause", ""}, []string{"critical", "default", "low"}},
		{[]string{"enqueue", "--queue", ""}, []string{"critical", "default", "low"}},
		{[]string{"email", "preview", ""}, email.Templates()},
		{[]string{"email", "send-test", "--template", ""}, email.Templates()},
		{[]string{"email", "deliveries", "--status", ""}, []string{"queued", "sent", "failed", "suppressed", "outbox"}},
		{[]string{"stripe", "trigger", ""}, tasks.StripeEventTypes},
		{[]string{"enqueue", ""}, append(tasks.TypeNames(), "overdue-scan", "weekly-summary")},
		{[]string{"stripe", "trigger", "customer.created", "--shape", ""}, []string{"2023", "2025"}},
		{[]string{"stripe", "trigger", "customer.created", "--status", ""}, []string{"active", "past_due", "unpaid", "incomplete", "canceled"}},
		{[]string{"stripe", ""}, []string{"check", "dismiss", "events", "reconcile", "replay", "sync", "trigger"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			out, _, err := cli(t, brokenEnv, append([]string{"__complete"}, tc.args...)...)
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.NotEmpty(t, lines)
			var got []string
			for _, l := range lines[:len(lines)-1] {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
			assert.ElementsMatch(t, tc.want, got, out)
			assert.Equal(t, ":4", lines[len(lines)-1])
		})
	}
}
