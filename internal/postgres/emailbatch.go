package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Batch statuses, the values of email_batches.status.
const (
	BatchQueued = "queued"
	BatchSent   = "sent"
	BatchFailed = "failed"
)

// StagedEmail is one email of a fan-out to stage for a batch. Refused, when
// not empty, says why the email cannot be sent (its address does not pass
// address.Check): it is recorded failed with that reason and joins no batch.
type StagedEmail struct {
	Key     string
	To      string
	Data    []byte // the template's data as JSON
	Refused string
}

// EmailBatchRef names a batch that has emails waiting: the worker's
// email:batch task carries it.
type EmailBatchRef struct {
	ID      int64  `db:"id"`
	TaskKey string `db:"task_key"`
}

// StageEmails records a fan-out's emails of one template and groups the new
// ones into batches of at most size, in the order given. A key that has a
// row already joins no new batch: it was staged (or sent) before. It returns
// every batch still queued that holds one of the given keys, the new ones and
// any that an earlier call staged but whose task may not have been enqueued,
// so the caller enqueues them all (their TaskIDs make that harmless). Refused
// emails are recorded failed, with their reason, in the same transaction.
func (s *Store) StageEmails(ctx context.Context, template string, emails []StagedEmail, size int) ([]EmailBatchRef, error) {
	const insertRefused = `
		INSERT INTO email_deliveries (idempotency_key, template, to_email, data, status, last_error)
		SELECT k, $1, t, d::jsonb, 'failed', r FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS i(k, t, d, r)
		ON CONFLICT (idempotency_key) DO NOTHING`
	const insertQueued = `
		INSERT INTO email_deliveries (idempotency_key, template, to_email, data)
		SELECT k, $1, t, d::jsonb FROM unnest($2::text[], $3::text[], $4::text[]) AS i(k, t, d)
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING id, idempotency_key`
	const insertBatch = `
		INSERT INTO email_batches (task_key, template) VALUES ($1, $2)
		ON CONFLICT (task_key) DO UPDATE SET task_key = EXCLUDED.task_key
		RETURNING id`
	const join = `UPDATE email_deliveries SET batch_id = $1 WHERE id = ANY($2) AND batch_id IS NULL`
	const pending = `
		SELECT DISTINCT b.id, b.task_key
		FROM email_deliveries d JOIN email_batches b ON b.id = d.batch_id
		WHERE d.idempotency_key = ANY($1) AND b.status = 'queued'
		ORDER BY b.id`
	if size <= 0 {
		return nil, fmt.Errorf("stage emails: batch size %d", size)
	}
	var rk, rt, rd, rr, qk, qt, qd, all []string
	for _, e := range emails {
		all = append(all, e.Key)
		data := string(e.Data)
		if data == "" {
			data = "{}"
		}
		if e.Refused != "" {
			rk, rt, rd, rr = append(rk, e.Key), append(rt, e.To), append(rd, data), append(rr, e.Refused)
			continue
		}
		qk, qt, qd = append(qk, e.Key), append(qt, e.To), append(qd, data)
	}
	var out []EmailBatchRef
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if len(rk) > 0 {
			if _, err := tx.ExecContext(ctx, insertRefused, template, pq.Array(rk), pq.Array(rt), pq.Array(rd), pq.Array(rr)); err != nil {
				return err
			}
		}
		if len(qk) > 0 {
			var rows []struct {
				ID  int64  `db:"id"`
				Key string `db:"idempotency_key"`
			}
			if err := tx.SelectContext(ctx, &rows, insertQueued, template, pq.Array(qk), pq.Array(qt), pq.Array(qd)); err != nil {
				return err
			}
			ids := make(map[string]int64, len(rows))
			for _, r := range rows {
				ids[r.Key] = r.ID
			}
			var chunk []int64
			var chunkKeys []string
			flush := func() error {
				if len(chunk) == 0 {
					return nil
				}
				var id int64
				if err := tx.GetContext(ctx, &id, insertBatch, BatchTaskKey(template, chunkKeys), template); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, join, id, pq.Array(chunk)); err != nil {
					return err
				}
				chunk, chunkKeys = chunk[:0], chunkKeys[:0]
				return nil
			}
			for _, k := range qk {
				id, ok := ids[k]
				if !ok {
					continue // staged before
				}
				chunk, chunkKeys = append(chunk, id), append(chunkKeys, k)
				if len(chunk) == size {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := flush(); err != nil {
				return err
			}
		}
		return tx.SelectContext(ctx, &out, pending, pq.Array(all))
	})
	if err != nil {
		return nil, fmt.Errorf("stage %d %s emails: %w", len(emails), template, err)
	}
	return out, nil
}

