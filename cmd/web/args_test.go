package main

import (
	"testing"

	"github.com/cleantrack/jobs/internal/startup/startuptest"
)

func TestRunAnswersHelpAndVersionWithoutConfiguration(t *testing.T) {
	t.Parallel()
	startuptest.HelpAndVersion(t, run, "web", startuptest.Help{
		About: "CleanTrack's HTTP process.", Reads: []string{"ADMIN_ALLOWED_HOSTS"}, NotReads: []string{"WORKER_CONCURRENCY"},
	})
}

// Settings that would refuse every webhook, or a .env that cannot be read,
// stop the process before it opens anything.
func TestRunRefusesBadSettingsAtStart(t *testing.T) {
	t.Parallel()
	startuptest.RefusesBadSettings(t, run, "web", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"})
}
