// Package compliance is why CleanTrack exists: it finds equipment whose
// cleaning is overdue, opens an alert for it and tells the people who must act,
// and reports each account's compliance once a week. Its Asynq handlers work
// set-based through the store, page by page, so a million pieces of equipment
// cost neither a million statements nor a million rows in memory; emails are
// only staged and enqueued, through the email service, in batches for
// Resend's batch API.
package compliance

import (
	"context"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/tasks"
)

// Mailer sends CleanTrack's compliance emails; *email.Service is one.
// SendBatch stages a fan-out's emails of one template for Resend's batch API
// and enqueues their batches; each email's key makes it go out at most once,
// however often it is staged, and an address that cannot be sent to gets its
// own failed row without failing the call.
//
// RedriveBatches enqueues again the batches still queued after minAge,
// whose tasks Redis may have lost; RedriveEmails does the same for single
// emails (welcome, payment failed) from their delivery rows. The overdue
// scan's handler calls both.
type Mailer interface {
	SendBatch(ctx context.Context, template string, items []email.Item) (email.BatchResult, error)
	RedriveBatches(ctx context.Context, minAge time.Duration) (int, error)
	RedriveEmails(ctx context.Context, minAge time.Duration) (email.RedriveResult, error)
}

// BatchRedriveAge is how long a staged batch stays queued before the
// overdue scan's handler enqueues its task again.
const BatchRedriveAge = 15 * time.Minute

// DefaultEmailRedriveAge is how long a single email stays queued before the
// overdue scan's handler enqueues its email:send task again: well past the
// time a healthy queue takes to send it, so a re-drive finds a lost task,
// not a slow one (a task still in Redis is a duplicate anyway).
const DefaultEmailRedriveAge = 10 * time.Minute

// Defaults for Options left zero.
const (
	DefaultScanBatch      = 25000
	DefaultAccountPage    = 500
	DefaultEnqueueWorkers = 16
	DefaultScanWorkers    = 2
)

// Options tune the jobs; the zero value of each field takes its default.
type Options struct {
	// SiteURL prefixes links in emails (SITE_URL), without a trailing slash.
	SiteURL string
	// Grace delays "overdue" past the due time (OVERDUE_GRACE).
	Grace time.Duration
	// ScanBatch is how many pieces of equipment one scan statement covers.
	ScanBatch int
	// ScanWorkers is how many pages the scan works on at once, each on a
	// connection of its own.
	ScanWorkers int
	// AccountPage is how many accounts one weekly-summary statement covers.
	AccountPage int
	// EnqueueWorkers is how many accounts' weekly emails are prepared at
	// once.
	EnqueueWorkers int
	// EmailRedriveAge is how long a single email (welcome, payment failed)
	// stays queued before the overdue scan's handler enqueues it
	// again from its row (EMAIL_REDRIVE_MIN_AGE).
	EmailRedriveAge time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service runs the overdue scan and the weekly summaries. Build it with New.
type Service struct {
	store  *postgres.Store
	mailer Mailer
	log    *slog.Logger
	opt    Options
}

// New builds the compliance service; its emails go through mailer.
func New(store *postgres.Store, mailer Mailer, log *slog.Logger, opt Options) *Service {
	if opt.ScanBatch <= 0 {
		opt.ScanBatch = DefaultScanBatch
	}
	if opt.ScanWorkers <= 0 {
		opt.ScanWorkers = DefaultScanWorkers
	}
	if opt.AccountPage <= 0 {
		opt.AccountPage = DefaultAccountPage
	}
	if opt.EnqueueWorkers <= 0 {
		opt.EnqueueWorkers = DefaultEnqueueWorkers
	}
	if opt.EmailRedriveAge <= 0 {
		opt.EmailRedriveAge = DefaultEmailRedriveAge
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Service{store: store, mailer: mailer, log: log, opt: opt}
}

// Register adds the compliance handlers to mux: the overdue scan, the weekly
// fan-out and the per-account weekly summary.
func (s *Service) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(tasks.TypeOverdueScan, s.HandleOverdueScan)
	mux.HandleFunc(tasks.TypeWeeklySummary, s.HandleWeeklySummary)
	mux.HandleFunc(tasks.TypeWeeklySummaryAccount, s.HandleWeeklySummaryAccount)
}

func (s *Service) now() time.Time { return s.opt.Now().UTC().Truncate(time.Microsecond) }
