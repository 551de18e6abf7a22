package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/startup"
)

// cliIn runs the CLI as main does in dir: the environment real, completed
// from dir/.env.
func cliIn(t *testing.T, dir string, real map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := startup.Dotenv(dir, func(k string) (string, bool) { v, ok := real[k]; return v, ok })
	err = runEnv(context.Background(), append([]string{"cleantrack"}, args...), env, &out, &errb)
	return out.String(), errb.String(), err
}

func TestVersion(t *testing.T) {
	t.Parallel()
	// No configuration needed, even a broken one.
	broken := map[string]string{"DATABASE_URL": "mysql://nope"}
	out, _, err := cli(t, broken, "version")
	require.NoError(t, err)
	assert.Regexp(t, `^cleantrack \S+\ncommit: .+\ngo: `+runtime.Version()+` `, out)

	out, _, err = cli(t, broken, "version", "--json")
	require.NoError(t, err)
	var b startup.Build
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	assert.Equal(t, startup.ReadBuild(), b)

	out, _, err = cli(t, broken, "--version")
	require.NoError(t, err)
	assert.Equal(t, "cleantrack "+startup.ReadBuild().Version+"\n", out)

	_, _, err = cli(t, broken, "version", "extra")
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))
}

// With DATABASE_URL in .env (as the README tells Debian and macOS users to
// set it), the CLI uses that database; -v says where the configuration came
// from, on stderr only.
func TestCLIReadsDotenv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	url := pgtest.NewURL(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("DATABASE_URL="+url+"\nREDIS_URL=redis://127.0.0.1:1/0\n"), 0o600))

	out, errOut, err := cliIn(t, dir, nil, "-v", "migrate", "status")
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "applied", "the migrated test database, not the default one")
	assert.Equal(t, "cleantrack: configuration from the environment and "+filepath.Join(dir, ".env")+"\n", errOut)
	assert.NotContains(t, out, ".env")

	_, errOut, err = cliIn(t, dir, nil, "migrate", "status")
	require.NoError(t, err)
	assert.Empty(t, errOut, "without -v nothing is said")

	// The environment wins over the file.
	_, _, err = cliIn(t, dir, map[string]string{"DATABASE_URL": "mysql://from-env"}, "migrate", "status")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DATABASE_URL:")

	// Settings that would make the web process refuse every webhook are
	// refused here too, from the file as from the environment.
	tolerance := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(tolerance, ".env"), []byte("STRIPE_WEBHOOK_TOLERANCE=0\n"), 0o600))
	_, _, err = cliIn(t, tolerance, nil, "migrate", "status")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "STRIPE_WEBHOOK_TOLERANCE:")
	_, _, err = cliIn(t, t.TempDir(), map[string]string{"RESEND_WEBHOOK_SECRET": "whsec_???"}, "migrate", "status")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "RESEND_WEBHOOK_SECRET:")

	// A .env that cannot be parsed stops a command that reads the
	// configuration, and not --help.
	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, ".env"), []byte("DATABASE_URL=\"unterminated\n"), 0o600))
	_, _, err = cliIn(t, bad, nil, "migrate", "status")
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(bad, ".env"))
	out, _, err = cliIn(t, bad, nil, "migrate", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "status")
}
