package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
)

// usageError is a mistake in how the command was called; it exits with 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// env is what a command runs with: configuration, output streams, and
// connections opened on first use and closed when the command ends.
type env struct {
	cfg    config.Config
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer

	store        *postgres.Store
	migrateStore *postgres.Store
	client       *asynq.Client
	inspector    *asynq.Inspector
}

func (e *env) Store(ctx context.Context) (*postgres.Store, error) {
	if e.store == nil {
		s, err := postgres.OpenWith(ctx, e.cfg.DatabaseURL, postgres.Options{MaxConns: e.cfg.DatabaseMaxConns})
		if err != nil {
			return nil, fmt.Errorf("%w (is PostgreSQL running, and is DATABASE_URL right?)", err)
		}
		e.store = s
	}
	return e.store, nil
}

// MigrateStore is the store migrations run on: MIGRATE_DATABASE_URL, a
// direct connection to PostgreSQL when DATABASE_URL goes through PgBouncer
// (the migration lock is a session lock), or DATABASE_URL itself.
func (e *env) MigrateStore(ctx context.Context) (*postgres.Store, error) {
	if e.cfg.MigrateDatabaseURL == e.cfg.DatabaseURL {
		return e.Store(ctx)
	}
	if e.migrateStore == nil {
		s, err := postgres.OpenWith(ctx, e.cfg.MigrateDatabaseURL, postgres.Options{MaxConns: 2})
		if err != nil {
			return nil, fmt.Errorf("%w (is PostgreSQL running, and is MIGRATE_DATABASE_URL right?)", err)
		}
		e.migrateStore = s
	}
	return e.migrateStore, nil
}

func (e *env) redisOpt() (asynq.RedisConnOpt, error) { return queue.RedisOpt(e.cfg.RedisURL) }

func (e *env) Client() (*asynq.Client, error) {
	if e.client == nil {
		opt, err := e.redisOpt()
		if err != nil {
			return nil, err
		}
		e.client = asynq.NewClient(opt)
	}
	return e.client, nil
}

func (e *env) Inspector() (*asynq.Inspector, error) {
	if e.inspector == nil {
		opt, err := e.redisOpt()
		if err != nil {
			return nil, err
		}
		e.inspector = asynq.NewInspector(opt)
	}
	return e.inspector, nil
}

func (e *env) close() {
	if e.inspector != nil {
		e.inspector.Close()
	}
	if e.client != nil {
		e.client.Close()
	}
	if e.store != nil {
		e.store.Close()
	}
	if e.migrateStore != nil {
		e.migrateStore.Close()
	}
}

// table writes aligned columns for a terminal.
func (e *env) table(header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

// action is a command's RunE: it reads the configuration, then does the
// work. Help, completion and usage errors never get here, so they need no
// configuration, PostgreSQL or Redis.
func (e *env) action(fn func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := config.Load(e.getenv)
		if err != nil {
			return err
		}
		e.cfg = cfg
		return fn(cmd.Context(), args)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	defer e.close()
	root := newRootCmd(e)
	root.SetArgs(args[1:])
	return root.ExecuteContext(ctx)
}

// newRootCmd builds the whole command tree. It is built again for every run,
// so that runs share no state.
func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "cleantrack",
		Short: "Run CleanTrack: migrate, seed, enqueue or replay work, send test webhooks and email, look into the queues",
		// main prints the error once; usage goes with usage errors only.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see \"%s --help\")", err, c.CommandPath())
	})
	// A group's usage shows "cleantrack stripe [command]" only: it runs
	// solely to refuse a missing or unknown command.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}", `{{if and .Runnable (not (index .Annotations "group"))}}`, 1))

	root.AddCommand(
		newMigrateCmd(e),
		newSeedCmd(e),
		newEnqueueCmd(e),
		newScheduleCmd(e),
		newStripeCmd(e),
		newEmailCmd(e),
		newReportCmd(e),
		newQueuesCmd(e),
		newTasksCmd(e),
	)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			asGroup(c)
		}
	}
	return asGroup(root)
}

// group makes a command that only holds others, such as "stripe".
func group(use, short string, children ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short}
	c.AddCommand(children...)
	return asGroup(c)
}

// asGroup makes c refuse to run without one of its commands. Cobra would
// print the help and succeed for "cleantrack stripe" and for
// "cleantrack stripe frobnicate"; both are usage errors here, as for the root.
func asGroup(c *cobra.Command) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations["group"] = "true"
	c.Args = noArgs
	c.RunE = func(c *cobra.Command, _ []string) error {
		fmt.Fprint(c.ErrOrStderr(), c.UsageString())
		return usagef("%s needs a command; the commands are listed above", c.CommandPath())
	}
	return c
}

// noArgs refuses positional arguments. For a command that has commands of
// its own, an argument is most likely a mistyped one of them: it lists them
// and suggests the closest.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if !c.HasAvailableSubCommands() {
		return usagef("unexpected argument %q: %s takes no arguments, only flags", args[0], c.CommandPath())
	}
	fmt.Fprint(c.ErrOrStderr(), c.UsageString())
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	c.SuggestionsMinimumDistance = 2
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usageError{msg + "; the commands are listed above"}
}

// exactArgs wants n positional arguments; otherwise it is a usage error
// that says msg.
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{msg}
		}
		return nil
	}
}

// completeArgs completes the i-th positional argument from the i-th list.
func completeArgs(lists ...[]string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) < len(lists) {
			return lists[len(args)], cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFlag completes a flag's value from a fixed list.
func completeFlag(c *cobra.Command, flag string, values ...string) {
	// It fails only for a flag the command does not define: a bug seen at once.
	if err := c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)); err != nil {
		panic(err)
	}
}
