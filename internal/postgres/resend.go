package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lib/pq"
)

// Outcomes of one recipient of a Resend bounce or complaint, the values of
// resend_webhook_recipients.outcome.
const (
	// RecipientSuppressed: CleanTrack sent the email to this address, which
	// is now on the suppression list.
	RecipientSuppressed = "suppressed"
	// RecipientAlreadySuppressed: as RecipientSuppressed, but the address was
	// on the list already (its first reason stays).
	RecipientAlreadySuppressed = "already_suppressed"
	// RecipientNotSent: CleanTrack did not send this email to this address
	// (or did not send this email at all); nobody is suppressed for it.
	RecipientNotSent = "not_sent"
	// RecipientNotPermanent: a transient or undetermined bounce, which
	// suppresses nobody.
	RecipientNotPermanent = "not_permanent"
)

// ResendWebhookEvent is one verified Resend (Svix) bounce or complaint.
type ResendWebhookEvent struct {
	SvixID  string
	Type    string
	Payload []byte // the whole body, as received
	// EmailID is Resend's id of the email (data.email_id), which CleanTrack
	// keeps as email_deliveries.provider_message_id when it sends.
	EmailID string
	// Recipients are the addresses the event names (data.to), as given.
	Recipients []string
	// Suppress is true for a permanent bounce or a complaint: the recipients
	// CleanTrack sent the email to go on the suppression list with Reason.
	// False records the recipients as not_permanent.
	Suppress bool
	Reason   string
}

// ResendWebhookResult is what RecordResendWebhook did.
type ResendWebhookResult struct {
	// Duplicate is true when the svix-id was recorded before: nothing was
	// written and the counts are zero.
	Duplicate bool
	// Recipients counts the recipient rows recorded; Suppressed, the
	// addresses added to the suppression list now.
	Recipients int
	Suppressed int
	// Note says why recipients were not suppressed, "" when every recipient
	// was (or nothing was to be suppressed).
	Note string
}

// RecordResendWebhook records a verified Resend bounce or complaint once by
// svix-id, with every recipient it names and what it did to each, and puts
// on the suppression list only the addresses CleanTrack sent that email to
// (email_deliveries with provider_message_id = EmailID): a signed event about
// an email CleanTrack never sent suppresses nobody. The suppressed address is
// the one CleanTrack sent to, never the request's spelling of it.
//
// Whatever the number of recipients, the recording is one statement (the
// recipients go in as one array), after one lookup of the email. It returns
// ErrInvalidPayload when PostgreSQL refuses what the request holds (JSON
// jsonb cannot store, a NUL in an address): retrying cannot help.
func (s *Store) RecordResendWebhook(ctx context.Context, e ResendWebhookEvent) (ResendWebhookResult, error) {
	sentTo, err := s.emailRecipients(ctx, e.EmailID)
	if err != nil {
		return ResendWebhookResult{}, fmt.Errorf("record resend webhook %s: %w", e.SvixID, err)
	}
	ours := make([]bool, len(e.Recipients))
	matched := map[string]bool{}
	var oursAddrs []string
	for i, to := range e.Recipients {
		for _, addr := range sentTo {
			if strings.EqualFold(strings.TrimSpace(to), addr) {
				ours[i] = true
				if !matched[addr] {
					matched[addr] = true
					oursAddrs = append(oursAddrs, addr)
				}
			}
		}
	}
	res := ResendWebhookResult{Note: recipientsNote(e, sentTo, ours)}

	// One statement: the event (once by svix-id), the suppressions, and one
	// row per recipient from the array, each with its outcome. The later
	// parts read the first one's RETURNING, so a duplicate writes nothing.
	const q = `
		WITH ev AS (
			INSERT INTO resend_webhook_events (svix_id, type, payload, email_id, note)
			VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''))
			ON CONFLICT (svix_id) DO NOTHING
			RETURNING svix_id
		), sup AS (
			INSERT INTO email_suppressions (email, reason)
			SELECT DISTINCT a.email, $6 FROM unnest($7::text[]) AS a(email), ev
			WHERE $8
			ON CONFLICT (email) DO NOTHING
			RETURNING email
		), rec AS (
			INSERT INTO resend_webhook_recipients (svix_id, position, email, outcome)
			SELECT ev.svix_id, r.position, r.email,
			       CASE WHEN NOT $8 THEN 'not_permanent'
			            WHEN NOT r.ours THEN 'not_sent'
			            WHEN EXISTS (SELECT 1 FROM sup WHERE sup.email = btrim(r.email)::citext) THEN 'suppressed'
			            ELSE 'already_suppressed' END
			FROM ev, unnest($9::text[], $10::boolean[]) WITH ORDINALITY AS r(email, ours, position)
			RETURNING outcome
		)
		SELECT (SELECT count(*) FROM ev) AS recorded,
		       (SELECT count(*) FROM rec) AS recipients,
		       (SELECT count(*) FROM rec WHERE outcome = 'suppressed') AS suppressed`
	var row struct {
		Recorded   int `db:"recorded"`
		Recipients int `db:"recipients"`
		Suppressed int `db:"suppressed"`
	}
	err = s.DB.GetContext(ctx, &row, q, e.SvixID, e.Type, string(e.Payload), e.EmailID, res.Note,
		e.Reason, pq.Array(oursAddrs), e.Suppress, pq.Array(e.Recipients), pq.Array(ours))
	if isPermanentDataError(err) {
		return ResendWebhookResult{}, fmt.Errorf("record resend webhook %s: %w: %w", e.SvixID, ErrInvalidPayload, err)
	}
	if err != nil {
		return ResendWebhookResult{}, fmt.Errorf("record resend webhook %s: %w", e.SvixID, err)
	}
	if row.Recorded == 0 {
		return ResendWebhookResult{Duplicate: true}, nil
	}
	res.Recipients, res.Suppressed = row.Recipients, row.Suppressed
	return res, nil
}

