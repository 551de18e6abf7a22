package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/testfactory"
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
	return bounceFor("e-1", bounceType, to)
}

// bounceFor is a bounce of Resend email emailID naming the recipients to.
func bounceFor(emailID, bounceType string, to ...string) []byte {
	rcpts, err := json.Marshal(to)
	if err != nil {
		panic(err)
	}
	return []byte(fmt.Sprintf(`{"type":"email.bounced","created_at":"2026-11-26T10:00:00.000Z","data":{"email_id":%q,"from":"CleanTrack <n@cleantrack.example>","to":%s,"subject":"Welcome","bounce":{"type":%q,"subType":"General","message":"Mailbox does not exist"}}}`, emailID, rcpts, bounceType))
}

type resendFixture struct {
	store *postgres.Store
	srv   *httptest.Server
}

func newResendFixture(t *testing.T, secret string) *resendFixture {
	t.Helper()
	store, _ := pgtest.NewStore(t)
	return serveResend(t, store, secret)
}

func serveResend(t *testing.T, store *postgres.Store, secret string) *resendFixture {
	t.Helper()
	h := NewResendWebhook(store, secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &resendFixture{store: store, srv: srv}
}

// sent records that CleanTrack sent an email to through Resend, which gave
// it the id emailID.
func (f *resendFixture) sent(t *testing.T, emailID, to string) {
	t.Helper()
	ctx := context.Background()
	d, err := f.store.StartEmailDelivery(ctx, "test/"+emailID+"/"+to, "welcome", to)
	require.NoError(t, err)
	require.NoError(t, f.store.MarkEmailSent(ctx, d.ID, "Welcome", emailID))
}

// recipients returns the recorded outcome of each recipient of the
// delivery svixID, by address.
func (f *resendFixture) recipients(t *testing.T, svixID string) map[string]string {
	t.Helper()
	var rows []struct {
		Email   string `db:"email"`
		Outcome string `db:"outcome"`
	}
	require.NoError(t, f.store.DB.SelectContext(context.Background(), &rows,
		`SELECT email, outcome FROM resend_webhook_recipients WHERE svix_id = $1 ORDER BY position`, svixID))
	out := map[string]string{}
	for _, r := range rows {
		out[r.Email] = r.Outcome
	}
	return out
}

// note returns the note recorded with the delivery svixID.
func (f *resendFixture) note(t *testing.T, svixID string) string {
	t.Helper()
	var note sql.NullString
	require.NoError(t, f.store.DB.GetContext(context.Background(), &note,
		`SELECT note FROM resend_webhook_events WHERE svix_id = $1`, svixID))
	return note.String
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
	f.sent(t, "e-1", "gone@example.com")
	f.sent(t, "e-1", "else@example.com") // what a tampered body would suppress
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
	f.sent(t, "e-1", "gone@example.com")
	f.sent(t, "e-1", "full@example.com")
	f.sent(t, "e-2", "annoyed@example.com")
	f.sent(t, "e-3", "fine@example.com")
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
	f.sent(t, "e-1", "gone@example.com")
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

// A signed bounce or complaint about an email CleanTrack never sent (another
// product on the same Resend account, a leaked secret) suppresses nobody: it
// is recorded with every recipient and a note saying why.
func TestResendWebhookIgnoresEmailsWeNeverSent(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	f := serveResend(t, store, svixSecret)
	owner := testfactory.Account(t, store, &testfactory.AccountOpts{Slug: "acme"}).OwnerEmail
	f.sent(t, "e-ours", owner)
	now := time.Now()
	complaint := []byte(fmt.Sprintf(`{"type":"email.complained","created_at":"2026-11-26T10:00:00.000Z","data":{"email_id":"e-theirs","to":[%q]}}`, owner))

	tests := []struct {
		name, id string
		body     []byte
		note     string
	}{
		{"bounce of another email", "msg_theirs", bounceFor("e-theirs", "Permanent", owner, "x@example.com"), "email e-theirs is not one CleanTrack sent; nobody suppressed"},
		{"complaint about another email", "msg_theirs_c", complaint, "email e-theirs is not one CleanTrack sent; nobody suppressed"},
		{"bounce without email id", "msg_noid", bounceFor("", "Permanent", owner), "the event names no email_id; nobody suppressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := f.post(t, tt.body, svixSign(t, svixSecret, tt.id, now, tt.body))
			require.Equal(t, http.StatusOK, status, "%v", out)
			assert.Equal(t, float64(0), out["suppressed"])
			assert.Equal(t, tt.note, out["note"])
			assert.False(t, f.suppressed(t, owner), "the account owner stays reachable")
			assert.Equal(t, tt.note, f.note(t, tt.id))
			for addr, outcome := range f.recipients(t, tt.id) {
				assert.Equal(t, postgres.RecipientNotSent, outcome, addr)
			}
			assert.Contains(t, f.recipients(t, tt.id), owner)
		})
	}
}

// A bounce of an email CleanTrack sent suppresses the address it was sent
// to, spelled as CleanTrack spelled it, and nobody else the event names.
func TestResendWebhookSuppressesOnlyOurRecipient(t *testing.T) {
	t.Parallel()
	f := newResendFixture(t, svixSecret)
	f.sent(t, "e-1", "gone@example.com")
	f.sent(t, "e-2", "other@example.com") // ours, but for another email
	body := bounceFor("e-1", "Permanent", " GONE@Example.com", "other@example.com", "stranger@example.com")

	status, out := f.post(t, body, svixSign(t, svixSecret, "msg_mixed", time.Now(), body))

	require.Equal(t, http.StatusOK, status, "%v", out)
	assert.Equal(t, float64(1), out["suppressed"])
	assert.Equal(t, float64(3), out["recipients"])
	assert.Equal(t, "2 of 3 recipients are not addresses CleanTrack sent email e-1 to; not suppressed", out["note"])
	sup, err := f.store.EmailSuppressionFor(context.Background(), "gone@example.com")
	require.NoError(t, err)
	assert.Equal(t, "gone@example.com", sup.Email)
	assert.Contains(t, sup.Reason, "(resend email e-1)")
	assert.False(t, f.suppressed(t, "other@example.com"))
	assert.False(t, f.suppressed(t, "stranger@example.com"))
	assert.Equal(t, map[string]string{
		" GONE@Example.com":    postgres.RecipientSuppressed,
		"other@example.com":    postgres.RecipientNotSent,
		"stranger@example.com": postgres.RecipientNotSent,
	}, f.recipients(t, "msg_mixed"))

	// The same address bouncing again for another email: already on the list.
	f.sent(t, "e-3", "gone@example.com")
	again := bounceFor("e-3", "Permanent", "gone@example.com")
	status, out = f.post(t, again, svixSign(t, svixSecret, "msg_again", time.Now(), again))
	require.Equal(t, http.StatusOK, status, "%v", out)
	assert.Equal(t, float64(0), out["suppressed"])
	assert.Equal(t, map[string]string{"gone@example.com": postgres.RecipientAlreadySuppressed}, f.recipients(t, "msg_again"))
	assert.Nil(t, out["note"], "every recipient was ours")

	// A transient bounce records its recipient and suppresses nobody.
	f.sent(t, "e-4", "full@example.com")
	transient := bounceFor("e-4", "Transient", "full@example.com")
	status, _ = f.post(t, transient, svixSign(t, svixSecret, "msg_transient", time.Now(), transient))
	require.Equal(t, http.StatusOK, status)
	assert.False(t, f.suppressed(t, "full@example.com"))
	assert.Equal(t, map[string]string{"full@example.com": postgres.RecipientNotPermanent}, f.recipients(t, "msg_transient"))
}

// countingConnector counts the statements sent through a connection pool.
type countingConnector struct {
	driver.Connector
	n *atomic.Int64
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: c.n}, nil
}

