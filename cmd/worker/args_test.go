package main

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

func TestRunAnswersHelpAndVersionWithoutConfiguration(t *testing.T) {
	t.Parallel()
	broken := startup.MapEnv(map[string]string{"DATABASE_URL": "mysql://nope"})
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"worker", "--help"}, broken, &out))
	assert.Contains(t, out.String(), "worker: CleanTrack's Asynq worker.")
	assert.Contains(t, out.String(), "DATABASE_URL")
	assert.Contains(t, out.String(), "WORKER_CONCURRENCY")
	assert.NotContains(t, out.String(), "ADMIN_ALLOWED_HOSTS")

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"worker", "--version"}, broken, &out))
	assert.Regexp(t, `^worker \S+\ncommit: .+\ngo: go1\.`, out.String())

	err := run(context.Background(), []string{"worker", "start"}, broken, &out)
	require.Error(t, err)
	assert.Equal(t, 2, startup.ExitCode(err))
}

// Settings that would refuse every webhook stop the process before it opens
// anything, whether they come from the environment or from a .env file.
func TestRunRefusesBadSettingsAtStart(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"STRIPE_WEBHOOK_TOLERANCE": "0",
		"RESEND_WEBHOOK_SECRET":    "whsec_not base64",
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{name: value, "STRIPE_WEBHOOK_SECRET": "whsec_x"}
			err := run(context.Background(), []string{"worker"}, startup.MapEnv(env), io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), name+":")
		})
	}

	t.Run("from .env, the environment winning", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"),
			[]byte("STRIPE_WEBHOOK_SECRET=whsec_x\nSTRIPE_WEBHOOK_TOLERANCE=NaN\nLOG_LEVEL=loud\n"), 0o600))
		real := map[string]string{"LOG_LEVEL": "info"}
		env := startup.Dotenv(dir, func(k string) (string, bool) { v, ok := real[k]; return v, ok })
		err := run(context.Background(), []string{"worker"}, env, io.Discard)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "STRIPE_WEBHOOK_TOLERANCE:", "read from the file")
		assert.NotContains(t, err.Error(), "LOG_LEVEL", "the environment's value won")
	})
}
