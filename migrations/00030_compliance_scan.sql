-- +goose Up
-- When the overdue scan enqueued an alert's emails. An active alert without it
-- still owes its emails (a scan that crashed between opening the alert and
-- enqueueing them): the next scan enqueues them, idempotently.
ALTER TABLE alerts ADD COLUMN notified_at timestamptz;
UPDATE alerts SET notified_at = created_at;
CREATE INDEX alerts_unnotified_idx ON alerts (equipment_id)
    WHERE status = 'active' AND notified_at IS NULL;

-- Keyset pagination of one account's equipment by id (the account-scoped scan).
CREATE INDEX equipment_account_id_idx ON equipment (account_id, id);

-- +goose Down
DROP INDEX equipment_account_id_idx;
DROP INDEX alerts_unnotified_idx;
ALTER TABLE alerts DROP COLUMN notified_at;
