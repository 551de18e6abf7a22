package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/resendtest"
)

func TestEmailPreview(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SITE_URL": "https://app.cleantrack.example"}
	for _, name := range email.Templates() {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := cli(t, env, "email", "preview", name)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(out, "<!DOCTYPE html>"), out[:min(len(out), 80)])
			assert.Contains(t, out, "https://app.cleantrack.example/")
			assert.Contains(t, errOut, "Subject: ")

			text, _, err := cli(t, env, "email", "preview", name, "--text")
			require.NoError(t, err)
			assert.NotContains(t, text, "<")
			assert.Contains(t, text, "John Doe")
		})
	}

	out, errOut, err := cli(t, env, "email", "preview", "welcome")
	require.NoError(t, err)
	assert.Contains(t, errOut, "Welcome to CleanTrack")
	assert.Contains(t, out, "Demo Hospital")

	dataFile := filepath.Join(t.TempDir(), "data.json")
	require.NoError(t, os.WriteFile(dataFile, []byte(`{"account_name":"Harbor Clinic","user_name":"Ada Lovelace"}`), 0o644))
	out, _, err = cli(t, env, "email", "preview", "emails/welcome.html", "--text", "--data", dataFile)
	require.NoError(t, err)
	assert.Contains(t, out, "Hello Ada Lovelace,")
	assert.Contains(t, out, "Harbor Clinic")

	require.NoError(t, os.WriteFile(dataFile, []byte(`{"plan_name":""}`), 0o644))
	_, _, err = cli(t, env, "email", "preview", "welcome", "--data", dataFile)
	assert.ErrorContains(t, err, "plan_name", "a missing required field fails the preview too")

	_, _, err = cli(t, env, "email", "preview", "nope")
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))
	assert.Contains(t, err.Error(), "cleaning_overdue_alert")
}

func TestEmailSendTestOutbox(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.NewStore(t)
	outbox := t.TempDir()
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redistest.NewURL(t), "EMAIL_OUTBOX_DIR": outbox}

	out, _, err := cli(t, env, "email", "send-test", "--to", "me@example.com", "--template", "payment_failed")
	require.NoError(t, err)
	assert.Contains(t, out, "no RESEND_API_KEY: wrote payment_failed for me@example.com to the outbox")
	files, err := filepath.Glob(filepath.Join(outbox, "*_send-test_payment_failed_"+email.RecipientTag("me@example.com")+"_*"))
	require.NoError(t, err)
	assert.Len(t, files, 2, "an .html and a .txt")

	out, _, err = cli(t, env, "email", "deliveries", "--status", "outbox")
	require.NoError(t, err)
	assert.Contains(t, out, "send-test/payment_failed/"+email.RecipientTag("me@example.com")+"/")

	out, _, err = cli(t, env, "email", "deliveries", "--json")
	require.NoError(t, err)
	var ds []deliveryView
	require.NoError(t, json.Unmarshal([]byte(out), &ds), out)
	require.Len(t, ds, 1)
	assert.Equal(t, "outbox", ds[0].Status)
	assert.Equal(t, "me@example.com", ds[0].To)
	assert.Equal(t, time.UTC, ds[0].CreatedAt.Location())

	_, _, err = cli(t, env, "email", "send-test")
	assert.Equal(t, 2, exitCode(err))
}

// --to with a CR/LF once wrote a Bcc: line into the outbox file; it is a
// usage error now, and nothing is written.
func TestEmailSendTestRefusesCRLF(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.NewStore(t)
	outbox := t.TempDir()
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redistest.NewURL(t), "EMAIL_OUTBOX_DIR": outbox}
	for _, to := range []string{"me@example.com\r\nBcc: victim@example.com", "me@example.com\nBcc: victim@example.com", "Me <me@example.com>"} {
		_, _, err := cli(t, env, "email", "send-test", "--to", to)
		require.Error(t, err, "%q", to)
		assert.Equal(t, 2, exitCode(err), "%q", to)
		assert.ErrorContains(t, err, "--to: invalid email address")
	}
	files, err := filepath.Glob(filepath.Join(outbox, "*"))
	require.NoError(t, err)
	assert.Empty(t, files)

	// The longest valid address works, with a key Resend accepts.
	long := strings.Repeat("l", 64) + "@" + strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 57) + ".com"
	require.Len(t, long, 254)
	out, _, err := cli(t, env, "email", "send-test", "--to", long)
	require.NoError(t, err)
	assert.Contains(t, out, "wrote welcome for "+long)

	_, _, err = cli(t, env, "email", "suppress", "x@example.com\r\n")
	assert.Equal(t, 2, exitCode(err))
}

func TestEmailSendTestResendAndSuppression(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	_, dbURL := pgtest.NewStore(t)
	env := map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": redistest.NewURL(t),
		"RESEND_API_KEY": "re_test", "RESEND_BASE_URL": fake.URL(),
	}

	out, _, err := cli(t, env, "email", "send-test", "--to", "me@example.com")
	require.NoError(t, err)
	assert.Contains(t, out, "sent welcome to me@example.com")
	delivered := fake.Delivered()
	require.Len(t, delivered, 1)
	assert.Contains(t, out, "resend id "+delivered[0].ID)
	assert.Equal(t, []string{"me@example.com"}, delivered[0].To)
	assert.True(t, strings.HasPrefix(delivered[0].Key, "send-test/welcome/"+email.RecipientTag("me@example.com")+"/"), delivered[0].Key)

	out, _, err = cli(t, env, "email", "suppress", "Me@Example.com", "--reason", "asked to stop")
	require.NoError(t, err)
	assert.Contains(t, out, "asked to stop")
	_, _, err = cli(t, env, "email", "send-test", "--to", "me@example.com")
	assert.ErrorContains(t, err, "suppression list")
	assert.Equal(t, 1, fake.RequestCount(), "no call for a suppressed address")

	out, _, err = cli(t, env, "email", "unsuppress", "me@example.com")
	require.NoError(t, err)
	assert.Contains(t, out, "removed me@example.com")
	out, _, err = cli(t, env, "email", "unsuppress", "me@example.com")
	require.NoError(t, err)
	assert.Contains(t, out, "was not on the suppression list")
	_, _, err = cli(t, env, "email", "send-test", "--to", "me@example.com")
	require.NoError(t, err)
	assert.Equal(t, 2, fake.DeliveredCount())

	out, _, err = cli(t, env, "email", "deliveries")
	require.NoError(t, err)
	assert.Contains(t, out, "suppressed")
	assert.Contains(t, out, "sent")
}
