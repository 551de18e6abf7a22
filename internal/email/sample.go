package email

import (
	"encoding/json"
	"fmt"
	"time"
)

// SampleData returns realistic data for template name, the context the
// reference document uses for its previews. The CLI's preview and send-test
// start from it; siteURL prefixes every link.
func SampleData(name, siteURL string) (Data, error) {
	tz := "America/New_York"
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	lastCleaned := at("2025-01-15T19:00:00Z")
	nextAttempt := at("2025-02-01T15:00:00Z")
	switch name {
	case TemplateWelcome:
		return WelcomeData{
			UserName:            "John Doe",
			AccountName:         "Demo Hospital",
			PlanName:            "Trial",
			SubscriptionEndDate: at("2025-01-31T23:00:00Z"),
			MaxLocations:        5,
			MaxUsers:            10,
			DashboardURL:        siteURL + "/dashboard/",
			HelpURL:             siteURL + "/help/",
			Timezone:            tz,
		}, nil
	case TemplateOverdueAlert:
		return OverdueAlertData{
			UserName:          "John Doe",
			AccountName:       "Demo Hospital",
			EquipmentName:     "GE Ultrasound Unit 1",
			SerialNumber:      "US-001",
			LocationName:      "Main Building",
			LastCleanedDate:   &lastCleaned,
			OverdueHours:      8,
			ProtocolName:      "Standard Ultrasound Cleaning",
			ProtocolSteps:     []string{"Power off the equipment", "Disconnect transducer", "Apply disinfectant spray"},
			EstimatedDuration: 15,
			RequiredChemicals: []string{"EPA-approved disinfectant"},
			EquipmentURL:      siteURL + "/equipment/1/",
			AlertID:           12345,
			Timestamp:         at("2025-01-20T15:30:00Z"),
			Timezone:          tz,
		}, nil
	case TemplatePaymentFailed:
		return PaymentFailedData{
			UserName:     "John Doe",
			AccountName:  "Demo Hospital",
			AmountDue:    5000,
			Currency:     "usd",
			NextAttempt:  &nextAttempt,
			InvoiceURL:   "https://invoice.stripe.com/i/acct_demo/test_invoice",
			AttemptCount: 1,
			DashboardURL: siteURL + "/dashboard/billing/",
			Timezone:     tz,
		}, nil
	case TemplateWeeklySummary:
		return WeeklySummaryData{
			UserName:           "John Doe",
			AccountName:        "Demo Hospital",
			StartDate:          at("2025-01-13T05:00:00Z"),
			EndDate:            at("2025-01-20T05:00:00Z"),
			TotalEquipment:     45,
			CleaningsCompleted: 387,
			ActiveAlerts:       2,
			ComplianceRate:     92.4,
			TopLocations: []LocationSummary{
				{Name: "Main Building", Cleanings: 150, ComplianceRate: 95},
				{Name: "ICU Wing", Cleanings: 120, ComplianceRate: 89},
			},
			Alerts: []AlertSummary{
				{EquipmentName: "GE Ultrasound Unit 1", LocationName: "Main Building", HoursOverdue: 8},
				{EquipmentName: "Infusion Pump 7", LocationName: "ICU Wing", HoursOverdue: 1},
			},
			DashboardURL: siteURL + "/dashboard/compliance/",
			Timezone:     tz,
		}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownTemplate, name)
}

// OverlayData decodes raw JSON over base (a template's data struct): fields
// present in raw replace base's, others keep their sample values. Unknown
// fields are an error, so a typo in a preview file is caught.
func OverlayData(name string, base Data, raw []byte) (Data, error) {
	b, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	merged := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &merged); err != nil {
		return nil, err
	}
	over := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &over); err != nil {
		return nil, fmt.Errorf("decode %s data: %w", name, err)
	}
	for k, v := range over {
		merged[k] = v
	}
	b, err = json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	return decodeData(name, b, true)
}
