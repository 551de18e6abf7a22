package startup_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/startup"
)

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDotenvFillsInWhatTheEnvironmentLacks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(strings.Join([]string{
		"# a comment",
		"DATABASE_URL=postgres://from-file/db",
		`DEFAULT_FROM_EMAIL="Ops <ops@example.com>"`,
		"export LOG_LEVEL=debug",
		"PORT=9000",
		"ADMIN_USER=from-file",
	}, "\n")), 0o600))
	env := startup.Dotenv(dir, lookupIn(map[string]string{
		"PORT":       "8100", // the environment wins
		"ADMIN_USER": "",     // even when set to nothing
	}))
	require.NoError(t, env.Err)
	assert.Equal(t, filepath.Join(dir, ".env"), env.File)
	assert.Equal(t, "postgres://from-file/db", env.Getenv("DATABASE_URL"))
	assert.Equal(t, "Ops <ops@example.com>", env.Getenv("DEFAULT_FROM_EMAIL"))
	assert.Equal(t, "debug", env.Getenv("LOG_LEVEL"))
	assert.Equal(t, "8100", env.Getenv("PORT"))
	assert.Equal(t, "", env.Getenv("ADMIN_USER"))
	assert.Equal(t, "", env.Getenv("REDIS_URL"))
	assert.Equal(t, "environment and "+env.File, env.Source())
	_, set := os.LookupEnv("DATABASE_URL")
	assert.False(t, set && os.Getenv("DATABASE_URL") == "postgres://from-file/db", "the file is never written into the process's environment")
}

func TestDotenvWithoutAFile(t *testing.T) {
	t.Parallel()
	env := startup.Dotenv(t.TempDir(), lookupIn(map[string]string{"PORT": "8100"}))
	require.NoError(t, env.Err)
	assert.Empty(t, env.File)
	assert.Equal(t, "8100", env.Getenv("PORT"))
	assert.Contains(t, env.Source(), "no .env")
}

func TestDotenvRefusesAMalformedFileWithoutQuotingIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("PORT=8000\nRESEND_API_KEY=\"re_s3cret\n"), 0o600))
	env := startup.Dotenv(dir, lookupIn(map[string]string{"PORT": "8100"}))
	err := env.Err
	require.Error(t, err)
	assert.Equal(t, "8100", env.Getenv("PORT"), "the real environment is still there")
	assert.Empty(t, env.Getenv("RESEND_API_KEY"))
	assert.Contains(t, err.Error(), filepath.Join(dir, ".env"))
	assert.Contains(t, err.Error(), "not a valid .env file")
	assert.NotContains(t, err.Error(), "s3cret")

	// A directory where the file should be cannot be read either.
	dir = t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, ".env"), 0o755))
	err = startup.Dotenv(dir, lookupIn(nil)).Err
	require.Error(t, err)
	assert.Contains(t, err.Error(), ".env")
}

func TestDaemonArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args     []string
		done     bool
		usage    bool
		contains []string
	}{
		{[]string{"worker"}, false, false, nil},
		{[]string{"worker", "--help"}, true, false, []string{"worker: runs the tasks\n", "WORKER_CONCURRENCY", "tasks run at once per worker process (default 10)", "DATABASE_URL", ".env file in the"}},
		{[]string{"worker", "-h"}, true, false, []string{"Variables:"}},
		{[]string{"worker", "--version"}, true, false, []string{"worker ", "\ncommit: ", "\ngo: " + runtime.Version()}},
		{[]string{"worker", "--frobnicate"}, true, true, nil},
		{[]string{"worker", "serve"}, true, true, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out strings.Builder
			done, err := startup.DaemonArgs("worker", "runs the tasks", tc.args, &out)
			assert.Equal(t, tc.done, done)
			if tc.usage {
				require.Error(t, err)
				assert.Equal(t, 2, startup.ExitCode(err))
				assert.Contains(t, err.Error(), "worker --help")
				assert.Empty(t, out.String())
				return
			}
			require.NoError(t, err)
			for _, s := range tc.contains {
				assert.Contains(t, out.String(), s)
			}
		})
	}
	var out strings.Builder
	_, err := startup.DaemonArgs("worker", "runs the tasks", []string{"worker", "--help"}, &out)
	require.NoError(t, err)
	assert.NotContains(t, out.String(), "STRIPE_WEBHOOK_TOLERANCE", "the worker's help lists the worker's variables only")
}

func TestReadBuild(t *testing.T) {
	t.Parallel()
	b := startup.ReadBuild()
	assert.Equal(t, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH, b.Go)
	assert.NotEmpty(t, b.Version)

	var out strings.Builder
	startup.Build{Version: "v1.2.0", Commit: "84069cc", Time: "2026-11-30T21:40:00Z", Modified: true, Go: "go1.26.8 linux/amd64"}.Write(&out, "web")
	assert.Equal(t, "web v1.2.0\ncommit: 84069cc (with uncommitted changes), 2026-11-30T21:40:00Z\ngo: go1.26.8 linux/amd64\n", out.String())
}
