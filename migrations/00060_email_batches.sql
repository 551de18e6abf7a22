-- +goose Up
-- A fan-out's emails go to Resend in batches of up to 100. The batch row is
-- the frozen membership: its members are the delivery rows that name it with
-- a position, fixed (with the Idempotency-Key) before the first call, so a
-- retry rebuilds the very same request.
CREATE TABLE email_batches (
    id               bigserial PRIMARY KEY,
    task_key         text NOT NULL UNIQUE,
    template         text NOT NULL,
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    idempotency_key  text,
    frozen_at        timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);

-- data: the template's data, so the batch can be rendered again on a retry.
-- batch_id: the batch the email was staged in; batch_position: its place in
-- the request once the batch is frozen (NULL: it did not join).
ALTER TABLE email_deliveries
    ADD COLUMN data jsonb,
    ADD COLUMN batch_id bigint REFERENCES email_batches (id),
    ADD COLUMN batch_position integer;
CREATE INDEX email_deliveries_batch_idx ON email_deliveries (batch_id) WHERE batch_id IS NOT NULL;

-- +goose Down
DROP INDEX email_deliveries_batch_idx;
ALTER TABLE email_deliveries DROP COLUMN batch_position, DROP COLUMN batch_id, DROP COLUMN data;
DROP TABLE email_batches;
