package resendtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"
)

var endpoints = map[string]bool{"emails": false, "emails/batch": true}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := Request{
		Method:         r.Method,
		Path:           r.URL.Path,
		Header:         r.Header.Clone(),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Raw:            raw,
		At:             time.Now(),
	}
	// Any path prefix of the base URL (a proxy's) is accepted before the
	// API's own paths.
	endpoint := ""
	for _, e := range []string{"emails/batch", "emails"} {
		if req.Path == "/"+e || strings.HasSuffix(req.Path, "/"+e) {
			endpoint = e
			break
		}
	}
	req.Batch = endpoints[endpoint]
	if req.Batch {
		req.BatchValidation = r.Header.Get("x-batch-validation")
		if req.BatchValidation == "" {
			req.BatchValidation = Strict
		}
		var batch []resend.SendEmailRequest
		if json.Unmarshal(raw, &batch) == nil {
			req.Emails = batch
		}
	} else {
		var one resend.SendEmailRequest
		if json.Unmarshal(raw, &one) == nil {
			req.Emails = []resend.SendEmailRequest{one}
		}
	}

	s.mu.Lock()
	s.n++
	req.N = s.n
	s.keys[req.IdempotencyKey]++
	delay, hook := s.delay, s.hook
	s.inFlight++
	s.mu.Unlock()

	var status int
	var body []byte
	var header map[string]string
	reply, scripted := s.scripted(hook, req)
	switch {
	case scripted:
		status, body = errorBody(reply)
		header = reply.headers()
		hold(r, delay)
	case endpoint == "" && accountEndpoint(req.Path):
		status, body = s.serveAccount(r)
	case endpoint == "":
		status, body = errorBody(Reply{Status: http.StatusNotFound})
	case r.Method != http.MethodPost:
		status, body = errorBody(Reply{Status: http.StatusMethodNotAllowed})
	default:
		status, body, header, req.Replayed = s.handle(r, &req, raw, delay)
	}

	s.mu.Lock()
	s.inFlight--
	s.statuses[status]++
	req.Status = status
	if s.dropBodies {
		req.Raw = nil
		for i := range req.Emails {
			req.Emails[i].Html, req.Emails[i].Text = "", ""
		}
	}
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// scripted returns the scripted answer for req, if any. The hook runs
// without the lock, so it may call the Server's methods.
func (s *Server) scripted(hook Hook, req Request) (Reply, bool) {
	if hook != nil {
		if r := hook(req.N, req); r != nil && !r.passes() {
			return *r, true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.byNumber[req.N]; ok {
		delete(s.byNumber, req.N)
		if !r.passes() {
			return r, true
		}
		return Reply{}, false
	}
	if len(s.next) > 0 {
		r := s.next[0]
		s.next = s.next[1:]
		if !r.passes() {
			return r, true
		}
	}
	return Reply{}, false
}

// handle answers a request to one of the endpoints as Resend would.
func (s *Server) handle(r *http.Request, req *Request, raw []byte, delay time.Duration) (status int, body []byte, header map[string]string, replayed bool) {
	auth := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	s.mu.Lock()
	wantKey := s.apiKey
	s.mu.Unlock()
	switch {
	case auth == "":
		status, body = errorBody(Reply{Status: http.StatusUnauthorized})
		return status, body, nil, false
	case wantKey != "" && auth != wantKey:
		status, body = errorBody(Reply{Status: http.StatusForbidden})
		return status, body, nil, false
	}

	s.mu.Lock()
	if limit, h := s.rateLimited(req.At); h != nil {
		s.mu.Unlock()
		status, body = errorBody(Reply{Status: http.StatusTooManyRequests, Message: fmt.Sprintf(
			"Too many requests. You can only make %d requests per second. See rate limit response headers for more information. Or contact support to increase rate limit.", limit)})
		return status, body, h, false
	}
	header = s.rateHeaders()
	s.mu.Unlock()

	key := req.IdempotencyKey
	if len(key) > MaxIdempotencyKey {
		status, body = errorBody(Reply{Status: http.StatusBadRequest, Name: "invalid_idempotency_key",
			Message: fmt.Sprintf("The idempotency key must be between 1 and %d characters.", MaxIdempotencyKey)})
		return status, body, header, false
	}
	slot := r.URL.Path + "\x00" + key
	hash := sha256.Sum256(canonical(raw))
	if key != "" {
		s.mu.Lock()
		if s.inProgress[slot] {
			s.mu.Unlock()
			status, body = errorBody(Reply{Status: http.StatusConflict, Name: "concurrent_idempotent_requests",
				Message: "Same idempotency key used while original request is still in progress."})
			return status, body, header, false
		}
		if prev, ok := s.answers[slot]; ok {
			s.mu.Unlock()
			if prev.bodyHash != hash {
				status, body = errorBody(Reply{Status: http.StatusConflict, Name: "invalid_idempotent_request",
					Message: "Same idempotency key used with a different request payload. Change your idempotency key or payload."})
				return status, body, header, false
			}
			hold(r, delay)
			return prev.status, prev.body, header, true
		}
		s.inProgress[slot] = true
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.inProgress, slot)
			s.mu.Unlock()
		}()
	}
	// Resend has the request once it is received: a client that gives up
	// while it is held does not stop the delivery.
	hold(r, delay)

	if req.Batch {
		status, body = s.sendBatch(req)
	} else {
		status, body = s.sendOne(req)
	}
	if key != "" && status >= 200 && status < 300 {
		s.mu.Lock()
		s.answers[slot] = answer{bodyHash: hash, status: status, body: body}
		s.mu.Unlock()
	}
	return status, body, header, false
}

