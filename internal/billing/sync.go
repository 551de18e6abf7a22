package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/inbox"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/stripeapi"
	"github.com/cleantrack/jobs/tasks"
)

// Catch-up windows. Stripe's List Events API returns the last 30 days only.
const (
	SyncMaxAge = 30 * 24 * time.Hour
	// SyncFirstLookback is how far back the first scheduled sync looks.
	SyncFirstLookback = 72 * time.Hour
	// SyncOverlap is how far before the last complete sync's mark the next
	// scheduled one starts: an event may become visible in the list a little
	// after its created time.
	SyncOverlap = time.Hour
	// syncMark names the scheduled sync's mark in stripe_sync_state.
	syncMark = "events"
	// syncPageSize is the largest page Stripe serves.
	syncPageSize = 100
	// syncMaxPages bounds one run: a million events.
	syncMaxPages = 10_000
)

// ErrSyncTooOld refuses a window Stripe no longer has.
var ErrSyncTooOld = errors.New("the Stripe API keeps events for 30 days only")

// SyncOptions are what one catch-up run covers.
type SyncOptions struct {
	// Since is the oldest created time listed; at most SyncMaxAge ago.
	Since time.Time
	// DryRun lists and compares with the inbox, and records nothing.
	DryRun bool
	// Progress, when set, is told of each page as it is read (a wait on a
	// rate limit is the client's OnRetry).
	Progress func(msg string)
	// PageSize is the events asked for per page; 100 (Stripe's most) when
	// zero.
	PageSize int
}

// SyncRefusal is a listed event the intake would not record, and why.
type SyncRefusal struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Reason  string `json:"reason"`
}

// SyncResult counts what one run did. Listed = AlreadyInInbox + Recorded +
// len(Refused) (+ Missing in a dry run, which records nothing).
type SyncResult struct {
	Since time.Time `json:"since"`
	// Reached is when the listing began: every event created before it was
	// listed, once the run completed.
	Reached        time.Time     `json:"reached"`
	DryRun         bool          `json:"dry_run"`
	Pages          int           `json:"pages"`
	Listed         int           `json:"listed"`
	AlreadyInInbox int           `json:"already_in_inbox"`
	Recorded       int           `json:"recorded"`
	Missing        int           `json:"missing"` // dry run: would be recorded
	Refused        []SyncRefusal `json:"refused"`
}

