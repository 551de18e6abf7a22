-- +goose Up
CREATE TABLE email_deliveries (
    id                   bigserial PRIMARY KEY,
    idempotency_key      text NOT NULL UNIQUE,
    template             text NOT NULL,
    to_email             citext NOT NULL,
    subject              text NOT NULL DEFAULT '',
    status               text NOT NULL DEFAULT 'queued'
                         CHECK (status IN ('queued', 'sent', 'failed', 'suppressed', 'outbox')),
    provider_message_id  text,
    attempts             integer NOT NULL DEFAULT 0,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz
);
CREATE INDEX email_deliveries_status_idx ON email_deliveries (status, created_at);

CREATE TABLE email_suppressions (
    email       citext PRIMARY KEY,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Resend (Svix) webhook deliveries already handled, by svix-id.
CREATE TABLE resend_webhook_events (
    svix_id      text PRIMARY KEY,
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE resend_webhook_events;
DROP TABLE email_suppressions;
DROP TABLE email_deliveries;
