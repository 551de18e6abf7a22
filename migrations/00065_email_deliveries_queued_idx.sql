-- +goose Up
-- The re-drive of single emails (email.Service.RedriveEmails) pages through
-- the deliveries still queued outside a batch, by id; this index keeps each
-- page a short range scan however many emails have been sent.
CREATE INDEX email_deliveries_queued_single_idx ON email_deliveries (id)
    WHERE status = 'queued' AND batch_id IS NULL;

-- +goose Down
DROP INDEX email_deliveries_queued_single_idx;