// BatchTaskKey is the stable name of the batch of template holding the
// emails of keys, in that order: "batch/<template>/<sha-256 of the keys,
// 40 hex digits>". It is the email:batch task's TaskID.
func BatchTaskKey(template string, keys []string) string {
	h := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return "batch/" + template + "/" + hex.EncodeToString(h[:20])
}

// EmailBatch is one batch of a fan-out's emails.
type EmailBatch struct {
	ID             int64          `db:"id"`
	TaskKey        string         `db:"task_key"`
	Template       string         `db:"template"`
	Status         string         `db:"status"`
	IdempotencyKey sql.NullString `db:"idempotency_key"`
	FrozenAt       sql.NullTime   `db:"frozen_at"`
	Attempts       int            `db:"attempts"`
	LastError      sql.NullString `db:"last_error"`
	CreatedAt      time.Time      `db:"created_at"`
	SentAt         sql.NullTime   `db:"sent_at"`
}

// EmailBatch returns batch id, or ErrNotFound.
func (s *Store) EmailBatch(ctx context.Context, id int64) (EmailBatch, error) {
	const q = `SELECT id, task_key, template, status, idempotency_key, frozen_at, attempts, last_error, created_at, sent_at
		FROM email_batches WHERE id = $1`
	var b EmailBatch
	if err := s.DB.GetContext(ctx, &b, q, id); err != nil {
		return EmailBatch{}, fmt.Errorf("email batch %d: %w", id, notFound(err))
	}
	return b, nil
}

// BatchMember is a delivery row staged in a batch, with the suppression of
// its address, if any.
type BatchMember struct {
	EmailDelivery
	Data        []byte         `db:"data"`
	Position    sql.NullInt64  `db:"batch_position"`
	Suppression sql.NullString `db:"suppression"`
}

// EmailBatchMembers returns the rows staged in batch id: once it is frozen,
// only those that joined it, by position; before, every candidate, by id.
func (s *Store) EmailBatchMembers(ctx context.Context, id int64) ([]BatchMember, error) {
	const q = `
		SELECT d.id, d.idempotency_key, d.template, d.to_email, d.subject, d.status, d.provider_message_id,
		       d.attempts, d.last_error, d.created_at, d.sent_at, d.data, d.batch_position, s.reason AS suppression
		FROM email_deliveries d
		JOIN email_batches b ON b.id = d.batch_id
		LEFT JOIN email_suppressions s ON s.email = d.to_email
		WHERE d.batch_id = $1 AND (b.frozen_at IS NULL OR d.batch_position IS NOT NULL)
		ORDER BY d.batch_position NULLS LAST, d.id`
	var out []BatchMember
	if err := s.DB.SelectContext(ctx, &out, q, id); err != nil {
		return nil, fmt.Errorf("email batch %d members: %w", id, err)
	}
	return out, nil
}

// Excluded is a batch candidate that does not join: its row becomes Status
// (EmailSuppressed or EmailFailed) with Reason.
type Excluded struct {
	ID     int64
	Status string
	Reason string
}

// FreezeEmailBatch fixes batch id's membership before its first call: the
// rows of join take positions 0, 1, ... in that order, the excluded rows get
// their status and reason, and the batch keeps idempotencyKey. It reports
// false, changing nothing, when the batch was frozen already (by a run that
// raced this one); the caller then reads the frozen membership.
func (s *Store) FreezeEmailBatch(ctx context.Context, id int64, idempotencyKey string, join []int64, excluded []Excluded) (bool, error) {
	const freeze = `UPDATE email_batches SET frozen_at = now(), idempotency_key = $2 WHERE id = $1 AND frozen_at IS NULL`
	const position = `
		UPDATE email_deliveries d SET batch_position = i.n - 1
		FROM unnest($2::bigint[]) WITH ORDINALITY AS i(id, n)
		WHERE d.id = i.id AND d.batch_id = $1`
	const exclude = `
		UPDATE email_deliveries d SET status = i.status, last_error = i.reason
		FROM unnest($2::bigint[], $3::text[], $4::text[]) AS i(id, status, reason)
		WHERE d.id = i.id AND d.batch_id = $1 AND d.status IN ('queued', 'failed')`
	var frozen bool
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, freeze, id, idempotencyKey)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		frozen = true
		if _, err := tx.ExecContext(ctx, position, id, pq.Array(join)); err != nil {
			return err
		}
		if len(excluded) == 0 {
			return nil
		}
		ids, statuses, reasons := make([]int64, len(excluded)), make([]string, len(excluded)), make([]string, len(excluded))
		for i, e := range excluded {
			ids[i], statuses[i], reasons[i] = e.ID, e.Status, e.Reason
		}
		_, err = tx.ExecContext(ctx, exclude, id, pq.Array(ids), pq.Array(statuses), pq.Array(reasons))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("freeze email batch %d: %w", id, err)
	}
	return frozen, nil
}

