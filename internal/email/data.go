// Package email renders CleanTrack's emails from templates and delivers them
// through Resend exactly once per logical email. Its Service only enqueues
// email:send tasks, so any domain may call it; the Sender handler does the
// sending in the worker.
package email

import (
	"strings"
	"time"
)

// Template names, as files under templates/emails/ (without extension).
const (
	TemplateWelcome       = "welcome"
	TemplateOverdueAlert  = "cleaning_overdue_alert"
	TemplatePaymentFailed = "payment_failed"
	TemplateWeeklySummary = "weekly_compliance_summary"
)

// DisplayName is the name an email greets a person by (the UserName of every
// template's data): first and last name, or whichever of them exists, and ""
// when there is none, so the template says "Hello," rather than greeting an
// email address.
func DisplayName(first, last string) string {
	return strings.TrimSpace(strings.TrimSpace(first) + " " + strings.TrimSpace(last))
}

// WelcomeData is the context of the welcome email, sent on a subscription's
// first customer.subscription.created.
type WelcomeData struct {
	UserName            string    `json:"user_name"`
	AccountName         string    `json:"account_name"`
	PlanName            string    `json:"plan_name"`
	SubscriptionEndDate time.Time `json:"subscription_end_date"`
	MaxLocations        int       `json:"max_locations"`
	MaxUsers            int       `json:"max_users"`
	DashboardURL        string    `json:"dashboard_url"`
	HelpURL             string    `json:"help_url"`
	Timezone            string    `json:"timezone"` // the account's IANA zone; dates render in it
}

// OverdueAlertData is the context of the overdue-cleaning alert.
type OverdueAlertData struct {
	UserName          string     `json:"user_name"`
	AccountName       string     `json:"account_name"`
	EquipmentName     string     `json:"equipment_name"`
	SerialNumber      string     `json:"serial_number"`
	LocationName      string     `json:"location_name"`
	LastCleanedDate   *time.Time `json:"last_cleaned_date"` // nil: never cleaned
	OverdueHours      int        `json:"overdue_hours"`
	ProtocolName      string     `json:"protocol_name"` // empty when no protocol is set
	ProtocolSteps     []string   `json:"protocol_steps"`
	EstimatedDuration int        `json:"estimated_duration"` // minutes
	RequiredChemicals []string   `json:"required_chemicals"`
	EquipmentURL      string     `json:"equipment_url"`
	AlertID           int64      `json:"alert_id"`
	Timestamp         time.Time  `json:"timestamp"` // when the alert opened
	Timezone          string     `json:"timezone"`
}

// PaymentFailedData is the context of the payment-failed email. AmountDue is
// in the currency's minor unit, as Stripe sends it.
type PaymentFailedData struct {
	UserName     string     `json:"user_name"`
	AccountName  string     `json:"account_name"`
	AmountDue    int64      `json:"amount_due"`
	Currency     string     `json:"currency"` // ISO 4217, any case
	NextAttempt  *time.Time `json:"next_attempt"`
	InvoiceURL   string     `json:"invoice_url"` // Stripe's hosted invoice page: the link to pay
	AttemptCount int        `json:"attempt_count"`
	DashboardURL string     `json:"dashboard_url"`
	Timezone     string     `json:"timezone"`
}

// WeeklySummaryData is the context of the weekly compliance summary.
type WeeklySummaryData struct {
	UserName           string            `json:"user_name"`
	AccountName        string            `json:"account_name"`
	StartDate          time.Time         `json:"start_date"` // first instant of the period (Monday 00:00 in Timezone)
	EndDate            time.Time         `json:"end_date"`   // end of the period, exclusive (the next Monday 00:00); the email shows the day before as the last day
	TotalEquipment     int               `json:"total_equipment"`
	CleaningsCompleted int               `json:"cleanings_completed"`
	ActiveAlerts       int               `json:"active_alerts"`
	ComplianceRate     float64           `json:"compliance_rate"` // percent, one decimal
	TopLocations       []LocationSummary `json:"top_locations"`
	Alerts             []AlertSummary    `json:"alerts"`
	DashboardURL       string            `json:"dashboard_url"`
	Timezone           string            `json:"timezone"`
}

// LocationSummary is one row of a weekly summary's top locations.
type LocationSummary struct {
	Name           string  `json:"name"`
	Cleanings      int     `json:"cleanings"`
	ComplianceRate float64 `json:"compliance_rate"`
}

// AlertSummary is one active alert listed in a weekly summary.
type AlertSummary struct {
	EquipmentName string `json:"equipment_name"`
	LocationName  string `json:"location_name"`
	HoursOverdue  int    `json:"hours_overdue"`
}
