-- +goose Up
-- A Resend bounce or complaint suppresses only the address CleanTrack sent
-- that email to: the webhook looks the email up by Resend's id.
CREATE INDEX email_deliveries_provider_message_idx ON email_deliveries (provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- What the webhook made of a delivery: the Resend email it names and, when it
-- suppressed nobody or not everybody, why.
ALTER TABLE resend_webhook_events
    ADD COLUMN email_id text,
    ADD COLUMN note text;

-- Every recipient a bounce or complaint names (position in data.to, from 1)
-- and what it did to each, written in the same statement as the event. A
-- bounce may name 20,000 addresses, so the table is kept cheap to insert
-- into: one index, on svix_id (deduplicated, since its rows share the key),
-- and no foreign key (the statement writes the event and its recipients
-- together). No index on the address: it comes from the request and may be
-- any length.
CREATE TABLE resend_webhook_recipients (
    svix_id   text NOT NULL,
    position  integer NOT NULL,
    email     text NOT NULL,
    outcome   text NOT NULL
              CHECK (outcome IN ('suppressed', 'already_suppressed', 'not_sent', 'not_permanent'))
);
CREATE INDEX resend_webhook_recipients_svix_idx ON resend_webhook_recipients (svix_id);

-- +goose Down
DROP TABLE resend_webhook_recipients;
ALTER TABLE resend_webhook_events DROP COLUMN note, DROP COLUMN email_id;
DROP INDEX email_deliveries_provider_message_idx;