// countingConn passes everything to lib/pq's connection and counts its
// queries and execs.
type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.n.Add(1)
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

// A bounce naming 20,000 recipients (the most a 1 MiB body holds, about)
// is recorded, every recipient with it, inside the handler's own 3 s limit:
// one lookup of the email and one statement, whatever the number of
// recipients.
func TestResendWebhookRecordsManyRecipientsInOneStatement(t *testing.T) {
	t.Parallel()
	base, dbURL := pgtest.NewStore(t)
	connector, err := pq.NewConnector(dbURL)
	require.NoError(t, err)
	var statements atomic.Int64
	counted := &postgres.Store{DB: sqlx.NewDb(sql.OpenDB(countingConnector{Connector: connector, n: &statements}), "postgres")}
	t.Cleanup(func() { counted.Close() })
	f := serveResend(t, counted, svixSecret)
	(&resendFixture{store: base}).sent(t, "e-big", "r-00777@example.com")
	to := make([]string, 20000)
	for i := range to {
		to[i] = fmt.Sprintf("r-%05d@example.com", i)
	}
	body := bounceFor("e-big", "Permanent", to...)
	require.Less(t, len(body), MaxWebhookBody)

	statements.Store(0)
	status, out := f.post(t, body, svixSign(t, svixSecret, "msg_big", time.Now(), body))

	require.Equal(t, http.StatusOK, status, "%v", out)
	assert.Equal(t, int64(2), statements.Load(), "one lookup and one statement recording everything")
	assert.Equal(t, float64(20000), out["recipients"])
	assert.Equal(t, float64(1), out["suppressed"])
	var n int
	require.NoError(t, base.DB.GetContext(context.Background(), &n, `SELECT count(*) FROM resend_webhook_recipients WHERE svix_id = 'msg_big'`))
	assert.Equal(t, 20000, n)
	assert.True(t, f.suppressed(t, "r-00777@example.com"))
	assert.False(t, f.suppressed(t, "r-00778@example.com"))
}