func (s *Server) sendOne(req *Request) (int, []byte) {
	if req.Emails == nil {
		return errorBody(Reply{Status: http.StatusUnprocessableEntity, Message: "The request body is not a valid email."})
	}
	e := req.Emails[0]
	s.mu.Lock()
	msg := s.invalid(e, false)
	s.mu.Unlock()
	if msg != "" {
		return errorBody(Reply{Status: http.StatusUnprocessableEntity, Message: msg})
	}
	id := s.deliver(req, e, 0)
	b, _ := json.Marshal(resend.SendEmailResponse{Id: id})
	return http.StatusOK, b
}

func (s *Server) sendBatch(req *Request) (int, []byte) {
	switch {
	case req.BatchValidation != Strict && req.BatchValidation != Permissive:
		return errorBody(Reply{Status: http.StatusUnprocessableEntity,
			Message: fmt.Sprintf("x-batch-validation must be %s or %s.", Strict, Permissive)})
	case req.Emails == nil:
		return errorBody(Reply{Status: http.StatusUnprocessableEntity, Message: "The request body must be an array of emails."})
	case len(req.Emails) == 0:
		return errorBody(Reply{Status: http.StatusUnprocessableEntity, Message: "The batch holds no email."})
	case len(req.Emails) > MaxBatch:
		return errorBody(Reply{Status: http.StatusUnprocessableEntity,
			Message: fmt.Sprintf("Too many emails in the batch: %d, the maximum is %d.", len(req.Emails), MaxBatch)})
	}
	var errs []resend.BatchError
	s.mu.Lock()
	for i, e := range req.Emails {
		if msg := s.invalid(e, true); msg != "" {
			errs = append(errs, resend.BatchError{Index: i, Message: msg})
		}
	}
	s.mu.Unlock()
	if len(errs) > 0 && req.BatchValidation == Strict {
		return errorBody(Reply{Status: http.StatusUnprocessableEntity,
			Message: fmt.Sprintf("emails[%d]: %s", errs[0].Index, errs[0].Message)})
	}
	out := resend.BatchEmailResponse{Data: []resend.SendEmailResponse{}, Errors: errs}
	refused := map[int]bool{}
	for _, e := range errs {
		refused[e.Index] = true
	}
	for i, e := range req.Emails {
		if !refused[i] {
			out.Data = append(out.Data, resend.SendEmailResponse{Id: s.deliver(req, e, i)})
		}
	}
	b, _ := json.Marshal(out)
	return http.StatusOK, b
}

// deliver records e as delivered and returns its id.
func (s *Server) deliver(req *Request, e resend.SendEmailRequest, index int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := "msg_" + strconv.Itoa(len(s.delivered)+1)
	if s.dropBodies {
		e.Html, e.Text = "", ""
	}
	s.delivered = append(s.delivered, Email{SendEmailRequest: e, ID: id, Key: req.IdempotencyKey,
		Batch: req.Batch, Index: index, Request: req.N, At: time.Now()})
	return id
}

var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

const addressFormat = "The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."

