package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/hibiken/asynq"
	"github.com/resend/resend-go/v2"

	"github.com/cleantrack/jobs/internal/address"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// BatchReport is what became of one batch.
type BatchReport struct {
	BatchID    int64
	Sent       int // accepted by Resend (or written to the outbox)
	Failed     int // refused by Resend, or not renderable or addressable
	Suppressed int // on the suppression list; never joined
	Skipped    int // already sent, written or suppressed by another path
	Requests   int // calls to Resend: 0 or 1
	// AlreadyDone is true when an earlier run had finished the batch.
	AlreadyDone bool
}

// ProcessBatch handles email:batch (registered by Register).
func (s *Sender) ProcessBatch(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.EmailBatchPayload](t)
	if err != nil {
		return err
	}
	_, err = s.DeliverBatch(ctx, p.BatchID, lastAttempt(ctx))
	return err
}

// batchMember is a member with its rendered message.
type batchMember struct {
	row postgres.BatchMember
	msg Message
}

// DeliverBatch sends batch id through POST /emails/batch, once:
//
//   - Before the first call it freezes the membership in PostgreSQL: rows
//     already sent, written or suppressed elsewhere are skipped, suppressed
//     addresses are marked suppressed, rows that do not render or whose
//     address is invalid are marked failed, each with its reason; the rest
//     join, in order, and the batch's Idempotency-Key is derived from them
//     (BatchIdempotencyKey). A retry rebuilds the same members and bodies
//     under the same key, so Resend answers a batch it took once with its
//     first answer and sends nothing twice.
//   - One call takes one request from the shared rate (the limit counts
//     requests, as Resend's does); a 429 waits for Retry-After.
//   - Validation is permissive: an email Resend refuses fails only its own
//     row, with Resend's message; the others are sent.
//   - Errors are classified as for a single email (see Deliver): a permanent
//     one fails every member and archives the task; others retry.
//
// Without an API key every member is written to the dev outbox.
func (s *Sender) DeliverBatch(ctx context.Context, id int64, final bool) (BatchReport, error) {
	rep := BatchReport{BatchID: id}
	b, err := s.store.EmailBatch(ctx, id)
	if errors.Is(err, postgres.ErrNotFound) {
		return rep, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return rep, err
	}
	if b.Status == postgres.BatchSent {
		rep.AlreadyDone = true
		return rep, nil
	}
	members, err := s.store.EmailBatchMembers(ctx, id)
	if err != nil {
		return rep, err
	}
	var join []batchMember
	frozenHere := false
	if !b.FrozenAt.Valid {
		if join, frozenHere, err = s.freeze(ctx, b, members, &rep); err != nil {
			return rep, err
		}
		if b, err = s.store.EmailBatch(ctx, id); err != nil {
			return rep, err
		}
		if !frozenHere {
			// Another run froze it meanwhile: its membership is the truth.
			if members, err = s.store.EmailBatchMembers(ctx, id); err != nil {
				return rep, err
			}
		}
	}
	if !frozenHere {
		// A retry, or a batch another run froze: rebuild its members, in
		// their positions, from the stored data.
		join = join[:0]
		for _, m := range members {
			if !m.Position.Valid {
				continue
			}
			msg, err := s.renderMember(m)
			if err != nil {
				// It rendered when the batch was frozen; rendering depends
				// only on the stored data, so this is a defect, not bad input.
				return rep, fmt.Errorf("email batch %d: delivery %d no longer renders: %w", id, m.ID, err)
			}
			join = append(join, batchMember{row: m, msg: msg})
		}
	}
	if len(join) == 0 {
		if err := s.store.FinishEmailBatch(ctx, id, nil); err != nil {
			return rep, err
		}
		return rep, nil
	}
	if s.Outbox() {
		return s.batchToOutbox(ctx, b, join, rep)
	}
	return s.sendBatch(ctx, b, join, rep, final)
}

