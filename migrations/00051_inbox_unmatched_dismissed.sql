-- +goose Up
-- Two more inbox states beside pending, processed and failed:
--   unmatched: no account has the event's Stripe customer after a few minutes
--     of waiting for a racing customer.created; the row waits, neither failed
--     nor retried, until an account is linked to that customer. The customer
--     stays in unmatched_customer afterwards: the row was parked once.
--   dismissed: a person decided a failed or unmatched row is not to be
--     applied, and said who and why; the row is kept.
ALTER TABLE stripe_events
    ADD COLUMN unmatched_at        timestamptz,
    ADD COLUMN unmatched_customer  text,
    ADD COLUMN dismissed_at        timestamptz,
    ADD COLUMN dismissed_by        text,
    ADD COLUMN dismissed_reason    text,
    ADD CONSTRAINT stripe_events_dismissed_says_who_and_why
        CHECK (dismissed_at IS NULL OR (dismissed_by <> '' AND dismissed_reason <> ''));

-- The re-drive sweep looks only at what is still pending.
DROP INDEX stripe_events_pending_idx;
CREATE INDEX stripe_events_pending_idx ON stripe_events (received_at)
    WHERE processed_at IS NULL AND failed_at IS NULL AND unmatched_at IS NULL AND dismissed_at IS NULL;

-- Unmatched rows by customer: released when an account gets that customer.
CREATE INDEX stripe_events_unmatched_idx ON stripe_events (unmatched_customer, stripe_created_at)
    WHERE unmatched_at IS NOT NULL AND processed_at IS NULL AND dismissed_at IS NULL;

-- +goose Down
DROP INDEX stripe_events_unmatched_idx;
DROP INDEX stripe_events_pending_idx;
CREATE INDEX stripe_events_pending_idx ON stripe_events (received_at)
    WHERE processed_at IS NULL AND failed_at IS NULL;
ALTER TABLE stripe_events
    DROP CONSTRAINT stripe_events_dismissed_says_who_and_why,
    DROP COLUMN dismissed_reason,
    DROP COLUMN dismissed_by,
    DROP COLUMN dismissed_at,
    DROP COLUMN unmatched_customer,
    DROP COLUMN unmatched_at;
