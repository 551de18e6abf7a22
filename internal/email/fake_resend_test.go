package email

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/resend/resend-go/v2"
)

// fakeResend is an httptest stand-in for Resend's POST /emails. It records
// every request and answers with the scripted replies in order, then 200.
type fakeResend struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []fakeRequest
	replies  []fakeReply
}

type fakeRequest struct {
	Path           string
	IdempotencyKey string
	Authorization  string
	Raw            string
	Body           resend.SendEmailRequest
}

type fakeReply struct {
	status     int
	retryAfter string
	name       string
	message    string
}

func newFakeResend(t *testing.T, replies ...fakeReply) *fakeResend {
	t.Helper()
	f := &fakeResend{replies: replies}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL to give the client, with its trailing slash.
func (f *fakeResend) URL() string { return f.srv.URL + "/" }

func (f *fakeResend) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := fakeRequest{
		Path:           r.Method + " " + r.URL.Path,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Authorization:  r.Header.Get("Authorization"),
		Raw:            string(raw),
	}
	_ = json.Unmarshal(raw, &req.Body)

	f.mu.Lock()
	f.requests = append(f.requests, req)
	n := len(f.requests)
	reply := fakeReply{status: http.StatusOK}
	if len(f.replies) > 0 {
		reply, f.replies = f.replies[0], f.replies[1:]
	}
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if reply.retryAfter != "" {
		w.Header().Set("Retry-After", reply.retryAfter)
	}
	w.WriteHeader(reply.status)
	if reply.status == http.StatusOK {
		fmt.Fprintf(w, `{"id":"msg_%d"}`, n)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": reply.status, "name": reply.name, "message": reply.message})
}

func (f *fakeResend) Requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func (f *fakeResend) Count() int { return len(f.Requests()) }