// freeze decides who joins batch b, records it, and returns the members
// that joined, rendered.
// It reports false when another run froze the batch first.
func (s *Sender) freeze(ctx context.Context, b postgres.EmailBatch, members []postgres.BatchMember, rep *BatchReport) ([]batchMember, bool, error) {
	var join []batchMember
	var excluded []postgres.Excluded
	for _, m := range members {
		if m.Done() {
			rep.Skipped++
			continue
		}
		if err := address.Check(m.ToEmail); err != nil {
			excluded = append(excluded, postgres.Excluded{ID: m.ID, Status: postgres.EmailFailed, Reason: err.Error()})
			rep.Failed++
			metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeFailed).Inc()
			continue
		}
		if m.Suppression.Valid {
			excluded = append(excluded, postgres.Excluded{ID: m.ID, Status: postgres.EmailSuppressed, Reason: "suppressed: " + m.Suppression.String})
			rep.Suppressed++
			metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeSuppressed).Inc()
			continue
		}
		msg, err := s.renderMember(m)
		if err != nil {
			excluded = append(excluded, postgres.Excluded{ID: m.ID, Status: postgres.EmailFailed, Reason: err.Error()})
			rep.Failed++
			metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeFailed).Inc()
			continue
		}
		join = append(join, batchMember{row: m, msg: msg})
	}
	ids := make([]int64, len(join))
	for i, m := range join {
		ids[i] = m.row.ID
	}
	frozen, err := s.store.FreezeEmailBatch(ctx, b.ID, s.batchKey(join), ids, excluded)
	if err != nil || !frozen {
		return nil, false, err
	}
	return join, true, nil
}

func (s *Sender) renderMember(m postgres.BatchMember) (Message, error) {
	data, err := DecodeData(m.Template, m.Data)
	if err != nil {
		return Message{}, err
	}
	return s.renderer.Render(m.Template, data)
}

// batchKey is BatchIdempotencyKey of the members' requests.
func (s *Sender) batchKey(join []batchMember) string {
	reqs := make([]*resend.SendEmailRequest, len(join))
	keys := make([]string, len(join))
	for i, m := range join {
		reqs[i], keys[i] = s.batchRequest(m), m.row.IdempotencyKey
	}
	return BatchIdempotencyKey(keys, reqs)
}

// BatchIdempotencyKey is the Idempotency-Key of a batch call: "batch/" and
// the SHA-256 (64 hex digits) of each member's idempotency key and request
// body, in order. The same members with the same bodies get the same key;
// any other batch gets another.
func BatchIdempotencyKey(keys []string, reqs []*resend.SendEmailRequest) string {
	h := sha256.New()
	for i, r := range reqs {
		body := sha256.Sum256([]byte(r.From + "\x00" + r.To[0] + "\x00" + r.Subject + "\x00" + r.Html + "\x00" + r.Text))
		fmt.Fprintf(h, "%s\x00%x\n", keys[i], body)
	}
	return "batch/" + hex.EncodeToString(h.Sum(nil))
}

func (s *Sender) batchRequest(m batchMember) *resend.SendEmailRequest {
	return &resend.SendEmailRequest{
		From:    s.opt.From,
		To:      []string{m.row.ToEmail},
		Subject: m.msg.Subject,
		Html:    m.msg.HTML,
		Text:    m.msg.Text,
		Tags:    []resend.Tag{{Name: "template", Value: m.row.Template}},
	}
}

func (s *Sender) batchToOutbox(ctx context.Context, b postgres.EmailBatch, join []batchMember, rep BatchReport) (BatchReport, error) {
	outcomes := make([]postgres.BatchOutcome, 0, len(join))
	for _, m := range join {
		p := tasks.EmailSendPayload{Key: m.row.IdempotencyKey, Template: m.row.Template, To: m.row.ToEmail}
		base, err := s.writeOutboxFiles(p, m.msg)
		if err != nil {
			return rep, err
		}
		outcomes = append(outcomes, postgres.BatchOutcome{ID: m.row.ID, Subject: m.msg.Subject, Outbox: true})
		s.log.DebugContext(ctx, "email written to outbox (no RESEND_API_KEY)",
			slog.Int64("delivery_id", m.row.ID), slog.String("template", m.row.Template), slog.String("path", filepath.Clean(base+".html")))
	}
	if err := s.store.FinishEmailBatch(ctx, b.ID, outcomes); err != nil {
		return rep, err
	}
	metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeOutbox).Add(float64(len(join)))
	s.log.InfoContext(ctx, "email batch written to outbox (no RESEND_API_KEY)",
		slog.Int64("batch_id", b.ID), slog.Int("emails", len(join)), slog.String("dir", s.opt.OutboxDir))
	rep.Sent += len(join)
	return rep, nil
}

