// Package resendtest is the one fake of Resend's email API, for the tests,
// the benchmark and the drills. It serves POST /emails and POST /emails/batch
// (and, for cleantrack email check, GET /domains, /domains/{id} and
// /webhooks from what PutDomain and PutWebhook gave it) over httptest the
// way Resend does: one Idempotency-Key per request (a whole
// batch shares one), the same key and body answered again without a second
// delivery, the same key with another body refused with 409
// invalid_idempotent_request, strict or permissive batch validation, and an
// optional rate limit answered with 429 rate_limit_exceeded and Retry-After.
//
// Tests script failures (ReplyNext, ReplyTo, SetHook), hold requests
// (SetDelay), and read what happened: every request (Requests) and every email
// actually delivered, each once (Delivered).
//
// Point resend-go at URL (it keeps the trailing slash resend-go needs), or
// give it as RESEND_BASE_URL to a process.
package resendtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resend/resend-go/v2"
)

// Resend's limits, as its API enforces them.
const (
	MaxBatch          = 100 // emails in one POST /emails/batch
	MaxRecipients     = 50  // addresses in one email's to
	MaxIdempotencyKey = 256 // characters of an Idempotency-Key
)

// Batch validation modes, the values of the x-batch-validation header.
const (
	Strict     = "strict"
	Permissive = "permissive"
)

// Reply is a scripted answer. Name and Message default to what Resend says
// for the status. A Reply whose Status is 0 or 2xx lets the request through
// to normal handling, so a script can say "fail, then behave".
type Reply struct {
	Status     int
	Name       string            // Resend's error name, such as rate_limit_exceeded
	Message    string            // the error message
	RetryAfter string            // the Retry-After header, in seconds
	Header     map[string]string // more headers, such as ratelimit-reset
}

func (r Reply) passes() bool { return r.Status == 0 || (r.Status >= 200 && r.Status < 300) }

// Hook, when set, is asked about every request before anything else: n is
// the request's number (from 1, across both endpoints). Returning nil or a
// passing Reply lets the request through; another Reply is the answer.
type Hook func(n int, req Request) *Reply

// Request is one request the fake received, whatever it answered.
type Request struct {
	N               int // arrival order, from 1, across both endpoints
	Method          string
	Path            string // as received, with any path prefix of the base URL
	Header          http.Header
	IdempotencyKey  string
	Batch           bool   // POST /emails/batch
	BatchValidation string // Strict or Permissive, for a batch
	// Emails is the email of POST /emails or the members of a batch; nil
	// when the body is not JSON of that shape.
	Emails []resend.SendEmailRequest
	Raw    []byte // the body; nil after DropBodies
	At     time.Time

	Status   int  // the status answered
	Replayed bool // answered from an earlier request with the same key and body
}

// Email returns the request's first (for POST /emails, its only) email.
func (r Request) Email() resend.SendEmailRequest {
	if len(r.Emails) == 0 {
		return resend.SendEmailRequest{}
	}
	return r.Emails[0]
}

// Email is one email the fake delivered. Each delivery is recorded once: a
// request answered again from its idempotency key delivers nothing.
type Email struct {
	resend.SendEmailRequest
	ID      string // the id answered for it
	Key     string // the Idempotency-Key of the request that delivered it
	Batch   bool
	Index   int // position in its batch; 0 for POST /emails
	Request int // the delivering request's N
	At      time.Time
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	n          int
	requests   []Request
	delivered  []Email
	statuses   map[int]int
	keys       map[string]int    // requests per Idempotency-Key
	answers    map[string]answer // first successful answer per endpoint and key
	inProgress map[string]bool
	inFlight   int
	next       []Reply
	byNumber   map[int]Reply
	hook       Hook
	delay      time.Duration
	perSecond  int
	window     []time.Time // requests admitted by the rate limit in the last second
	apiKey     string
	refused    map[string]string // lower-cased address -> validation message
	restricted map[string]bool   // sending-only API keys
	domains    []resend.Domain
	webhooks   []resend.WebhookInList
	dropBodies bool
}

// answer is what a key answered the first time, for replays.
type answer struct {
	bodyHash [32]byte
	status   int
	body     []byte
}

// NewServer starts a fake; Close it when done.
func NewServer() *Server {
	s := &Server{
		statuses:   map[int]int{},
		keys:       map[string]int{},
		answers:    map[string]answer{},
		inProgress: map[string]bool{},
		byNumber:   map[int]Reply{},
		refused:    map[string]string{},
		restricted: map[string]bool{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// New starts a fake that is closed when tb ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := NewServer()
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL for resend-go's client.BaseURL or RESEND_BASE_URL,
// with its trailing slash.
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close shuts the server down; later requests fail to connect.
func (s *Server) Close() { s.srv.Close() }

// ReplyNext scripts the answers to the next requests, in order, after any
// scripted earlier.
func (s *Server) ReplyNext(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = append(s.next, replies...)
}

// ReplyTo scripts the answer to the nth request (from 1, counting every
// request to either endpoint). It takes precedence over ReplyNext.
func (s *Server) ReplyTo(n int, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byNumber[n] = r
}

// SetHook installs h (nil removes it); see Hook.
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// SetDelay holds every request that long before it is answered (0: none).
// A held request counts in InFlight, and its key is in progress: another
// request with the key meanwhile gets 409 concurrent_idempotent_requests.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetRateLimit admits at most perSecond requests in any one second, across
// both endpoints, as Resend's team limit does; past it the answer is 429
// rate_limit_exceeded with Retry-After. 0 lifts the limit. Scripted answers
// are given before the limit is consulted and do not count against it.
func (s *Server) SetRateLimit(perSecond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perSecond = perSecond
	s.window = nil
}

// RequireAPIKey makes the fake answer 403 to any other key. By default any
// non-empty key is accepted; a missing one is always a 401.
func (s *Server) RequireAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// RefuseRecipient makes an email to address fail validation with message,
// as Resend refuses an address it will not send to: a 422 for POST /emails
// and a strict batch, an entry in errors for a permissive batch.
func (s *Server) RefuseRecipient(address, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[strings.ToLower(address)] = message
}

// DropBodies stops keeping request bodies and the emails' HTML and text,
// for the benchmark's volumes. Idempotency still compares bodies (by hash).
func (s *Server) DropBodies() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropBodies = true
}

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestCount is len(Requests()) without the copy.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Delivered returns the emails delivered so far, in delivery order.
func (s *Server) Delivered() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Email(nil), s.delivered...)
}

// DeliveredCount is len(Delivered()) without the copy.
func (s *Server) DeliveredCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.delivered)
}

// Statuses counts the answers given, by HTTP status.
func (s *Server) Statuses() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.statuses))
	for k, v := range s.statuses {
		out[k] = v
	}
	return out
}

// Keys counts the requests received per Idempotency-Key (requests without
// one count under "").
func (s *Server) Keys() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.keys))
	for k, v := range s.keys {
		out[k] = v
	}
	return out
}

// InFlight is the number of requests being held (see SetDelay).
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}