// emailRecipients returns the addresses CleanTrack sent the email with
// Resend id emailID to; none for an empty id or an email it never sent.
func (s *Store) emailRecipients(ctx context.Context, emailID string) ([]string, error) {
	if emailID == "" {
		return nil, nil
	}
	const q = `
		SELECT DISTINCT to_email::text FROM email_deliveries
		WHERE provider_message_id = $1`
	var out []string
	if err := s.DB.SelectContext(ctx, &out, q, emailID); err != nil {
		if isPermanentDataError(err) {
			return nil, fmt.Errorf("recipients of email %s: %w: %w", cutID(emailID), ErrInvalidPayload, err)
		}
		return nil, fmt.Errorf("recipients of email %s: %w", cutID(emailID), err)
	}
	return out, nil
}

// recipientsNote says why recipients of e were not suppressed, "" when
// there is nothing to say.
func recipientsNote(e ResendWebhookEvent, sentTo []string, ours []bool) string {
	if !e.Suppress {
		return ""
	}
	notOurs := 0
	for _, o := range ours {
		if !o {
			notOurs++
		}
	}
	switch {
	case len(e.Recipients) == 0:
		return "the event names no recipient"
	case e.EmailID == "":
		return "the event names no email_id; nobody suppressed"
	case len(sentTo) == 0:
		return fmt.Sprintf("email %s is not one CleanTrack sent; nobody suppressed", cutID(e.EmailID))
	case notOurs > 0:
		return fmt.Sprintf("%d of %d recipients are not addresses CleanTrack sent email %s to; not suppressed",
			notOurs, len(e.Recipients), cutID(e.EmailID))
	}
	return ""
}

// cutID shortens an id from a request for a message: Resend's ids are
// UUIDs, so anything much longer is not one.
func cutID(id string) string {
	const max = 64
	if len(id) <= max {
		return id
	}
	return strings.ToValidUTF8(id[:max], "") + "…"
}

// isPermanentDataError reports PostgreSQL refusing a value itself rather
// than failing to run: a data exception (class 22: invalid JSON or text, a
// NUL byte, a value out of range) or a program limit (class 54: a value too
// large for an index). The same request would fail the same way again.
func isPermanentDataError(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code.Class() == "22" || pqErr.Code.Class() == "54")
}
