package email

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testSite = "https://cleantrack.example"

func sample(t *testing.T, name string) Data {
	t.Helper()
	d, err := SampleData(name, testSite)
	require.NoError(t, err)
	return d
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	r, err := NewRenderer()
	require.NoError(t, err)

	neverCleaned := sample(t, TemplateOverdueAlert).(OverdueAlertData)
	neverCleaned.LastCleanedDate = nil
	neverCleaned.ProtocolName, neverCleaned.ProtocolSteps, neverCleaned.RequiredChemicals = "", nil, nil
	neverCleaned.SerialNumber = ""
	neverCleaned.OverdueHours = 1
	neverCleaned.UserName = ""
	neverCleaned.Timezone = "Europe/Berlin"

	yen := sample(t, TemplatePaymentFailed).(PaymentFailedData)
	yen.AmountDue, yen.Currency, yen.NextAttempt, yen.AttemptCount = 5000, "JPY", nil, 4
	yen.DashboardURL = ""
	yen.Timezone = "Asia/Tokyo"

	calm := sample(t, TemplateWeeklySummary).(WeeklySummaryData)
	calm.Alerts, calm.ActiveAlerts, calm.TopLocations = nil, 0, nil
	calm.ComplianceRate = 100

	tests := []struct {
		golden   string
		template string
		data     Data
	}{
		{"welcome", TemplateWelcome, sample(t, TemplateWelcome)},
		{"cleaning_overdue_alert", TemplateOverdueAlert, sample(t, TemplateOverdueAlert)},
		{"cleaning_overdue_alert_never_cleaned", TemplateOverdueAlert, neverCleaned},
		{"payment_failed", TemplatePaymentFailed, sample(t, TemplatePaymentFailed)},
		{"payment_failed_jpy_last_attempt", TemplatePaymentFailed, yen},
		{"weekly_compliance_summary", TemplateWeeklySummary, sample(t, TemplateWeeklySummary)},
		{"weekly_compliance_summary_no_alerts", TemplateWeeklySummary, calm},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			m, err := r.Render(tt.template, tt.data)
			require.NoError(t, err)
			assertGolden(t, tt.golden+".html", m.HTML)
			assertGolden(t, tt.golden+".txt", "Subject: "+m.Subject+"\n\n"+m.Text)
			assert.NotContains(t, strings.ToLower(m.HTML), "<script")
			assert.NotContains(t, m.HTML, "ZgotmplZ", "a value was refused by the HTML escaper")
			assert.NotContains(t, m.Text, "<no value>")
		})
	}
}

func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing; run go test ./internal/email -run TestRenderGolden -update")
	assert.Equal(t, string(want), got, "%s differs from the golden file (rerun with -update after checking the change)", name)
}

