package email

import (
	"fmt"
	"strings"
)

// missing collects the JSON names of required fields that are empty, so a
// render fails with a message naming every one of them at once.
type missing []string

func (m *missing) check(ok bool, name string) {
	if !ok {
		*m = append(*m, name)
	}
}

func (m missing) err(template, tz string) error {
	if len(m) > 0 {
		return fmt.Errorf("%s: missing required field(s) %s", template, strings.Join(m, ", "))
	}
	if _, err := location(tz); err != nil {
		return fmt.Errorf("%s: %w", template, err)
	}
	return nil
}

// Validate reports the required fields that are empty: account_name,
// plan_name, subscription_end_date, dashboard_url, help_url (and a known
// timezone when one is given).
func (d WelcomeData) Validate() error {
	var m missing
	m.check(d.AccountName != "", "account_name")
	m.check(d.PlanName != "", "plan_name")
	m.check(!d.SubscriptionEndDate.IsZero(), "subscription_end_date")
	m.check(d.DashboardURL != "", "dashboard_url")
	m.check(d.HelpURL != "", "help_url")
	return m.err(TemplateWelcome, d.Timezone)
}

// Validate reports the required fields that are empty: account_name,
// equipment_name, location_name, equipment_url, alert_id, timestamp.
func (d OverdueAlertData) Validate() error {
	var m missing
	m.check(d.AccountName != "", "account_name")
	m.check(d.EquipmentName != "", "equipment_name")
	m.check(d.LocationName != "", "location_name")
	m.check(d.EquipmentURL != "", "equipment_url")
	m.check(d.AlertID != 0, "alert_id")
	m.check(!d.Timestamp.IsZero(), "timestamp")
	return m.err(TemplateOverdueAlert, d.Timezone)
}

// Validate reports the required fields that are empty: account_name,
// amount_due, currency, invoice_url (the link to pay).
func (d PaymentFailedData) Validate() error {
	var m missing
	m.check(d.AccountName != "", "account_name")
	m.check(d.AmountDue > 0, "amount_due")
	m.check(len(strings.TrimSpace(d.Currency)) == 3, "currency")
	m.check(d.InvoiceURL != "", "invoice_url")
	return m.err(TemplatePaymentFailed, d.Timezone)
}

// Validate reports the required fields that are empty: account_name,
// start_date, end_date, dashboard_url.
func (d WeeklySummaryData) Validate() error {
	var m missing
	m.check(d.AccountName != "", "account_name")
	m.check(!d.StartDate.IsZero(), "start_date")
	m.check(!d.EndDate.IsZero(), "end_date")
	m.check(d.DashboardURL != "", "dashboard_url")
	if err := m.err(TemplateWeeklySummary, d.Timezone); err != nil {
		return err
	}
	if !d.EndDate.After(d.StartDate) {
		return fmt.Errorf("%s: end_date is not after start_date", TemplateWeeklySummary)
	}
	return nil
}
