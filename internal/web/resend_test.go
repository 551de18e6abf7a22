package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
)

// svixSecret is a Resend signing secret: "whsec_" and base64 key bytes.
var svixSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("resend-test-signing-key-32-bytes"))

// svixSign returns Svix headers signing body as Resend does.
func svixSign(t *testing.T, secret, id string, at time.Time, body []byte) http.Header {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	h := http.Header{}
	h.Set("svix-id", id)
	h.Set("svix-timestamp", ts)
	h.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return h
}

func bounceJSON(to, bounceType string) []byte {
	return []byte(fmt.Sprintf(`{"type":"email.bounced","created_at":"2026-11-26T10:00:00.000Z","data":{"email_id":"e-1","from":"CleanTrack <n@cleantrack.example>","to":[%q],"subject":"Welcome","bounce":{"type":%q,"subType":"General","message":"Mailbox does not exist"}}}`, to, bounceType))
}

type resendFixture struct {
	store *postgres.Store
	srv   *httptest.Server
}

func newResendFixture(t *testing.T, secret string) *resendFixture {
	t.Helper()
	store, _ := pgtest.NewStore(t)
	h := NewResendWebhook(store, secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &resendFixture{store: store, srv: srv}
}

func (f *resendFixture) post(t *testing.T, body []byte, h http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/webhooks/resend/", bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (f *resendFixture) suppressed(t *testing.T, email string) bool {
	t.Helper()
	_, err := f.store.EmailSuppressionFor(context.Background(), email)
	if err == nil {
		return true
	}
	require.ErrorIs(t, err, postgres.ErrNotFound)
	return false
}

func TestResendWebhookSignatures(t *testing.T) {
	t.Parallel()
	f := newResendFixture(t, svixSecret)
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("some-other-signing-key-32-bytes!"))
	body := bounceJSON("gone@example.com", "Permanent")
	now := time.Now()

	tampered := svixSign(t, svixSecret, "msg_tampered", now, body)
	noHeader := svixSign(t, svixSecret, "msg_nohdr", now, body)
	noHeader.Del("svix-signature")

	tests := []struct {
		name    string
		body    []byte
		headers http.Header
		status  int
	}{
		{"tampered body", bytes.Replace(body, []byte("gone@"), []byte("else@"), 1), tampered, http.StatusBadRequest},
		{"wrong secret", body, svixSign(t, otherSecret, "msg_wrong", now, body), http.StatusBadRequest},
		{"old timestamp", body, svixSign(t, svixSecret, "msg_old", now.Add(-10*time.Minute), body), http.StatusBadRequest},
		{"future timestamp", body, svixSign(t, svixSecret, "msg_future", now.Add(10*time.Minute), body), http.StatusBadRequest},
		{"missing header", body, noHeader, http.StatusBadRequest},
		{"valid", body, svixSign(t, svixSecret, "msg_valid", now, body), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := f.post(t, tt.body, tt.headers)
			assert.Equal(t, tt.status, status, "%v", out)
			if tt.status != http.StatusOK {
				assert.NotEmpty(t, out["error"])
				assert.False(t, f.suppressed(t, "else@example.com"))
			}
		})
	}
	assert.True(t, f.suppressed(t, "gone@example.com"), "only the valid delivery suppresses")
}

func TestResendWebhookSuppressions(t *testing.T) {
	t.Parallel()
	f := newResendFixture(t, svixSecret)
	now := time.Now()
	complaint := []byte(`{"type":"email.complained","created_at":"2026-11-26T10:00:00.000Z","data":{"email_id":"e-2","to":["Annoyed@Example.com"],"subject":"Weekly"}}`)
	delivered := []byte(`{"type":"email.delivered","created_at":"2026-11-26T10:00:00.000Z","data":{"email_id":"e-3","to":["fine@example.com"]}}`)

	tests := []struct {
		name       string
		id         string
		body       []byte
		email      string
		suppressed bool
		ignored    bool
	}{
		{"permanent bounce", "msg_1", bounceJSON("gone@example.com", "Permanent"), "gone@example.com", true, false},
		{"transient bounce", "msg_2", bounceJSON("full@example.com", "Transient"), "full@example.com", false, false},
		{"complaint", "msg_3", complaint, "annoyed@example.com", true, false},
		{"delivered", "msg_4", delivered, "fine@example.com", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := f.post(t, tt.body, svixSign(t, svixSecret, tt.id, now, tt.body))
			require.Equal(t, http.StatusOK, status, "%v", out)
			assert.Equal(t, tt.suppressed, f.suppressed(t, tt.email))
			if tt.ignored {
				assert.Equal(t, true, out["ignored"])
			}
		})
	}

	sup, err := f.store.EmailSuppressionFor(context.Background(), "gone@example.com")
	require.NoError(t, err)
	assert.Contains(t, sup.Reason, "bounce: Permanent/General: Mailbox does not exist")
}

func TestResendWebhookDedupsBySvixID(t *testing.T) {
	t.Parallel()
	f := newResendFixture(t, svixSecret)
	ctx := context.Background()
	body := bounceJSON("gone@example.com", "Permanent")
	h := svixSign(t, svixSecret, "msg_dup", time.Now(), body)

	status, out := f.post(t, body, h)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, false, out["duplicate"])

	// Ops lifts the suppression; Svix redelivering the same message must
	// not put it back.
	removed, err := f.store.UnsuppressEmail(ctx, "gone@example.com")
	require.NoError(t, err)
	require.True(t, removed)
	status, out = f.post(t, body, h)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, out["duplicate"])
	assert.False(t, f.suppressed(t, "gone@example.com"))

	var n int
	require.NoError(t, f.store.DB.GetContext(ctx, &n, `SELECT count(*) FROM resend_webhook_events WHERE svix_id = 'msg_dup'`))
	assert.Equal(t, 1, n)
}

func TestResendWebhookMisconfiguredAndMethods(t *testing.T) {
	t.Parallel()
	f := newResendFixture(t, "")
	body := bounceJSON("gone@example.com", "Permanent")
	status, _ := f.post(t, body, svixSign(t, svixSecret, "msg_x", time.Now(), body))
	assert.Equal(t, http.StatusServiceUnavailable, status, "without a secret nothing can be verified")

	g := newResendFixture(t, svixSecret)
	resp, err := http.Get(g.srv.URL + "/webhooks/resend/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, http.MethodPost, resp.Header.Get("Allow"))

	big := bytes.Repeat([]byte("x"), MaxWebhookBody+1)
	status, _ = g.post(t, big, svixSign(t, svixSecret, "msg_big", time.Now(), big))
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)

	notJSON := []byte("not json")
	status, _ = g.post(t, notJSON, svixSign(t, svixSecret, "msg_nj", time.Now(), notJSON))
	assert.Equal(t, http.StatusBadRequest, status)
}
