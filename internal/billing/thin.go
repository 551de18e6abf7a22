package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/stripeapi"
	"github.com/cleantrack/jobs/tasks"
)

// rateLimitWait is the least a thin event waits after Stripe's 429s
// outlasted the client's own retries.
const rateLimitWait = 30 * time.Second

// objectKind is the object a snapshot event type is about: what a thin
// event of the type must name in related_object.
func objectKind(snapshotType string) string {
	switch {
	case snapshotType == tasks.EventCustomerCreated:
		return stripeapi.ObjectCustomer
	case strings.HasPrefix(snapshotType, "customer.subscription."):
		return stripeapi.ObjectSubscription
	case strings.HasPrefix(snapshotType, "invoice."):
		return stripeapi.ObjectInvoice
	}
	return ""
}

// fetch fills a thin event with the object its related_object names, as the
// Stripe API has it now, and keeps that object on the inbox row.
//
// The request is built from the object's type and id against the configured
// API base, never from related_object.url: a url that is absolute, or is
// anything but the object's own path (/v1/subscriptions/<id> for a
// subscription), makes the event malformed, and nothing is fetched.
//
// When the event's snapshot twin was applied already, nothing is fetched
// either: the event is marked processed as its twin, and settled is true.
// Without a Stripe client (no STRIPE_SECRET_KEY) the error names the
// variable and the task is retried: the row stays, nothing is lost.
func (h *Handler) fetch(ctx context.Context, row postgres.InboxEvent, ev Event) (_ Event, settled bool, _ error) {
	if row.SnapshotEvent != "" {
		twin, err := h.store.SettleTwin(ctx, row.ID)
		if err != nil {
			return ev, false, err
		}
		if twin.Outcome != 0 {
			h.logOutcome(ctx, ev, 0, twin.Outcome.String(), twin.Note)
			return ev, true, nil
		}
	}
	kind := objectKind(ev.SnapshotType())
	ro := ev.RelatedObject
	if ro.Type != kind {
		return ev, false, malformed("thin event %s (%s) names a %s in related_object, not a %s; nothing fetched", ev.ID, ev.Type, ro.Type, kind)
	}
	path := stripeapi.ObjectPath(kind, ro.ID)
	if path == "" {
		return ev, false, malformed("thin event %s: related_object.id %q is not a Stripe id; nothing fetched", ev.ID, ro.ID)
	}
	if ro.URL != "" && ro.URL != path {
		why := "is not " + path + ", the " + kind + "'s own path"
		if u, err := url.Parse(ro.URL); err != nil || u.IsAbs() || u.Host != "" {
			why = "is absolute; only the " + kind + "'s own path " + path + " is accepted"
		}
		return ev, false, malformed("thin event %s: related_object.url %q %s; nothing fetched", ev.ID, ro.URL, why)
	}
	if h.opt.Stripe == nil {
		return ev, false, fmt.Errorf("thin event %s: cannot fetch %s %s: STRIPE_SECRET_KEY is not set on the worker; set it and the retry applies the event", ev.ID, kind, ro.ID)
	}
	obj, err := h.opt.Stripe.Object(ctx, kind, ro.ID)
	if errors.Is(err, stripeapi.ErrNotFound) {
		return ev, false, fmt.Errorf("thin event %s: %w", ev.ID, err)
	}
	var apiErr *stripeapi.Error
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests {
		// Stripe is busy, the event is fine: try later without using up
		// its retries.
		return ev, false, queue.RateLimited(max(apiErr.RetryAfter, rateLimitWait), fmt.Errorf("thin event %s: fetch %s %s: %w", ev.ID, kind, ro.ID, err))
	}
	if err != nil {
		return ev, false, fmt.Errorf("thin event %s: fetch %s %s: %w", ev.ID, kind, ro.ID, err)
	}
	var got struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(obj, &got); err != nil || got.ID != ro.ID {
		return ev, false, malformed("thin event %s: GET %s answered another object (id %q); nothing applied", ev.ID, path, got.ID)
	}
	at := h.now()
	if err := h.store.SaveFetchedObject(ctx, ev.ID, obj, at); err != nil {
		return ev, false, err
	}
	ev.Data.Object, ev.FetchedAt = obj, at
	return ev, false, nil
}
