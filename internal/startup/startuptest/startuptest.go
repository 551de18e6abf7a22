// Package startuptest holds the checks every daemon's run function must
// pass at start: --help and --version without configuration, a usage error
// for an unknown argument, and bad settings refused before anything opens.
// cmd/web, cmd/worker and cmd/scheduler call it from their tests.
package startuptest

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/startup"
)

// Run is a daemon's run function.
type Run func(ctx context.Context, args []string, env startup.Env, stdout io.Writer) error

// Help says what a daemon's --help must show: the first words of its
// description, variables it reads and variables it does not.
type Help struct {
	About    string
	Reads    []string
	NotReads []string
}

// HelpAndVersion checks that process answers --help and --version with a
// broken configuration, and that an unknown argument is a usage error.
func HelpAndVersion(t *testing.T, run Run, process string, help Help) {
	t.Helper()
	broken := startup.MapEnv(map[string]string{"DATABASE_URL": "mysql://nope"})
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{process, "--help"}, broken, &out))
	assert.Contains(t, out.String(), process+": "+help.About)
	assert.Contains(t, out.String(), "DATABASE_URL")
	for _, v := range help.Reads {
		assert.Contains(t, out.String(), v)
	}
	for _, v := range help.NotReads {
		assert.NotContains(t, out.String(), v)
	}

	out.Reset()
	require.NoError(t, run(context.Background(), []string{process, "--version"}, broken, &out))
	assert.Regexp(t, `^`+process+` \S+\ncommit: .+\ngo: go1\.`, out.String())

	err := run(context.Background(), []string{process, "start"}, broken, &out)
	require.Error(t, err)
	assert.Equal(t, 2, startup.ExitCode(err))
}

// RefusesBadSettings checks that settings which would refuse every webhook
// stop process before it opens anything, from the environment or from a
// .env file (the environment winning), and that a .env that cannot be read
// is named. base is what the process needs besides (for web, a secret).
func RefusesBadSettings(t *testing.T, run Run, process string, base map[string]string) {
	t.Helper()
	for name, value := range map[string]string{
		"STRIPE_WEBHOOK_TOLERANCE": "1e300",
		"RESEND_WEBHOOK_SECRET":    "whsec_not base64",
	} {
		env := map[string]string{name: value}
		for k, v := range base {
			env[k] = v
		}
		err := run(context.Background(), []string{process}, startup.MapEnv(env), io.Discard)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name+":")
	}

	dir := t.TempDir()
	file := "STRIPE_WEBHOOK_TOLERANCE=NaN\nLOG_LEVEL=loud\n"
	for k, v := range base {
		file += k + "=" + v + "\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(file), 0o600))
	real := map[string]string{"LOG_LEVEL": "info"}
	env := startup.Dotenv(dir, func(k string) (string, bool) { v, ok := real[k]; return v, ok })
	err := run(context.Background(), []string{process}, env, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "STRIPE_WEBHOOK_TOLERANCE:", "read from the file")
	assert.NotContains(t, err.Error(), "LOG_LEVEL", "the environment's value won")

	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, ".env"), []byte("PORT=\"8000\n"), 0o600))
	err = run(context.Background(), []string{process}, startup.Dotenv(bad, func(string) (string, bool) { return "", false }), io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(bad, ".env"))
}