// invalid returns why Resend would refuse e, or "". s.mu is held.
func (s *Server) invalid(e resend.SendEmailRequest, batch bool) string {
	switch {
	case e.From == "":
		return "Missing `from` field."
	case !parses(e.From):
		return "Invalid `from` field. " + addressFormat
	case len(e.To) == 0:
		return "Missing `to` field."
	case len(e.To) > MaxRecipients:
		return fmt.Sprintf("Too many recipients in `to`: %d, the maximum is %d.", len(e.To), MaxRecipients)
	case e.Subject == "":
		return "Missing `subject` field."
	case e.Html == "" && e.Text == "":
		return "Missing `html` or `text` field."
	case batch && len(e.Attachments) > 0:
		return "The `attachments` field is not supported in batch emails."
	case batch && e.ScheduledAt != "":
		return "The `scheduled_at` field is not supported in batch emails."
	}
	for _, to := range e.To {
		if !parses(to) {
			return "Invalid `to` field. " + addressFormat
		}
		if a, err := mail.ParseAddress(to); err == nil {
			if msg, ok := s.refused[strings.ToLower(a.Address)]; ok {
				return msg
			}
		}
	}
	for _, t := range e.Tags {
		if !tagPattern.MatchString(t.Name) || !tagPattern.MatchString(t.Value) {
			return "Tags should only contain ASCII letters, numbers, underscores, or dashes."
		}
	}
	return ""
}

func parses(address string) bool {
	_, err := mail.ParseAddress(address)
	return err == nil
}

// rateLimited admits a request at now (nil headers) or refuses it with
// Resend's headers; limit is the requests admitted per second. s.mu is held.
func (s *Server) rateLimited(now time.Time) (limit int, refused map[string]string) {
	if s.perSecond <= 0 {
		return 0, nil
	}
	cut := 0
	for cut < len(s.window) && now.Sub(s.window[cut]) >= time.Second {
		cut++
	}
	s.window = s.window[cut:]
	if len(s.window) < s.perSecond {
		s.window = append(s.window, now)
		return s.perSecond, nil
	}
	wait := time.Second - now.Sub(s.window[0])
	secs := strconv.Itoa(int((wait + time.Second - 1) / time.Second))
	return s.perSecond, map[string]string{
		"Retry-After":         secs,
		"ratelimit-limit":     strconv.Itoa(s.perSecond),
		"ratelimit-remaining": "0",
		"ratelimit-reset":     secs,
	}
}

// rateHeaders are the ratelimit-* headers of an admitted request. s.mu is held.
func (s *Server) rateHeaders() map[string]string {
	if s.perSecond <= 0 {
		return nil
	}
	return map[string]string{
		"ratelimit-limit":     strconv.Itoa(s.perSecond),
		"ratelimit-remaining": strconv.Itoa(s.perSecond - len(s.window)),
		"ratelimit-reset":     "1",
	}
}

// hold waits d, or until the client goes away.
func hold(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// defaults are Resend's error names and messages by status.
var defaults = map[int]struct{ name, message string }{
	http.StatusBadRequest:          {"validation_error", "The request is invalid."},
	http.StatusUnauthorized:        {"missing_api_key", "Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY"},
	http.StatusForbidden:           {"invalid_api_key", "API key is invalid."},
	http.StatusNotFound:            {"not_found", "The requested endpoint does not exist."},
	http.StatusMethodNotAllowed:    {"method_not_allowed", "Method is not allowed for the requested path."},
	http.StatusConflict:            {"invalid_idempotent_request", "Same idempotency key used with a different request payload. Change your idempotency key or payload."},
	http.StatusUnprocessableEntity: {"validation_error", "The request is invalid."},
	http.StatusTooManyRequests:     {"rate_limit_exceeded", "Too many requests. You can only make 2 requests per second. See rate limit response headers for more information. Or contact support to increase rate limit."},
	http.StatusInternalServerError: {"internal_server_error", "An unexpected error occurred."},
	http.StatusServiceUnavailable:  {"service_unavailable", "The service is temporarily unavailable."},
}

// errorBody renders r as Resend renders its errors.
func errorBody(r Reply) (int, []byte) {
	d := defaults[r.Status]
	if r.Name == "" {
		r.Name = d.name
	}
	if r.Message == "" {
		r.Message = d.message
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(struct {
		StatusCode int    `json:"statusCode"`
		Name       string `json:"name,omitempty"`
		Message    string `json:"message"`
	}{r.Status, r.Name, r.Message})
	return r.Status, buf.Bytes()
}

// headers are the headers a scripted reply is answered with.
func (r Reply) headers() map[string]string {
	h := map[string]string{}
	for k, v := range r.Header {
		h[k] = v
	}
	if r.RetryAfter != "" {
		h["Retry-After"] = r.RetryAfter
	}
	return h
}

// canonical is raw with JSON whitespace and key order normalised, so two
// encodings of one body compare equal, as Resend compares payloads.
func canonical(raw []byte) []byte {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}