func TestRenderWelcome(t *testing.T) {
	t.Parallel()
	r, err := NewRenderer()
	require.NoError(t, err)
	m, err := r.Render(TemplateWelcome, sample(t, TemplateWelcome))
	require.NoError(t, err)
	assert.Contains(t, m.Subject, "Welcome to CleanTrack")
	for _, body := range []string{m.Text, m.HTML} {
		assert.Contains(t, body, "John Doe")
		assert.Contains(t, body, "Demo Hospital")
		// 23:00 UTC on January 31 is still January 31 in New York.
		assert.Contains(t, body, "January 31, 2025")
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	t.Parallel()
	r, err := NewRenderer()
	require.NoError(t, err)
	d := sample(t, TemplateWelcome).(WelcomeData)
	d.AccountName = `<script>alert("x")</script> & Co`
	d.DashboardURL = "javascript:alert(1)"
	m, err := r.Render(TemplateWelcome, d)
	require.NoError(t, err)
	assert.NotContains(t, m.HTML, "<script>")
	assert.Contains(t, m.HTML, "&lt;script&gt;")
	assert.NotContains(t, m.HTML, "javascript:")
	assert.Contains(t, m.Subject, `<script>alert("x")</script> & Co`, "the subject is plain text, not HTML")
}

func TestRenderMissingRequiredField(t *testing.T) {
	t.Parallel()
	r, err := NewRenderer()
	require.NoError(t, err)
	welcome := sample(t, TemplateWelcome).(WelcomeData)
	welcome.PlanName = ""
	welcome.SubscriptionEndDate = time.Time{}
	alert := sample(t, TemplateOverdueAlert).(OverdueAlertData)
	alert.EquipmentURL = ""
	pay := sample(t, TemplatePaymentFailed).(PaymentFailedData)
	pay.InvoiceURL = ""
	weekly := sample(t, TemplateWeeklySummary).(WeeklySummaryData)
	weekly.AccountName = ""
	badZone := sample(t, TemplateWelcome).(WelcomeData)
	badZone.Timezone = "Mars/Olympus"

	tests := []struct {
		name     string
		template string
		data     Data
		want     string
	}{
		{"welcome", TemplateWelcome, welcome, "missing required field(s) plan_name, subscription_end_date"},
		{"overdue", TemplateOverdueAlert, alert, "equipment_url"},
		{"payment", TemplatePaymentFailed, pay, "invoice_url"},
		{"weekly", TemplateWeeklySummary, weekly, "account_name"},
		{"zone", TemplateWelcome, badZone, `timezone "Mars/Olympus"`},
		{"wrong type", TemplateWelcome, pay, "data is email.PaymentFailedData"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Render(tt.template, tt.data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err = r.Render("nope", welcome)
	assert.ErrorIs(t, err, ErrUnknownTemplate)
}

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		minor    int64
		currency string
		want     string
	}{
		{5000, "usd", "$50.00"},
		{123456789, "USD", "$1,234,567.89"},
		{5, "eur", "€0.05"},
		{99900, "gbp", "£999.00"},
		{5000, "jpy", "¥5,000"},
		{1234567, "KRW", "₩1,234,567"},
		{12345, "kwd", "12.345 KWD"},
		{250000, "chf", "2,500.00 CHF"},
		{-1999, "usd", "-$19.99"},
	}
	for _, tt := range tests {
		t.Run(tt.currency, func(t *testing.T) {
			assert.Equal(t, tt.want, FormatMoney(tt.minor, tt.currency))
		})
	}
}

func TestFormatDateUsesAccountZone(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 2, 30, 0, 0, time.UTC)
	tests := []struct {
		tz, date, dateTime string
	}{
		{"", "March 1, 2025", "March 1, 2025 at 2:30 AM UTC"},
		{"America/Los_Angeles", "February 28, 2025", "February 28, 2025 at 6:30 PM PST"},
		{"Asia/Tokyo", "March 1, 2025", "March 1, 2025 at 11:30 AM JST"},
	}
	for _, tt := range tests {
		t.Run(tt.tz, func(t *testing.T) {
			d, err := FormatDate(at, tt.tz)
			require.NoError(t, err)
			assert.Equal(t, tt.date, d)
			dt, err := FormatDateTime(at, tt.tz)
			require.NoError(t, err)
			assert.Equal(t, tt.dateTime, dt)
		})
	}
}

func TestOverlayData(t *testing.T) {
	t.Parallel()
	d, err := OverlayData(TemplateWelcome, sample(t, TemplateWelcome), []byte(`{"account_name":"Harbor Clinic","max_users":25}`))
	require.NoError(t, err)
	w := d.(WelcomeData)
	assert.Equal(t, "Harbor Clinic", w.AccountName)
	assert.Equal(t, 25, w.MaxUsers)
	assert.Equal(t, "Trial", w.PlanName, "fields not in the file keep their sample values")

	_, err = OverlayData(TemplateWelcome, sample(t, TemplateWelcome), []byte(`{"acount_name":"typo"}`))
	assert.ErrorContains(t, err, "acount_name")
}