// Syncer catches up on Stripe events the webhook never delivered: it lists
// GET /v1/events for the types the worker applies and records the missing
// ones through the webhook's own intake (inbox.Intake.Accept: the same
// checks, the same enqueue, the same dedup), with source "sync".
type Syncer struct {
	API   *stripeapi.Client
	Store *postgres.Store
	Queue queue.Enqueuer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run lists every event of the six types created since opts.Since, oldest
// first, every page, and records those not yet in the inbox. Stripe lists
// newest first; to walk oldest first the run anchors on the newest event
// created before Since and pages forward with ending_before. When no such
// event exists (a new account, or Since at the edge of the 30 days) it
// reads the window newest first and records it in reverse.
//
// It stops at the first failure to reach Stripe, PostgreSQL or Redis, with
// the counts so far; events recorded by then stay recorded.
func (s *Syncer) Run(ctx context.Context, opts SyncOptions) (SyncResult, error) {
	now := s.now()
	// To the second, as shown (and an earlier mark only overlaps more).
	res := SyncResult{Since: opts.Since.UTC().Truncate(time.Second), Reached: now.UTC().Truncate(time.Second),
		DryRun: opts.DryRun, Refused: []SyncRefusal{}}
	if now.Sub(opts.Since) > SyncMaxAge {
		return res, fmt.Errorf("cannot list events since %s: %w", opts.Since.UTC().Format(time.RFC3339), ErrSyncTooOld)
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	size := opts.PageSize
	if size <= 0 || size > syncPageSize {
		size = syncPageSize
	}
	types := tasks.StripeEventTypes
	anchor, err := s.API.ListEvents(ctx, stripeapi.EventQuery{Types: types, CreatedLT: opts.Since, Limit: 1})
	if err != nil {
		return res, err
	}
	seen := map[string]bool{}
	// record takes a page as listed, newest first.
	record := func(page []stripeapi.ListedEvent, announce bool) error {
		var fresh []stripeapi.ListedEvent
		for _, e := range page {
			if !seen[e.ID] || e.ID == "" {
				seen[e.ID] = true
				fresh = append(fresh, e)
			}
		}
		// Pages come newest first; record oldest first.
		slices.Reverse(fresh)
		if announce {
			res.Pages++
			progress(fmt.Sprintf("page %d: %s", res.Pages, plural(len(fresh), "event")))
		}
		return s.recordPage(ctx, fresh, opts, &res)
	}

	if len(anchor.Events) == 1 {
		// Forward from the anchor: each page is the events just newer than
		// the newest one recorded.
		cursor := anchor.Events[0].ID
		seen[cursor] = true
		for range syncMaxPages {
			page, err := s.API.ListEvents(ctx, stripeapi.EventQuery{Types: types, EndingBefore: cursor, Limit: size})
			if err != nil {
				return res, err
			}
			if len(page.Events) == 0 {
				return res, nil
			}
			if seen[page.Events[0].ID] {
				// The API ignored ending_before (stripe-mock answers the
				// anchor again): read the window the other way.
				progress("the API does not page with ending_before; listing newest first instead")
				break
			}
			if err := record(page.Events, true); err != nil {
				return res, err
			}
			if !page.HasMore {
				return res, nil
			}
			cursor = page.Events[0].ID
		}
		if res.Pages >= syncMaxPages {
			return res, fmt.Errorf("stripe sync: more than %d pages; stopped", syncMaxPages)
		}
		delete(seen, anchor.Events[0].ID)
	}

	// No event before the window (or no paging forward): read it newest
	// first, then record it oldest first.
	var all []stripeapi.ListedEvent
	after := ""
	for pages := 1; ; pages++ {
		if pages > syncMaxPages {
			return res, fmt.Errorf("stripe sync: more than %d pages; stopped", syncMaxPages)
		}
		page, err := s.API.ListEvents(ctx, stripeapi.EventQuery{Types: types, CreatedGTE: opts.Since, StartingAfter: after, Limit: size})
		if err != nil {
			return res, err
		}
		res.Pages++
		progress(fmt.Sprintf("page %d (newest first): %s", res.Pages, plural(len(page.Events), "event")))
		all = append(all, page.Events...)
		if !page.HasMore || len(page.Events) == 0 {
			break
		}
		after = page.Events[len(page.Events)-1].ID
	}
	if len(all) > 0 {
		verb := "recording"
		if opts.DryRun {
			verb = "comparing with the inbox"
		}
		progress(fmt.Sprintf("%s %s, oldest first", verb, plural(len(all), "listed event")))
	}
	// all is newest first: record its oldest page, then the next.
	for len(all) > 0 {
		n := min(size, len(all))
		if err := record(all[len(all)-n:], false); err != nil {
			return res, err
		}
		all = all[:len(all)-n]
	}
	return res, nil
}

// recordPage records the events of one page (oldest first) that the inbox
// does not have.
func (s *Syncer) recordPage(ctx context.Context, page []stripeapi.ListedEvent, opts SyncOptions, res *SyncResult) error {
	if len(page) == 0 {
		return nil
	}
	ids := make([]string, len(page))
	for i, e := range page {
		ids[i] = e.ID
	}
	known, err := s.Store.KnownStripeEvents(ctx, ids)
	if err != nil {
		return err
	}
	intake := &inbox.Intake{Store: s.Store, Queue: s.Queue}
	for _, e := range page {
		res.Listed++
		metrics.StripeSyncEvents.WithLabelValues("listed").Inc()
		if known[e.ID] {
			res.AlreadyInInbox++
			metrics.StripeSyncEvents.WithLabelValues("already_in_inbox").Inc()
			continue
		}
		refuse := func(reason string) {
			res.Refused = append(res.Refused, SyncRefusal{EventID: e.ID, Type: e.Type, Reason: reason})
			metrics.StripeSyncEvents.WithLabelValues("refused").Inc()
		}
		if opts.DryRun {
			ev, err := inbox.Decode(e.Raw)
			switch {
			case err != nil:
				refuse(err.Error())
			case !ev.Supported():
				refuse(unsupported(ev.Type))
			default:
				res.Missing++
			}
			continue
		}
		got := intake.Accept(ctx, e.Raw, postgres.SourceSync)
		switch got.Outcome {
		case inbox.Accepted:
			res.Recorded++
			metrics.StripeSyncEvents.WithLabelValues("recorded").Inc()
		case inbox.Duplicate:
			// The webhook recorded it since the page was compared.
			res.AlreadyInInbox++
			metrics.StripeSyncEvents.WithLabelValues("already_in_inbox").Inc()
		case inbox.Ignored:
			refuse(unsupported(got.Event.Type))
		case inbox.Refused:
			refuse(got.Reason)
		default:
			if got.Recorded {
				// In the inbox, not queued: the sweep will apply it.
				res.Recorded++
				metrics.StripeSyncEvents.WithLabelValues("recorded").Inc()
			}
			return fmt.Errorf("record %s: %s: %w", e.ID, got.Reason, got.Err)
		}
	}
	return nil
}

func unsupported(typ string) string {
	return fmt.Sprintf("type %s is not one CleanTrack applies", typ)
}

// plural writes "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// ScheduledSince is where the scheduled sync starts: an hour before the
// last complete run's mark, SyncFirstLookback back the first time, never
// beyond the 30 days Stripe keeps.
func (s *Syncer) ScheduledSince(ctx context.Context) (time.Time, error) {
	now := s.now()
	since := now.Add(-SyncFirstLookback)
	reached, err := s.Store.StripeSyncReached(ctx, syncMark)
	switch {
	case err == nil:
		since = reached.Add(-SyncOverlap)
	case !errors.Is(err, postgres.ErrNotFound):
		return time.Time{}, err
	}
	// A little inside the 30 days, so the window is still there when the
	// request arrives.
	return maxTime(since, now.Add(-SyncMaxAge+5*time.Minute)), nil
}

// MarkComplete records a complete run: the next scheduled one starts an
// hour before res.Reached.
func (s *Syncer) MarkComplete(ctx context.Context, res SyncResult) error {
	return s.Store.SetStripeSyncReached(ctx, syncMark, res.Reached)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ProcessStripeSync is the stripe:sync handler (one run per cron slot,
// enqueued by the scheduler when STRIPE_SECRET_KEY is set): it syncs from
// ScheduledSince and, when the run completes, moves the mark.
func (h *Handler) ProcessStripeSync(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.StripeSyncPayload](t)
	if err != nil {
		return err
	}
	if h.opt.Stripe == nil {
		return fmt.Errorf("stripe sync: STRIPE_SECRET_KEY is not set on the worker")
	}
	s := &Syncer{API: h.opt.Stripe, Store: h.store, Queue: h.enq, Now: h.opt.Now}
	since, err := s.ScheduledSince(ctx)
	if err != nil {
		return err
	}
	res, err := s.Run(ctx, SyncOptions{Since: since})
	attrs := []slog.Attr{
		slog.Time("slot", p.Slot),
		slog.Time("since", res.Since),
		slog.Int("listed", res.Listed),
		slog.Int("already_in_inbox", res.AlreadyInInbox),
		slog.Int("recorded", res.Recorded),
		slog.Int("refused", len(res.Refused)),
	}
	if err != nil {
		return fmt.Errorf("stripe sync since %s (%d listed, %d recorded before it stopped): %w",
			res.Since.Format(time.RFC3339), res.Listed, res.Recorded, err)
	}
	if err := s.MarkComplete(ctx, res); err != nil {
		return err
	}
	level := slog.LevelInfo
	if res.Recorded > 0 || len(res.Refused) > 0 {
		// Events the webhook missed: worth a look at the endpoint.
		level = slog.LevelWarn
	}
	for _, r := range res.Refused {
		h.log.LogAttrs(ctx, slog.LevelWarn, "stripe sync refused an event",
			slog.String("event_id", r.EventID), slog.String("event_type", r.Type), slog.String("reason", r.Reason))
	}
	h.log.LogAttrs(ctx, level, "stripe sync complete", attrs...)
	return nil
}
