package compliance

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/tasks"
)

// ScanResult counts what one overdue scan did.
type ScanResult struct {
	Resolved int64 // alerts resolved: equipment cleaned since, or deactivated
	Opened   int   // alerts opened
	Notified int   // alerts whose emails were enqueued (opened now or owed from before)
	Emails   int   // emails enqueued
}

// HandleOverdueScan is the cleaning:overdue_scan handler. It is idempotent:
// the active-alert uniqueness makes a second scan open nothing, and each
// email's key (overdue/<alert>/<user>) makes it go out once.
func (s *Service) HandleOverdueScan(ctx context.Context, t *asynq.Task) error {
	var p tasks.OverdueScanPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	start := time.Now()
	r, err := s.Scan(ctx, p.AccountID)
	if err != nil {
		return err
	}
	s.log.Info("overdue scan done",
		slog.Int64("account_id", p.AccountID),
		slog.Int64("resolved", r.Resolved),
		slog.Int("opened", r.Opened),
		slog.Int("notified", r.Notified),
		slog.Int("emails", r.Emails),
		slog.Duration("duration", time.Since(start)))
	return nil
}

// scanRange is a page of equipment ids, (after, through].
type scanRange struct{ after, through int64 }

// Scan walks the equipment (of accountID only, when it is not 0) in pages of
// ScanBatch ids, ScanWorkers pages at a time. For each page, one statement
// resolves the alerts of equipment cleaned or deactivated since, and one opens
// the alerts of the newly overdue and returns the emails owed on the page;
// those are enqueued, and then their alerts marked notified. An alert opened
// by a scan that stopped before enqueueing stays unnotified, so the next scan
// enqueues its emails; their keys keep every email single.
func (s *Service) Scan(ctx context.Context, accountID int64) (ScanResult, error) {
	now := s.now()
	cutoff := now.Add(-s.opt.Grace)
	var mu sync.Mutex
	var r ScanResult
	p := newPool(ctx, s.opt.ScanWorkers, func(ctx context.Context, pg scanRange) error {
		resolved, err := s.store.ResolveOverdueAlerts(ctx, accountID, pg.after, pg.through, cutoff, now)
		if err != nil {
			return err
		}
		notices, err := s.store.OpenOverdueAlerts(ctx, accountID, pg.after, pg.through, cutoff, now)
		if err != nil {
			return err
		}
		opened, alerts, err := s.notify(ctx, notices, now)
		mu.Lock()
		r.Resolved += resolved
		r.Opened += opened
		r.Notified += alerts
		r.Emails += len(notices)
		mu.Unlock()
		return err
	})
	var after int64
	var err error
	for {
		var hi int64
		hi, err = s.store.NextEquipmentBound(ctx, accountID, after, s.opt.ScanBatch)
		if err != nil || hi == 0 {
			break
		}
		if err = p.submit(scanRange{after: after, through: hi}); err != nil {
			break
		}
		after = hi
	}
	if werr := p.wait(); werr != nil {
		err = werr
	}
	mu.Lock()
	defer mu.Unlock()
	return r, err
}

// notify enqueues one page's owed emails, EnqueueWorkers at a time, then
// marks their alerts notified. It returns how many of the alerts the page
// opened and how many it notified.
func (s *Service) notify(ctx context.Context, notices []postgres.AlertNotice, now time.Time) (opened, alerts int, err error) {
	if len(notices) == 0 {
		return 0, 0, nil
	}
	var ids []int64
	p := newPool(ctx, s.opt.EnqueueWorkers, func(ctx context.Context, n postgres.AlertNotice) error {
		key := "overdue/" + strconv.FormatInt(n.AlertID, 10) + "/" + strconv.FormatInt(n.UserID, 10)
		if _, err := s.mailer.SendOverdueAlertEmail(ctx, n.Email, s.overdueData(n, now), key); err != nil {
			return fmt.Errorf("enqueue overdue email %s: %w", key, err)
		}
		return nil
	})
	for _, n := range notices {
		if len(ids) == 0 || ids[len(ids)-1] != n.AlertID {
			ids = append(ids, n.AlertID)
			if n.Opened {
				opened++
			}
		}
		if err = p.submit(n); err != nil {
			break
		}
	}
	if werr := p.wait(); werr != nil {
		return 0, 0, werr
	}
	if err != nil {
		return 0, 0, err
	}
	if err := s.store.MarkAlertsNotified(ctx, ids, now); err != nil {
		return 0, 0, err
	}
	return opened, len(ids), nil
}

// overdueData is the overdue-alert email's full context.
func (s *Service) overdueData(n postgres.AlertNotice, now time.Time) email.OverdueAlertData {
	d := email.OverdueAlertData{
		UserName:          userName(n.FirstName, n.LastName, n.Email),
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
