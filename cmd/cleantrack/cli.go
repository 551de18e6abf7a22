package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
)

// command is one CLI verb, such as "migrate status" or "stripe trigger".
type command struct {
	name    string // words that select it, space-separated
	args    string // synopsis of arguments and flags, for help
	summary string
	// run parses args (everything after the command's words) and acts.
	run func(ctx context.Context, e *env, args []string) error
}

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

	store     *postgres.Store
	client    *asynq.Client
	inspector *asynq.Inspector
}

func (e *env) Store(ctx context.Context) (*postgres.Store, error) {
	if e.store == nil {
		s, err := postgres.Open(ctx, e.cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("%w (is PostgreSQL running, and is DATABASE_URL right?)", err)
		}
		e.store = s
	}
	return e.store, nil
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
}

// table writes aligned columns for a terminal.
func (e *env) table(header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

func allCommands() []command {
	var cmds []command
	cmds = append(cmds, coreCommands()...)
	cmds = append(cmds, scheduleCommands()...)
	cmds = append(cmds, stripeCheckCommands()...)
	cmds = append(cmds, stripeCommands()...)
	cmds = append(cmds, emailCommands()...)
	cmds = append(cmds, complianceCommands()...)
	cmds = append(cmds, opsCommands()...)
	return cmds
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmds := allCommands()
	words := args[1:]
	if len(words) == 0 || words[0] == "help" || words[0] == "--help" || words[0] == "-h" {
		printUsage(stdout, cmds, "")
		if len(words) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	cmd, rest := match(cmds, words)
	if cmd == nil {
		prefix := strings.Join(nonFlags(words), " ")
		// "cleantrack stripe --help": the commands of that group.
		if slices.Contains(words, "--help") || slices.Contains(words, "-h") {
			if group := groupOf(cmds, prefix); len(group) > 0 {
				printUsage(stdout, group, "")
				return nil
			}
		}
		printUsage(stderr, cmds, prefix)
		return usagef("unknown command %q; see the list above", prefix)
	}
	for _, a := range rest {
		if a == "--help" || a == "-h" {
			fmt.Fprintf(stdout, "usage: cleantrack %s %s\n\n%s\n\nflags:\n", cmd.name, cmd.args, cmd.summary)
			// The command's own flag set prints its flags and defaults, and
			// stops before doing anything.
			var flagHelp strings.Builder
			h := &env{getenv: getenv, stdout: stdout, stderr: &flagHelp}
			err := cmd.run(ctx, h, []string{"-h"})
			h.close()
			// The flag package's first line is "Usage of ..."; the rest
			// lists the flags, if there are any.
			_, list, _ := strings.Cut(flagHelp.String(), "\n")
			if strings.TrimSpace(list) == "" {
				list = "  (none)\n"
			}
			fmt.Fprint(stdout, list)
			var u usageError
			if err == nil || (errors.As(err, &u) && u.msg == flag.ErrHelp.Error()) {
				return nil
			}
			return err
		}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	e := &env{cfg: cfg, getenv: getenv, stdout: stdout, stderr: stderr}
	defer e.close()
	return cmd.run(ctx, e, rest)
}

// groupOf lists the commands whose first words are prefix's words.
func groupOf(cmds []command, prefix string) []command {
	want := strings.Fields(prefix)
	if len(want) == 0 {
		return nil
	}
	var out []command
	for _, c := range cmds {
		if w := strings.Fields(c.name); len(w) >= len(want) && slices.Equal(w[:len(want)], want) {
			out = append(out, c)
		}
	}
	return out
}

// match picks the command whose words are the longest prefix of words.
func match(cmds []command, words []string) (*command, []string) {
	var best *command
	bestLen := 0
	for i := range cmds {
		w := strings.Fields(cmds[i].name)
		if len(w) > len(words) || len(w) <= bestLen {
			continue
		}
		ok := true
		for j := range w {
			if words[j] != w[j] {
				ok = false
				break
			}
		}
		if ok {
			best, bestLen = &cmds[i], len(w)
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, words[bestLen:]
}

func nonFlags(words []string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, "-") {
			break
		}
		out = append(out, w)
	}
	return out
}

func printUsage(w io.Writer, cmds []command, prefix string) {
	fmt.Fprintln(w, "usage: cleantrack <command> [flags]   (cleantrack <command> --help for details)")
	fmt.Fprintln(w)
	sorted := append([]command(nil), cmds...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	first := strings.Fields(prefix)
	for _, c := range sorted {
		if len(first) > 0 && !strings.HasPrefix(c.name, first[0]) {
			continue
		}
		fmt.Fprintf(w, "  %s %s\n      %s\n", c.name, c.args, c.summary)
	}
}

// flags makes a FlagSet for a command whose parse errors are usage errors.
func flags(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("cleantrack "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse parses args with fs, allowing flags after positional arguments, and
// returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