func (s *Sender) sendBatch(ctx context.Context, b postgres.EmailBatch, join []batchMember, rep BatchReport, final bool) (BatchReport, error) {
	reqs := make([]*resend.SendEmailRequest, len(join))
	for i, m := range join {
		reqs[i] = s.batchRequest(m)
	}
	var resp apiResponse
	out, err := s.client.Batch.SendWithOptions(withTurn(withResponse(ctx, &resp), s.waitTurn), reqs, &resend.BatchSendEmailOptions{
		IdempotencyKey:  b.IdempotencyKey.String,
		BatchValidation: resend.BatchValidationPermissive,
	})
	var turn turnError
	if errors.As(err, &turn) {
		// No turn of the shared rate: the request never left.
		err = turn.err
		if final {
			if merr := s.store.RecordEmailBatchAttempt(ctx, b.ID, "retries exhausted: "+err.Error(), true); merr != nil {
				return rep, merr
			}
			metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeFailed).Add(float64(len(join)))
			return rep, err
		}
		if !queue.IsFailure(err) {
			metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeRateLimited).Add(float64(len(join)))
		}
		return rep, err
	}
	rep.Requests++
	if err == nil {
		refused := map[int]string{}
		for _, e := range out.Errors {
			refused[e.Index] = e.Message
		}
		outcomes := make([]postgres.BatchOutcome, len(join))
		next := 0
		for i, m := range join {
			o := postgres.BatchOutcome{ID: m.row.ID, Subject: m.msg.Subject}
			if msg, ok := refused[i]; ok {
				o.Error = "resend refused it: " + msg
				rep.Failed++
			} else {
				if next < len(out.Data) {
					o.MessageID = out.Data[next].Id
				}
				next++
				rep.Sent++
			}
			outcomes[i] = o
		}
		if err := s.store.FinishEmailBatch(ctx, b.ID, outcomes); err != nil {
			// Resend has the batch; a retry with the same key gets the same
			// answer back without sending again.
			return rep, err
		}
		metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeSent).Add(float64(rep.Sent))
		if len(refused) > 0 {
			metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeFailed).Add(float64(len(refused)))
		}
		s.log.InfoContext(ctx, "email batch sent",
			slog.Int64("batch_id", b.ID), slog.String("template", b.Template),
			slog.Int("sent", rep.Sent), slog.Int("refused", len(refused)))
		return rep, nil
	}

	class, delay := classify(resp, err)
	reason := describe(resp, err)
	permanent := class == classPermanent || final
	if rerr := s.store.RecordEmailBatchAttempt(ctx, b.ID, reason, permanent); rerr != nil {
		return rep, rerr
	}
	n := float64(len(join))
	cause := fmt.Errorf("email batch %d: %s", b.ID, reason)
	switch {
	case class == classPermanent:
		metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeFailed).Add(n)
		return rep, fmt.Errorf("%w: %w", cause, asynq.SkipRetry)
	case final:
		metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeFailed).Add(n)
		return rep, cause
	case class == classQuota:
		s.log.ErrorContext(ctx, "resend sending quota exhausted; emails wait until it resets",
			slog.Int64("batch_id", b.ID), slog.String("error", reason), slog.Duration("retry_in", delay))
		metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeRateLimited).Add(n)
		return rep, queue.RateLimited(delay, cause)
	case class == classRateLimited:
		metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeRateLimited).Add(n)
		return rep, queue.RateLimited(delay, cause)
	}
	metrics.EmailsTotal.WithLabelValues(b.Template, OutcomeRetried).Add(n)
	return rep, cause
}
