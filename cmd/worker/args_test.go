package main

import (
	"testing"

	"github.com/cleantrack/jobs/internal/startup/startuptest"
)

func TestRunAnswersHelpAndVersionWithoutConfiguration(t *testing.T) {
	t.Parallel()
	startuptest.HelpAndVersion(t, run, "worker", startuptest.Help{
		About: "CleanTrack's Asynq worker.", Reads: []string{"WORKER_CONCURRENCY"}, NotReads: []string{"ADMIN_ALLOWED_HOSTS"},
	})
}

// Settings that would refuse every webhook, or a .env that cannot be read,
// stop the process before it opens anything.
func TestRunRefusesBadSettingsAtStart(t *testing.T) {
	t.Parallel()
	startuptest.RefusesBadSettings(t, run, "worker", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"})
}