// Requests no retry can fix are refused with 400 (or 413) and the header
// that stops Svix's retries; a bad signature is refused without it, since a
// wrong secret here would otherwise lose real deliveries.
func TestResendWebhookPermanentFailures(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	store, _ := pgtest.NewStore(t)
	srv := httptest.NewServer(NewResendWebhook(store, svixSecret, slog.New(slog.NewJSONHandler(&logs, nil))))
	t.Cleanup(srv.Close)
	f := &resendFixture{store: store, srv: srv}
	f.sent(t, "e-1", "gone@example.com")
	now := time.Now()
	body := bounceJSON("gone@example.com", "Permanent")
	longID := "msg_" + strings.Repeat("x", 300<<10)
	nul := []byte(`{"type":"email.bounced","data":{"email_id":"e-1","to":["gone\u0000@example.com"],"bounce":{"type":"Permanent"}}}`)
	badTimestamp := svixSign(t, svixSecret, "msg_ts", now, body)
	badTimestamp.Set("svix-timestamp", strings.Repeat("9", 5000))

	tests := []struct {
		name    string
		body    []byte
		headers http.Header
		status  int
		abort   bool
	}{
		{"svix-id longer than Svix's", body, svixSign(t, svixSecret, longID, now, body), http.StatusBadRequest, true},
		{"svix-id one over the limit", body, svixSign(t, svixSecret, "msg_"+strings.Repeat("x", 61), now, body), http.StatusBadRequest, true},
		{"svix-timestamp not a time", body, badTimestamp, http.StatusBadRequest, true},
		{"signed body PostgreSQL cannot store", nul, svixSign(t, svixSecret, "msg_nul", now, nul), http.StatusBadRequest, true},
		{"signed body not an event", []byte(`{"data":{}}`), svixSign(t, svixSecret, "msg_notype", now, []byte(`{"data":{}}`)), http.StatusBadRequest, true},
		{"bad signature", body, svixSign(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another-key")), "msg_sig", now, body), http.StatusBadRequest, false},
		{"svix-id at the limit", body, svixSign(t, svixSecret, "msg_"+strings.Repeat("x", 60), now, body), http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(tt.body))
			require.NoError(t, err)
			req.Header = tt.headers
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			abort := resp.Header.Get("webhook-delivery") == "abort-message"
			assert.Equal(t, tt.abort, abort, "webhook-delivery: abort-message")
		})
	}
	var suppressed []string
	require.NoError(t, store.DB.SelectContext(context.Background(), &suppressed, `SELECT email::text FROM email_suppressions`))
	assert.Equal(t, []string{"gone@example.com"}, suppressed, "only the one accepted bounce suppressed anybody")

	// No log line carries the 300 KB id or the 5,000-digit timestamp.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		assert.Less(t, len(line), 2000, "log line: %.300s", line)
	}
	assert.Contains(t, logs.String(), "(307204 bytes)", "a cut value says how long it was")
}

func TestResendWebhookUndecodableSecretIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newResendFixture(t, "whsec_not base64!")
	body := bounceJSON("gone@example.com", "Permanent")
	status, out := f.post(t, body, svixSign(t, svixSecret, "msg_x", time.Now(), body))
	assert.Equal(t, http.StatusServiceUnavailable, status, "Svix keeps the delivery until the secret is fixed")
	assert.Equal(t, "RESEND_WEBHOOK_SECRET is not whsec_ followed by base64", out["error"])
}
