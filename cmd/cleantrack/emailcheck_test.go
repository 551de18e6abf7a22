package main

import (
	"encoding/json"
	"testing"

	"github.com/resend/resend-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/resendtest"
)

func emailCheckEnv(fake *resendtest.Server) map[string]string {
	return map[string]string{
		"RESEND_API_KEY": "re_full", "RESEND_BASE_URL": fake.URL(),
		"DEFAULT_FROM_EMAIL": "CleanTrack <alerts@mail.cleantrack.example>",
	}
}

func TestEmailCheckAllSetUp(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.PutDomain(resend.Domain{Id: "d_1", Name: "mail.cleantrack.example", Status: "verified",
		Records: []resend.Record{{Record: "SPF", Type: "MX", Name: "send", Value: "feedback-smtp.us-east-1.amazonses.com", Status: "verified"}}})
	fake.PutWebhook(resend.WebhookInList{Id: "wh_1", Status: "enabled", Endpoint: "https://app.cleantrack.example/webhooks/resend/",
		Events: []string{"email.sent", "email.bounced", "email.complained"}})
	out, _, err := cli(t, emailCheckEnv(fake), "email", "check")
	require.NoError(t, err, out)
	assert.Contains(t, out, "RESEND_API_KEY works at "+fake.URL())
	assert.Contains(t, out, "domain mail.cleantrack.example (of DEFAULT_FROM_EMAIL): verified")
	assert.Contains(t, out, "a webhook sends email.bounced and email.complained to /webhooks/resend/")
	assert.Contains(t, out, "email is set up")
	for _, r := range fake.Requests() {
		assert.Equal(t, "GET", r.Method, "email check only reads: %s", r.Path)
	}
	assert.Zero(t, fake.DeliveredCount())
}

func TestEmailCheckListsWhatIsWrong(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.PutDomain(resend.Domain{Id: "d_1", Name: "mail.cleantrack.example", Status: "pending", Records: []resend.Record{
		{Record: "SPF", Type: "TXT", Name: "send.mail", Value: "v=spf1 include:amazonses.com ~all", Status: "verified"},
		{Record: "DKIM", Type: "TXT", Name: "resend._domainkey.mail", Value: "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GN", Status: "not_started"},
	}})
	fake.PutWebhook(resend.WebhookInList{Id: "wh_1", Status: "enabled", Endpoint: "https://app.cleantrack.example/webhooks/resend/",
		Events: []string{"email.bounced"}})
	fake.PutWebhook(resend.WebhookInList{Id: "wh_2", Status: "disabled", Endpoint: "https://other.example/hooks",
		Events: []string{"email.bounced", "email.complained"}})
	out, _, err := cli(t, emailCheckEnv(fake), "email", "check")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), "2 things to do")
	assert.Contains(t, out, "domain mail.cleantrack.example (of DEFAULT_FROM_EMAIL): pending")
	assert.Contains(t, out, "resend._domainkey.mail")
	assert.NotContains(t, out, "v=spf1", "verified records are not listed")
	assert.Contains(t, out, "email.complained", "the webhook's missing event")
	assert.Contains(t, out, "add the DNS records above for mail.cleantrack.example")
	assert.Contains(t, out, "RESEND_WEBHOOK_SECRET")

	out, _, err = cli(t, emailCheckEnv(fake), "email", "check", "--json")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err), "--json keeps the exit status")
	var v emailCheckView
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.Equal(t, "mail.cleantrack.example", v.Domain)
	assert.Equal(t, "pending", v.DomainStatus)
	require.Len(t, v.FailingRecords, 1)
	assert.Equal(t, "resend._domainkey.mail", v.FailingRecords[0].Name)
	assert.False(t, v.WebhookReady)
	assert.Len(t, v.ToDo, 2)

	// A domain the account does not have at all.
	other := resendtest.New(t)
	out, _, err = cli(t, emailCheckEnv(other), "email", "check")
	require.Error(t, err)
	assert.Contains(t, out, "not in this Resend account")
}

func TestEmailCheckKeys(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.RequireAPIKey("re_full")
	env := emailCheckEnv(fake)
	env["RESEND_API_KEY"] = "re_wrong"
	_, _, err := cli(t, env, "email", "check")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.ErrorContains(t, err, "resend refused the API key")
	assert.ErrorContains(t, err, "set RESEND_API_KEY")

	fake.RestrictAPIKey("re_full")
	out, _, err := cli(t, emailCheckEnv(fake), "email", "check")
	require.Error(t, err)
	assert.Contains(t, out, "only for sending")
	assert.ErrorContains(t, err, "full-access key")

	out, _, err = cli(t, map[string]string{"EMAIL_OUTBOX_DIR": "/tmp/cleantrack-outbox"}, "email", "check")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, out, "RESEND_API_KEY is not set: no email is sent; the worker writes each one to the outbox (/tmp/cleantrack-outbox)")
	assert.ErrorContains(t, err, "set RESEND_API_KEY")
}
