-- +goose Up
CREATE EXTENSION IF NOT EXISTS citext;

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    email       citext NOT NULL UNIQUE,
    first_name  text NOT NULL DEFAULT '',
    last_name   text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plans (
    code             text PRIMARY KEY,
    name             text NOT NULL,
    stripe_price_id  text UNIQUE,
    max_locations    integer NOT NULL CHECK (max_locations >= 0),
    max_users        integer NOT NULL CHECK (max_users >= 0)
);

INSERT INTO plans (code, name, stripe_price_id, max_locations, max_users)
VALUES ('trial', 'Trial', 'price_trial_monthly', 5, 10);

CREATE TABLE accounts (
    id                      bigserial PRIMARY KEY,
    name                    text NOT NULL,
    slug                    text NOT NULL UNIQUE,
    owner_id                bigint NOT NULL REFERENCES users (id),
    plan                    text NOT NULL DEFAULT 'trial' REFERENCES plans (code),
    status                  text NOT NULL DEFAULT 'trialing',
    stripe_customer_id      text UNIQUE,
    stripe_subscription_id  text,
    subscription_end_date   timestamptz,
    timezone                text NOT NULL DEFAULT 'UTC',
    -- Stripe's event.created of the newest event applied to the billing state:
    -- an older event must not overwrite newer state.
    billing_event_at        timestamptz,
    last_payment_at         timestamptz,
    last_payment_amount     bigint,
    last_payment_currency   text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE account_members (
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'technician')),
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX account_members_user_idx ON account_members (user_id);

CREATE TABLE locations (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL
);
CREATE INDEX locations_account_idx ON locations (account_id);

CREATE TABLE cleaning_protocols (
    id                          bigserial PRIMARY KEY,
    account_id                  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                        text NOT NULL,
    steps                       text[] NOT NULL DEFAULT '{}',
    estimated_duration_minutes  integer NOT NULL DEFAULT 0,
    required_chemicals          text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE equipment (
    id                       bigserial PRIMARY KEY,
    account_id               bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    location_id              bigint NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    name                     text NOT NULL,
    serial_number            text NOT NULL DEFAULT '',
    protocol_id              bigint REFERENCES cleaning_protocols (id) ON DELETE SET NULL,
    cleaning_interval_hours  integer NOT NULL CHECK (cleaning_interval_hours > 0),
    assigned_user_id         bigint REFERENCES users (id) ON DELETE SET NULL,
    active                   boolean NOT NULL DEFAULT true,
    created_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX equipment_account_idx ON equipment (account_id);
CREATE INDEX equipment_location_idx ON equipment (location_id);

CREATE TABLE cleaning_logs (
    id            bigserial PRIMARY KEY,
    equipment_id  bigint NOT NULL REFERENCES equipment (id) ON DELETE CASCADE,
    cleaned_by    bigint REFERENCES users (id) ON DELETE SET NULL,
    cleaned_at    timestamptz NOT NULL
);
CREATE INDEX cleaning_logs_equipment_cleaned_idx ON cleaning_logs (equipment_id, cleaned_at DESC);

CREATE TABLE alerts (
    id            bigserial PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    equipment_id  bigint NOT NULL REFERENCES equipment (id) ON DELETE CASCADE,
    kind          text NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'resolved')),
    due_at        timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz
);
-- At most one active alert per equipment and kind: a second scan is a no-op.
CREATE UNIQUE INDEX alerts_one_active_idx ON alerts (equipment_id, kind) WHERE status = 'active';
CREATE INDEX alerts_account_active_idx ON alerts (account_id) WHERE status = 'active';

-- The inbox: every verified Stripe event we accepted, before the 200 went back.
CREATE TABLE stripe_events (
    id                 text PRIMARY KEY,
    type               text NOT NULL,
    api_version        text NOT NULL DEFAULT '',
    livemode           boolean NOT NULL DEFAULT false,
    stripe_created_at  timestamptz NOT NULL,
    payload            jsonb NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now(),
    processed_at       timestamptz,
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text,
    failed_at          timestamptz,
    -- Why a processed event changed nothing (stale, already linked, ...).
    note               text
);
-- The re-drive sweep looks only at what is still pending.
CREATE INDEX stripe_events_pending_idx ON stripe_events (received_at)
    WHERE processed_at IS NULL AND failed_at IS NULL;

-- What the email issue needs from a failed invoice payment.
CREATE TABLE invoice_payment_failures (
    invoice_id          text NOT NULL,
    attempt_count       integer NOT NULL,
    account_id          bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    stripe_event_id     text NOT NULL REFERENCES stripe_events (id),
    amount_due          bigint NOT NULL,
    currency            text NOT NULL,
    next_attempt_at     timestamptz,
    hosted_invoice_url  text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_id, attempt_count)
);

-- +goose Down
DROP TABLE invoice_payment_failures;
DROP TABLE stripe_events;
DROP TABLE alerts;
DROP TABLE cleaning_logs;
DROP TABLE equipment;
DROP TABLE cleaning_protocols;
DROP TABLE locations;
DROP TABLE account_members;
DROP TABLE accounts;
DROP TABLE plans;
DROP TABLE users;
