package compliance

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
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
	Notified int   // alerts whose emails were enqueued (opened now or owed from before)
	Emails   int   // emails enqueued
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
// the alerts of the newly overdue and returns the emails owed on the page.
// Those go to EnqueueWorkers goroutines shared by all pages, so the next
// pages' statements run while emails are enqueued; once the last email of a
// page is enqueued, its alerts are marked notified. The first error stops
// both: no new page or email starts, and Scan returns it (an email's error
// before a page's). An alert opened by a scan that stopped before its emails
// were all enqueued stays unnotified, so the next scan enqueues its emails;
// their keys keep every email single.
func (s *Service) Scan(ctx context.Context, accountID int64) (ScanResult, error) {
	now := s.now()
	cutoff := now.Add(-s.opt.Grace)
	var mu sync.Mutex
	var r ScanResult
	emails, ectx := errgroup.WithContext(ctx)
	emails.SetLimit(s.opt.EnqueueWorkers)
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
		page := &pageEmails{}
		opened := 0
		for _, n := range notices {
			if len(page.alertIDs) == 0 || page.alertIDs[len(page.alertIDs)-1] != n.AlertID {
				page.alertIDs = append(page.alertIDs, n.AlertID)
				if n.Opened {
					opened++
				}
			}
		}
		page.pending.Store(int64(len(notices)))
		mu.Lock()
		r.Resolved += resolved
		r.Opened += opened
		r.Notified += len(page.alertIDs)
		r.Emails += len(notices)
		mu.Unlock()
		for _, n := range notices {
			if err := ectx.Err(); err != nil {
				return err // an email failed: the page's alerts stay unnotified
			}
			job := emailJob{notice: n, page: page}
			emails.Go(func() error { return s.enqueueOverdue(ectx, job, now) })
		}
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
	if werr := pages.Wait(); werr != nil && err == nil {
		err = werr
	}
	if werr := emails.Wait(); werr != nil {
		err = werr
	}
	mu.Lock()
	defer mu.Unlock()
	return r, err
}

// pageEmails follows one page's emails through the shared enqueue goroutines.
type pageEmails struct {
	alertIDs []int64
	pending  atomic.Int64 // emails not enqueued yet
	failed   atomic.Bool  // an email failed: the alerts stay unnotified
}

// emailJob is one email of one page.
type emailJob struct {
	notice postgres.AlertNotice
	page   *pageEmails
}

// enqueueOverdue enqueues one overdue email; the page's last one marks the
// page's alerts notified, unless one of them failed.
func (s *Service) enqueueOverdue(ctx context.Context, job emailJob, now time.Time) error {
	n := job.notice
	key := "overdue/" + strconv.FormatInt(n.AlertID, 10) + "/" + strconv.FormatInt(n.UserID, 10)
	_, err := s.mailer.SendOverdueAlertEmail(ctx, n.Email, s.overdueData(n, now), key)
	if err != nil {
		err = fmt.Errorf("enqueue overdue email %s: %w", key, err)
		job.page.failed.Store(true)
	}
	// A failure is stored before its count goes down, so whichever email
	// brings the count to zero sees it.
	if job.page.pending.Add(-1) == 0 && !job.page.failed.Load() {
		if merr := s.store.MarkAlertsNotified(ctx, job.page.alertIDs, now); merr != nil {
			return merr
		}
	}
	return err
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
