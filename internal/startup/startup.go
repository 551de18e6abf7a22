// Package startup is what every CleanTrack binary does before its work: it
// completes the environment from a .env file, and the daemons answer --help
// (what the process does and the variables it reads) and --version.
//
// Only the binaries' main functions read a .env (Dotenv with "."); the run
// functions that tests call take an Env, so a developer's .env never leaks
// into a test.
package startup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/joho/godotenv"

	"github.com/cleantrack/jobs/internal/config"
)

// EnvFile is the name of the file Dotenv reads.
const EnvFile = ".env"

// Env is the environment a process reads its configuration from.
type Env struct {
	// Getenv returns a variable's value, "" when unset.
	Getenv func(string) string
	// File is the absolute path of the .env file that filled in what the
	// real environment does not set; "" when there was none.
	File string
	// Err is why the .env file that exists could not be used. A process
	// stops with it at start, after answering --help and --version, which
	// need no configuration.
	Err error
}

// MapEnv is an Env of exactly the variables in m (tests and tools).
func MapEnv(m map[string]string) Env {
	return Env{Getenv: func(k string) string { return m[k] }}
}

// Dotenv completes the real environment (lookup: os.LookupEnv) with
// dir/.env when that file exists: a variable set in the environment, even to
// "", wins over the file. The file is read, never written to the process's
// environment. A file that exists but cannot be read or parsed is an error
// naming it (in Env.Err, with the real environment alone in Getenv); a
// missing one is not.
func Dotenv(dir string, lookup func(string) (string, bool)) Env {
	envOnly := Env{Getenv: func(k string) string { v, _ := lookup(k); return v }}
	path, err := filepath.Abs(filepath.Join(dir, EnvFile))
	if err != nil {
		envOnly.Err = fmt.Errorf("%s: %w", EnvFile, err)
		return envOnly
	}
	fileVars, err := godotenv.Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return envOnly
	case err != nil:
		// godotenv's parse errors quote the line, which may hold a secret.
		var perr *fs.PathError
		if errors.As(err, &perr) {
			envOnly.Err = fmt.Errorf("read %s: %w", path, perr.Err)
		} else {
			envOnly.Err = fmt.Errorf("read %s: not a valid .env file (NAME=value lines, # comments); see .env.example", path)
		}
		return envOnly
	}
	return Env{
		Getenv: func(k string) string {
			if v, ok := lookup(k); ok {
				return v
			}
			return fileVars[k]
		},
		File: path,
	}
}

// FileOrNone is File, or "none" when no .env was read (for a log line).
func (e Env) FileOrNone() string {
	if e.File == "" {
		return "none"
	}
	return e.File
}

// Source says where the configuration came from, for a log line or a
// message: "environment" or "environment and /path/.env".
func (e Env) Source() string {
	if e.File == "" {
		return "environment (no " + EnvFile + " in the working directory)"
	}
	return "environment and " + e.File
}

// Build is what the binary knows about its own build.
type Build struct {
	// Version is the module version ("(devel)" for a build from a checkout).
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, "" when unknown
	// (go run, go test); Modified says the work tree had changes.
	Commit   string `json:"commit"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified"`
	// Go is the toolchain that built it, with the target platform.
	Go string `json:"go"`
}

// ReadBuild reads the build information Go stamps into every binary.
func ReadBuild() Build {
	b := Build{Version: "unknown", Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if info.Main.Version != "" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Write prints b for people, one fact a line, under the binary's name.
func (b Build) Write(w io.Writer, name string) {
	commit := b.Commit
	switch {
	case commit == "":
		commit = "unknown (not built from a git checkout by go build)"
	case b.Modified:
		commit += " (with uncommitted changes)"
	}
	if b.Time != "" {
		commit += ", " + b.Time
	}
	fmt.Fprintf(w, "%s %s\ncommit: %s\ngo: %s\n", name, b.Version, commit, b.Go)
}

// UsageError is a mistake in how a binary was called; main exits 2 for it.
type UsageError struct{ Msg string }

func (u UsageError) Error() string { return u.Msg }

// ExitCode is 2 for a UsageError, 1 for any other error.
func ExitCode(err error) int {
	var u UsageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// DaemonArgs answers a daemon's command line (args as os.Args): --help
// (or -h) prints about and the variables process reads, --version prints
// the build; both report done. No argument means run; anything else is a
// UsageError.
func DaemonArgs(process, about string, args []string, stdout io.Writer) (done bool, err error) {
	if len(args) <= 1 {
		return false, nil
	}
	switch args[1] {
	case "-h", "-help", "--help", "help":
		WriteHelp(stdout, process, about)
		return true, nil
	case "-version", "--version", "version":
		ReadBuild().Write(stdout, process)
		return true, nil
	}
	return true, UsageError{fmt.Sprintf("unknown argument %q: %s takes no arguments, only its environment (see %s --help)", args[1], process, process)}
}

// WriteHelp prints what a daemon does, how to call it, and every variable it
// reads with its default, from config.Variables.
func WriteHelp(w io.Writer, process, about string) {
	fmt.Fprintf(w, "%s: %s\n\n", process, about)
	fmt.Fprintf(w, "Usage:\n  %s            run until SIGINT or SIGTERM\n  %s --help     print this help\n  %s --version  print version, commit and Go version\n\n", process, process, process)
	fmt.Fprintf(w, "Configuration is read once, at start, from the environment; a %s file in the\n"+
		"working directory fills in what the environment does not set. A malformed\n"+
		"value stops the process with a message naming the variable.\n"+
		"Every variable, with its default, is in .env.example.\n\n", EnvFile)
	fmt.Fprintln(w, "Variables:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range config.VariablesOf(process) {
		def := ""
		if v.Default != "" {
			def = " (default " + v.Default + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", v.Name, v.Summary, def)
	}
	_ = tw.Flush()
}
