-- +goose Up
-- One row per account and ISO week: the figures that were (or will be) sent,
-- so a report can be re-read and is never sent twice.
CREATE TABLE weekly_reports (
    account_id    bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    iso_week      text NOT NULL,          -- "2026-W47"
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    figures       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    PRIMARY KEY (account_id, iso_week)
);

-- +goose Down
DROP TABLE weekly_reports;
