package compliance

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/tasks"
)

// ScanResult counts what one overdue scan did.
type ScanResult struct {
	Resolved int64 // alerts resolved: equipment cleaned since, or deactivated
	Opened   int   // alerts opened
	Notified int   // alerts whose emails were staged (opened now or owed from before)
	Emails   int   // emails staged for batches
	Refused  int   // emails recorded failed for their address
}

// HandleOverdueScan is the cleaning:overdue_scan handler. It is idempotent:
// the active-alert uniqueness makes a second scan open nothing, and each
// email's key (overdue/<alert>/<user>) makes it go out once.
func (s *Service) HandleOverdueScan(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.OverdueScanPayload](t)
	if err != nil {
		return err
	}
	start := time.Now()
	r, err := s.Scan(ctx, p.AccountID)
	if err != nil {
		return err
	}
	// Every scan (every 15 minutes by default) also re-drives email batches
	// whose tasks Redis lost, weekly summaries included, and single emails
	// (welcome, payment failed) from their delivery rows.
	redriven, err := s.mailer.RedriveBatches(ctx, BatchRedriveAge)
	if err != nil {
		return err
	}
	single, err := s.mailer.RedriveEmails(ctx, s.opt.EmailRedriveAge)
	if err != nil {
		return err
	}
	if single.Enqueued > 0 {
		s.log.Warn("single emails re-driven from their delivery rows: Redis had lost their tasks",
			slog.Int("enqueued", single.Enqueued),
			slog.Int("present", single.Present))
	}
	if single.Legacy > 0 {
		s.log.Warn("queued single emails recorded without their data are left as they are: they cannot be re-driven",
			slog.Int("emails", single.Legacy))
	}
	s.log.Info("overdue scan done",
		slog.Int64("account_id", p.AccountID),
		slog.Int64("resolved", r.Resolved),
		slog.Int("opened", r.Opened),
		slog.Int("notified", r.Notified),
		slog.Int("emails", r.Emails),
		slog.Int("refused", r.Refused),
		slog.Int("email_batches_redriven", redriven),
		slog.Int("emails_redriven", single.Enqueued),
		slog.Duration("duration", time.Since(start)))
	return nil
}

// scanRange is a page of equipment ids, (after, through].
type scanRange struct{ after, through int64 }

// Scan walks the equipment (of accountID only, when it is not 0) in pages of
// ScanBatch ids, ScanWorkers pages at a time. For each page, one statement
// resolves the alerts of equipment cleaned or deactivated since, and one opens
// the alerts of the newly overdue and returns the emails owed on the page.
// Those are staged for Resend's batch API in one call (batches of up to 100,
// see email.Service.SendBatch), then the page's alerts are marked notified.
// A recipient whose address cannot be sent to gets a failed row of its own
// and does not hold the page back. The first error stops the scan: no new
// page starts, and Scan returns it. An alert whose page stopped before its
// emails were staged stays unnotified, so the next scan stages them; their
// keys keep every email single.
func (s *Service) Scan(ctx context.Context, accountID int64) (ScanResult, error) {
	now := s.now()
	cutoff := now.Add(-s.opt.Grace)
	var mu sync.Mutex
	var r ScanResult
	pages, pctx := errgroup.WithContext(ctx)
	pages.SetLimit(s.opt.ScanWorkers)
	scanPage := func(pg scanRange) error {
		resolved, err := s.store.ResolveOverdueAlerts(pctx, accountID, pg.after, pg.through, cutoff, now)
		if err != nil {
			return err
		}
		notices, err := s.store.OpenOverdueAlerts(pctx, accountID, pg.after, pg.through, cutoff, now)
		if err != nil {
			return err
		}
		var alertIDs []int64
		opened := 0
		items := make([]email.Item, 0, len(notices))
		for _, n := range notices {
			if len(alertIDs) == 0 || alertIDs[len(alertIDs)-1] != n.AlertID {
				alertIDs = append(alertIDs, n.AlertID)
				if n.Opened {
					opened++
				}
			}
			items = append(items, email.Item{To: n.Email, Key: OverdueKey(n.AlertID, n.UserID), Data: s.overdueData(n, now)})
		}
		mu.Lock()
		r.Resolved += resolved
		mu.Unlock()
		if len(items) == 0 {
			return nil
		}
		br, err := s.mailer.SendBatch(pctx, email.TemplateOverdueAlert, items)
		if err != nil {
			return fmt.Errorf("overdue emails of equipment %d to %d: %w", pg.after+1, pg.through, err)
		}
		if err := s.store.MarkAlertsNotified(pctx, alertIDs, now); err != nil {
			return err
		}
		mu.Lock()
		r.Opened += opened
		r.Notified += len(alertIDs)
		r.Emails += len(items)
		r.Refused += br.Refused
		mu.Unlock()
		return nil
	}
	var after int64
	var err error
	for pctx.Err() == nil {
		var hi int64
		hi, err = s.store.NextEquipmentBound(ctx, accountID, after, s.opt.ScanBatch)
		if err != nil || hi == 0 {
			break
		}
		pg := scanRange{after: after, through: hi}
		pages.Go(func() error { return scanPage(pg) })
		after = hi
	}
	if werr := pages.Wait(); werr != nil {
		err = werr
	}
	mu.Lock()
	defer mu.Unlock()
	return r, err
}

// OverdueKey is the idempotency key of the overdue email of one alert to one
// user: "overdue/<alert id>/<user id>".
func OverdueKey(alertID, userID int64) string {
	return "overdue/" + strconv.FormatInt(alertID, 10) + "/" + strconv.FormatInt(userID, 10)
}

// overdueData is the overdue-alert email's full context.
func (s *Service) overdueData(n postgres.AlertNotice, now time.Time) email.OverdueAlertData {
	d := email.OverdueAlertData{
		UserName:          email.DisplayName(n.FirstName, n.LastName),
		AccountName:       n.AccountName,
		EquipmentName:     n.EquipmentName,
		SerialNumber:      n.SerialNumber,
		LocationName:      n.LocationName,
		OverdueHours:      int(now.Sub(n.DueAt) / time.Hour),
		ProtocolName:      n.ProtocolName,
		ProtocolSteps:     []string(n.ProtocolSteps),
		EstimatedDuration: n.EstimatedDuration,
		RequiredChemicals: []string(n.RequiredChemicals),
		EquipmentURL:      s.opt.SiteURL + "/equipment/" + strconv.FormatInt(n.EquipmentID, 10),
		AlertID:           n.AlertID,
		Timestamp:         n.OpenedAt,
		Timezone:          n.Timezone,
	}
	if n.LastCleanedAt.Valid {
		t := n.LastCleanedAt.Time
		d.LastCleanedDate = &t
	}
	if d.OverdueHours < 0 {
		d.OverdueHours = 0
	}
	return d
}