// BatchOutcome is what became of one member of a batch call.
type BatchOutcome struct {
	ID        int64
	Subject   string
	MessageID string // Resend's id when sent
	Error     string // why Resend refused it; empty when sent
	Outbox    bool   // written to the dev outbox instead
}

// FinishEmailBatch records a batch call that Resend answered (or the outbox
// took): each member sent, written to the outbox or failed with its own
// reason, in one statement, and the batch sent. Rows already sent are left
// alone.
func (s *Store) FinishEmailBatch(ctx context.Context, id int64, outcomes []BatchOutcome) error {
	const members = `
		UPDATE email_deliveries d
		SET status = CASE WHEN i.outbox THEN 'outbox' WHEN i.err = '' THEN 'sent' ELSE 'failed' END,
		    subject = i.subject,
		    provider_message_id = NULLIF(i.msg, ''),
		    last_error = NULLIF(i.err, ''),
		    attempts = d.attempts + 1,
		    sent_at = CASE WHEN i.err = '' THEN now() END
		FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bool[]) AS i(id, subject, msg, err, outbox)
		WHERE d.id = i.id AND d.batch_id = $1 AND d.status IN ('queued', 'failed')`
	const batch = `UPDATE email_batches SET status = 'sent', attempts = attempts + 1, sent_at = now() WHERE id = $1`
	ids, subjects, msgs, errs, outbox := make([]int64, len(outcomes)), make([]string, len(outcomes)),
		make([]string, len(outcomes)), make([]string, len(outcomes)), make([]bool, len(outcomes))
	for i, o := range outcomes {
		ids[i], subjects[i], msgs[i], errs[i], outbox[i] = o.ID, o.Subject, o.MessageID, o.Error, o.Outbox
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, members, id, pq.Array(ids), pq.Array(subjects), pq.Array(msgs), pq.Array(errs), pq.Array(outbox)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, batch, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish email batch %d: %w", id, err)
	}
	return nil
}

// RecordEmailBatchAttempt counts a failed call of batch id and keeps its
// error on the batch and its members. When final (a permanent error, or the
// last retry) the batch and its queued members become failed.
func (s *Store) RecordEmailBatchAttempt(ctx context.Context, id int64, lastError string, final bool) error {
	const members = `
		UPDATE email_deliveries
		SET attempts = attempts + 1, last_error = $2, status = CASE WHEN $3 THEN 'failed' ELSE status END
		WHERE batch_id = $1 AND batch_position IS NOT NULL AND status IN ('queued', 'failed')`
	const batch = `
		UPDATE email_batches
		SET attempts = attempts + 1, last_error = $2, status = CASE WHEN $3 THEN 'failed' ELSE status END
		WHERE id = $1 AND status IN ('queued', 'failed')`
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, members, id, lastError, final); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, batch, id, lastError, final)
		return err
	})
	if err != nil {
		return fmt.Errorf("record email batch attempt %d: %w", id, err)
	}
	return nil
}

// RecordUndeliverable records an email that cannot be sent (its address
// does not pass address.Check) as a failed delivery with reason, so the
// recipient's own row says why while the others go out. A key that has a row
// already is left as it is.
func (s *Store) RecordUndeliverable(ctx context.Context, key, template, to, reason string) error {
	const q = `
		INSERT INTO email_deliveries (idempotency_key, template, to_email, status, last_error)
		VALUES ($1, $2, $3, 'failed', $4)
		ON CONFLICT (idempotency_key) DO NOTHING`
	if _, err := s.DB.ExecContext(ctx, q, key, template, to, reason); err != nil {
		return fmt.Errorf("record undeliverable email %s: %w", key, err)
	}
	return nil
}

// QueuedEmailBatches returns up to limit batches still queued that were
// staged before before, oldest first: those whose email:batch task may have
// been lost with Redis.
func (s *Store) QueuedEmailBatches(ctx context.Context, before time.Time, limit int) ([]EmailBatchRef, error) {
	const q = `SELECT id, task_key FROM email_batches WHERE status = 'queued' AND created_at < $1 ORDER BY id LIMIT $2`
	var out []EmailBatchRef
	if err := s.DB.SelectContext(ctx, &out, q, before, limit); err != nil {
		return nil, fmt.Errorf("queued email batches: %w", err)
	}
	return out, nil
}
