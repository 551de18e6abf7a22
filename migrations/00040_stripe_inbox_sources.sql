-- +goose Up
-- How each inbox row arrived (the webhook, "stripe sync" catching up from
-- the List Events API, or "stripe reconcile" applying the API's state), and
-- what kind of Stripe event it is: a snapshot event carries its object; a
-- thin event (object "v2.core.event") names it in related_object, and the
-- worker fetches it. The type column always holds the snapshot type
-- (customer.subscription.updated, never v1.customer.subscription.updated).
ALTER TABLE stripe_events
    ADD COLUMN source text NOT NULL DEFAULT 'webhook'
        CHECK (source IN ('webhook', 'sync', 'reconcile')),
    ADD COLUMN kind text NOT NULL DEFAULT 'snapshot'
        CHECK (kind IN ('snapshot', 'thin')),
    -- A thin event's snapshot_event: its snapshot twin while an account
    -- sends both kinds. Whichever twin is applied first is the one effect.
    ADD COLUMN snapshot_event text,
    -- Set on the later twin, which was marked processed without effect.
    ADD COLUMN twin_of text,
    -- The object a thin event or a reconcile applied, as fetched, and when:
    -- the state as of that moment.
    ADD COLUMN fetched_object jsonb,
    ADD COLUMN fetched_at timestamptz;

CREATE INDEX stripe_events_snapshot_event_idx ON stripe_events (snapshot_event)
    WHERE snapshot_event IS NOT NULL;

-- How far the scheduled catch-up from the List Events API got: every event
-- created before reached_at has been listed. The next run starts an hour
-- before it.
CREATE TABLE stripe_sync_state (
    name        text PRIMARY KEY,
    reached_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE stripe_sync_state;
DROP INDEX stripe_events_snapshot_event_idx;
ALTER TABLE stripe_events
    DROP COLUMN fetched_at,
    DROP COLUMN fetched_object,
    DROP COLUMN twin_of,
    DROP COLUMN snapshot_event,
    DROP COLUMN kind,
    DROP COLUMN source;
