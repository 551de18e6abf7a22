package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
)

// How a fuzz input's Svix headers are made.
const (
	resendHeadersAsGiven = iota // the fuzzed svix-id, svix-timestamp and svix-signature
	resendSigned                // the fuzzed svix-id, signed now with the server's secret
	resendWrongSecret           // signed with a secret the server does not have
	resendTooOld                // signed ten minutes ago
	resendModes
)

// lineWriter remembers the longest line written to it.
type lineWriter struct {
	mu      sync.Mutex
	longest int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range bytes.Split(p, []byte("\n")) {
		w.longest = max(w.longest, len(line))
	}
	return len(p), nil
}

func (w *lineWriter) take() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.longest
	w.longest = 0
	return n
}

// FuzzResendWebhook throws arbitrary bodies and Svix headers at the Resend
// webhook handler, backed by a real PostgreSQL in which CleanTrack sent one
// email (e-ours, to ours@example.com). Whatever arrives: no panic; no 5xx
// (PostgreSQL is up, so a 5xx would blame bad input on it); without a valid
// signature a 4xx and nothing recorded; with one, 200, 400 or 413; nobody
// but ours@example.com is ever suppressed; and no log line grows past 2 KB,
// however long the values of the request.
func FuzzResendWebhook(f *testing.F) {
	ours := `{"type":"email.bounced","created_at":"2026-11-26T10:00:00.000Z","data":{"email_id":"e-ours","to":["ours@example.com","owner@example.com"],"bounce":{"type":"Permanent","subType":"General","message":"Mailbox does not exist"}}}`
	for _, seed := range []struct {
		body, id, ts, sig string
		mode              uint8
	}{
		{ours, "msg_2Lh9KRb0pzN4LePd3XiA4xwOzlq", "", "", resendSigned},
		{`{"type":"email.complained","data":{"email_id":"e-theirs","to":["owner@example.com"]}}`, "msg_c", "", "", resendSigned},
		{`{"type":"email.bounced","data":{"email_id":"e-ours","to":["OURS@example.com"],"bounce":{"type":"Transient"}}}`, "msg_t", "", "", resendSigned},
		{`{"type":"email.delivered","data":{"email_id":"e-ours","to":["ours@example.com"]}}`, "msg_d", "", "", resendSigned},
		{`{"type":"email.bounced","data":{"email_id":"e-ours","to":["ours\u0000@example.com"],"bounce":{"type":"Permanent"}}}`, "msg_nul", "", "", resendSigned},
		{`{"type":"email.bounced","data":{"email_id":"e-ours","to":"ours@example.com","bounce":{"type":"Permanent"}}}`, "msg_str", "", "", resendSigned},
		{`{"type":"email.bounced","data":{"email_id":"\u0000","to":[],"bounce":null}}`, "msg_empty", "", "", resendSigned},
		{`{"type":5}`, "msg_num", "", "", resendSigned},
		{`not json`, "msg_nj", "", "", resendSigned},
		{ours, "msg_" + strings.Repeat("x", 100), "", "", resendSigned},
		{ours, "msg_h", "1700000000", "v1,AAAA", resendHeadersAsGiven},
		{ours, "msg_h2", "now", "v1,AAAA v2,BBBB", resendHeadersAsGiven},
		{ours, "", "", "", resendHeadersAsGiven},
		{ours, "msg_w", "", "", resendWrongSecret},
		{ours, "msg_o", "", "", resendTooOld},
	} {
		f.Add([]byte(seed.body), seed.id, seed.ts, seed.sig, seed.mode)
	}

	store, _ := pgtest.NewStore(f)
	ctx := context.Background()
	d, err := store.StartEmailDelivery(ctx, "fuzz/e-ours", "welcome", "ours@example.com")
	require.NoError(f, err)
	require.NoError(f, store.MarkEmailSent(ctx, d.ID, "Welcome", "e-ours"))
	logs := &lineWriter{}
	h := NewResendWebhook(store, svixSecret, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-signing-key-for-fuzzing"))
	recorded := func(t *testing.T) int {
		var n int
		require.NoError(t, store.DB.GetContext(ctx, &n, `SELECT count(*) FROM resend_webhook_events`))
		return n
	}

	f.Fuzz(func(t *testing.T, body []byte, id, ts, sig string, mode uint8) {
		mode %= resendModes
		headers := http.Header{}
		switch mode {
		case resendHeadersAsGiven:
			headers.Set("svix-id", id)
			headers.Set("svix-timestamp", ts)
			headers.Set("svix-signature", sig)
		case resendSigned:
			headers = svixSign(t, svixSecret, id, time.Now(), body)
		case resendWrongSecret:
			headers = svixSign(t, otherSecret, id, time.Now(), body)
		case resendTooOld:
			headers = svixSign(t, svixSecret, id, time.Now().Add(-10*time.Minute), body)
		}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/resend/", bytes.NewReader(body))
		for k, v := range headers {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		before := recorded(t)

		h.ServeHTTP(rec, req)

		status := rec.Code
		if status >= 500 {
			t.Fatalf("status %d for bad input (mode %d): %s", status, mode, rec.Body.String())
		}
		if n := logs.take(); n > 2048 {
			t.Fatalf("a log line of %d bytes (mode %d)", n, mode)
		}
		var strangers []string
		require.NoError(t, store.DB.SelectContext(ctx, &strangers, `SELECT email::text FROM email_suppressions WHERE email <> 'ours@example.com'`))
		if len(strangers) > 0 {
			t.Fatalf("suppressed addresses CleanTrack never sent to: %q", strangers)
		}
		if mode != resendSigned {
			if status < 400 {
				t.Fatalf("status %d without a valid signature (mode %d): %s", status, mode, rec.Body.String())
			}
			if recorded(t) != before {
				t.Fatalf("recorded without a valid signature (mode %d)", mode)
			}
			return
		}
		switch status {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for a signed body: %s", status, rec.Body.String())
		}
	})
}
