package email

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"
)

// newResendClient builds a resend-go client whose requests go to baseURL
// (empty: Resend's API) through a transport that records each response's
// status and error body, which resend-go otherwise reduces to a string.
func newResendClient(apiKey, baseURL string, timeout time.Duration) (*resend.Client, error) {
	hc := &http.Client{Timeout: timeout, Transport: captureTransport{base: http.DefaultTransport}}
	c := resend.NewCustomClient(hc, apiKey)
	if baseURL != "" {
		// resend-go resolves "emails" against BaseURL: without the trailing
		// slash a path prefix (https://proxy/resend) would be dropped.
		if !strings.HasSuffix(baseURL, "/") {
			baseURL += "/"
		}
		u, err := url.Parse(baseURL)
		if err != nil {
			return nil, fmt.Errorf("RESEND_BASE_URL: not a valid URL")
		}
		c.BaseURL = u
	}
	return c, nil
}

// apiResponse is what captureTransport saw of one response.
type apiResponse struct {
	status  int
	name    string // Resend's error name, such as validation_error
	message string
}

type responseKey struct{}

// withResponse returns a context whose request's response captureTransport
// records into r. One per call, so concurrent sends do not mix them up.
func withResponse(ctx context.Context, r *apiResponse) context.Context {
	return context.WithValue(ctx, responseKey{}, r)
}

type turnKey struct{}

// withTurn makes captureTransport call wait (the shared rate's turn) right
// before the request leaves, after resend-go has encoded its body: a batch
// of 100 emails takes a while to encode, and on a busy machine that time
// varies, so taking the turn before encoding would let requests arrive
// closer together than they were spaced, into a 429.
func withTurn(ctx context.Context, wait func(context.Context) error) context.Context {
	return context.WithValue(ctx, turnKey{}, wait)
}

// turnError is the turn's own error (a rate limit to wait out in the queue,
// or the limiter failing), which stopped the request before it left.
type turnError struct{ err error }

func (e turnError) Error() string { return e.err.Error() }
func (e turnError) Unwrap() error { return e.err }

// captureTransport takes the request's turn of the shared rate (withTurn)
// and records the status and the error body's name and message of responses
// to requests whose context carries an *apiResponse.
type captureTransport struct{ base http.RoundTripper }

func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if wait, ok := req.Context().Value(turnKey{}).(func(context.Context) error); ok {
		if err := wait(req.Context()); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, turnError{err}
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	rec, ok := req.Context().Value(responseKey{}).(*apiResponse)
	if !ok {
		return resp, nil
	}
	rec.status = resp.StatusCode
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var e struct {
			Name    string `json:"name"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &e) == nil {
			rec.name, rec.message = e.Name, e.Message
		}
	}
	return resp, nil
}

// failureClass is how a failed Resend call is handled.
type failureClass int

const (
	// classRetry: 5xx, timeouts, network errors, 409 concurrent request;
	// retried with backoff, counted against the retry budget.
	classRetry failureClass = iota
	// classRateLimited: 429; retried after Retry-After, not counted.
	classRateLimited
	// classQuota: 429 for the daily or monthly quota; retried much later,
	// not counted, logged at error level.
	classQuota
	// classPermanent: 400/422 validation, 401, 403, 409 invalid idempotent
	// request and other client errors; archived at once, row failed.
	classPermanent
)

func (c failureClass) String() string {
	switch c {
	case classRateLimited:
		return "rate_limited"
	case classQuota:
		return "quota"
	case classPermanent:
		return "permanent"
	}
	return "retry"
}

// Delays for a 429 without a usable Retry-After, and for quotas.
const (
	defaultRetryAfter = time.Second
	dailyQuotaDelay   = time.Hour
	monthlyQuotaDelay = 6 * time.Hour
)

// classify sorts a failed send into its failure class (the failureClass
// constants above say which answers fall in each and how each is handled)
// and, for a 429, the delay before the next try: Resend's Retry-After, or a
// second without one; at least an hour for the daily quota and six hours for
// the monthly one, which Resend also answers with 429 and tells apart only in
// its message.
func classify(resp apiResponse, err error) (failureClass, time.Duration) {
	var rl *resend.RateLimitError
	if errors.As(err, &rl) || resp.status == http.StatusTooManyRequests {
		after := defaultRetryAfter
		what := resp.name + " " + resp.message
		if rl != nil {
			what += " " + rl.Message
			if secs, perr := strconv.ParseFloat(strings.TrimSpace(rl.RetryAfter), 64); perr == nil && secs > 0 {
				after = time.Duration(secs * float64(time.Second))
			}
		}
		what = strings.ToLower(what)
		switch {
		case strings.Contains(what, "monthly"):
			return classQuota, max(after, monthlyQuotaDelay)
		case strings.Contains(what, "daily") || strings.Contains(what, "quota"):
			return classQuota, max(after, dailyQuotaDelay)
		}
		return classRateLimited, after
	}
	switch s := resp.status; {
	case s == 0, s == http.StatusRequestTimeout, s >= 500:
		return classRetry, 0
	case s == http.StatusConflict:
		if resp.name == "invalid_idempotent_request" {
			return classPermanent, 0
		}
		// concurrent_idempotent_requests: the first request with this key is
		// still running; asking again later gets its answer.
		return classRetry, 0
	case s >= 400:
		return classPermanent, 0
	}
	return classRetry, 0
}

// describe turns a failed send into the sentence kept in last_error.
func describe(resp apiResponse, err error) string {
	if resp.status == 0 {
		return fmt.Sprintf("resend request failed: %v", err)
	}
	msg := resp.message
	if msg == "" {
		msg = strings.TrimPrefix(err.Error(), "[ERROR]: ")
	}
	if resp.name != "" {
		return fmt.Sprintf("resend answered %d %s: %s", resp.status, resp.name, msg)
	}
	return fmt.Sprintf("resend answered %d: %s", resp.status, msg)
}
