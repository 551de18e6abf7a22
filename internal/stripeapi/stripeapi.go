// Package stripeapi is the one package that talks to the Stripe API. It reads
// and never writes: its transport lets through only GET requests for a
// customer, a subscription, an invoice, the list of a customer's
// subscriptions and the list of events (and, for "cleantrack stripe check"
// alone, the list of webhook endpoints). The worker fetches the objects thin
// events name through it, and "stripe sync" and "stripe reconcile" read
// through it; the web process never calls Stripe.
//
// It is built on stripe-go v76's backend, which pins Stripe-Version
// 2023-10-16, so objects come back in that shape. Every attempt has a
// timeout. stripe-go's own retries are off: this package retries 429 and 5xx
// answers and network failures itself, honouring Retry-After and
// Stripe-Should-Retry, so the rules are ours and testable. Errors name the
// request (method and path), the status and Stripe's message.
package stripeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
)

// Defaults for the zero fields of Config.
const (
	DefaultTimeout    = 20 * time.Second
	DefaultMaxRetries = 4
	DefaultMaxWait    = time.Minute
)

// MaxIDLength is the longest object id Stripe generates.
const MaxIDLength = 255

var (
	// ErrNoKey is returned by New without a secret key.
	ErrNoKey = errors.New("STRIPE_SECRET_KEY is not set")
	// ErrRefused is wrapped by the error of a request the transport did not
	// send: not a GET, or not one of the reads this package may make.
	ErrRefused = errors.New("request refused: CleanTrack only reads customers, subscriptions, invoices and events from Stripe")
	// ErrNotFound matches an *Error whose status is 404 (errors.Is).
	ErrNotFound = errors.New("not found at Stripe")
)

// Config configures a Client.
type Config struct {
	// Key is the secret or restricted key (STRIPE_SECRET_KEY): sk_test_...,
	// sk_live_..., rk_test_... or rk_live_....
	Key string
	// BaseURL is the API base (STRIPE_API_BASE); empty for Stripe's own.
	BaseURL string
	// Timeout bounds each attempt; DefaultTimeout when zero.
	Timeout time.Duration
	// MaxRetries is how many times a retryable failure is tried again;
	// DefaultMaxRetries when zero, none when negative.
	MaxRetries int
	// MaxWait caps one wait between attempts, Retry-After included;
	// DefaultMaxWait when zero.
	MaxWait time.Duration
	// AllowWebhookEndpoints lets GET /v1/webhook_endpoints through: a read a
	// person asked for with "cleantrack stripe check", and nothing else.
	AllowWebhookEndpoints bool
	// OnRetry, when set, is told of every wait before another attempt (the
	// CLI shows it as progress).
	OnRetry func(Retry)
	// Sleep waits d or until ctx is done; nil means a timer. Tests record
	// the waits instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Transport carries the requests that pass the guard; nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// Retry describes a wait before another attempt.
type Retry struct {
	Method, Path string
	Attempt      int           // the attempt that failed, from 1
	Wait         time.Duration // how long until the next one
	Reason       string        // "429 rate_limit", "503", "Retry-After: 2", a network error ...
}

// Client reads from the Stripe API. It is safe for concurrent use.
type Client struct {
	key        string
	backend    stripe.Backend
	timeout    time.Duration
	maxRetries int
	maxWait    time.Duration
	onRetry    func(Retry)
	sleep      func(context.Context, time.Duration) error
}

// New returns a client for cfg. It fails with ErrNoKey without a key, and
// when BaseURL is not an http(s) URL.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.Key) == "" {
		return nil, ErrNoKey
	}
	base := cfg.BaseURL
	if base == "" {
		base = stripe.APIURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("STRIPE_API_BASE: %q is not an http(s) URL", base)
	}
	c := &Client{
		key:        cfg.Key,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		maxWait:    cfg.MaxWait,
		onRetry:    cfg.OnRetry,
		sleep:      cfg.Sleep,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.maxWait <= 0 {
		c.maxWait = DefaultMaxWait
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	next := cfg.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	g := &guard{next: next, host: u.Host, prefix: strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1"), endpoints: cfg.AllowWebhookEndpoints}
	c.backend = stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(base),
		HTTPClient:        &http.Client{Transport: g},
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		EnableTelemetry:   stripe.Bool(false),
	})
	return c, nil
}

// Livemode reports whether the key is a live one.
func (c *Client) Livemode() bool {
	return strings.HasPrefix(c.key, "sk_live_") || strings.HasPrefix(c.key, "rk_live_")
}

// Object kinds Object fetches, as a thin event's related_object.type names
// them.
const (
	ObjectCustomer     = "customer"
	ObjectSubscription = "subscription"
	ObjectInvoice      = "invoice"
)

// ObjectPath is the API path of an object of kind with id
// ("/v1/subscriptions/sub_123"), or "" when the kind is not one CleanTrack
// reads or the id is not a Stripe id.
func ObjectPath(kind, id string) string {
	if !ValidID(id) {
		return ""
	}
	switch kind {
	case ObjectCustomer:
		return "/v1/customers/" + id
	case ObjectSubscription:
		return "/v1/subscriptions/" + id
	case ObjectInvoice:
		return "/v1/invoices/" + id
	}
	return ""
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// ValidID reports whether id looks like a Stripe object id: letters, digits
// and underscores, at most MaxIDLength long.
func ValidID(id string) bool { return len(id) <= MaxIDLength && idPattern.MatchString(id) }

// Object fetches the customer, subscription or invoice with id and returns
// its JSON as Stripe sent it (in the 2023-10-16 shape).
func (c *Client) Object(ctx context.Context, kind, id string) (json.RawMessage, error) {
	p := ObjectPath(kind, id)
	if p == "" {
		return nil, fmt.Errorf("stripe API: cannot fetch %s %q: not a customer, subscription or invoice with a Stripe id", kind, id)
	}
	return c.get(ctx, p, nil)
}

// EventQuery selects events for ListEvents.
type EventQuery struct {
	Types         []string
	CreatedGTE    time.Time // zero: no lower bound
	CreatedLT     time.Time // zero: no upper bound
	StartingAfter string    // the next (older) page after this event
	EndingBefore  string    // the previous (newer) page before this event
	Limit         int       // 1-100; 100 when zero
}

// ListedEvent is one event of a list page.
type ListedEvent struct {
	ID      string
	Type    string
	Created int64
	Raw     json.RawMessage // the whole event, as Stripe sent it
}

// EventPage is one page of GET /v1/events, newest first, as Stripe lists.
type EventPage struct {
	Events  []ListedEvent
	HasMore bool
}

// ListEvents reads one page of GET /v1/events.
func (c *Client) ListEvents(ctx context.Context, q EventQuery) (EventPage, error) {
	params := &stripe.EventListParams{Types: stripe.StringSlice(q.Types)}
	if !q.CreatedGTE.IsZero() || !q.CreatedLT.IsZero() {
		params.CreatedRange = &stripe.RangeQueryParams{}
		if !q.CreatedGTE.IsZero() {
			params.CreatedRange.GreaterThanOrEqual = q.CreatedGTE.Unix()
		}
		if !q.CreatedLT.IsZero() {
			params.CreatedRange.LesserThan = q.CreatedLT.Unix()
		}
	}
	limit := q.Limit
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	params.Limit = stripe.Int64(int64(limit))
	if q.StartingAfter != "" {
		params.StartingAfter = stripe.String(q.StartingAfter)
	}
	if q.EndingBefore != "" {
		params.EndingBefore = stripe.String(q.EndingBefore)
	}
	values := &form.Values{}
	form.AppendTo(values, params)
	raw, err := c.get(ctx, "/v1/events", values)
	if err != nil {
		return EventPage{}, err
	}
	var list struct {
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return EventPage{}, fmt.Errorf("stripe API GET /v1/events: the answer is not a list: %w", err)
	}
	page := EventPage{HasMore: list.HasMore, Events: make([]ListedEvent, 0, len(list.Data))}
	for _, d := range list.Data {
		var ev struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Created int64  `json:"created"`
		}
		// An item that does not read is kept with what it has: the intake
		// refuses it and says why.
		_ = json.Unmarshal(d, &ev)
		page.Events = append(page.Events, ListedEvent{ID: ev.ID, Type: ev.Type, Created: ev.Created, Raw: d})
	}
	return page, nil
}

// Subscriptions returns every subscription of the customer, canceled ones
// included, newest first, through every page.
func (c *Client) Subscriptions(ctx context.Context, customerID string) ([]json.RawMessage, error) {
	if !ValidID(customerID) {
		return nil, fmt.Errorf("stripe API: %q is not a Stripe customer id", customerID)
	}
	var out []json.RawMessage
	after := ""
	for range 1000 { // 100,000 subscriptions: far beyond one customer's
		values := &form.Values{}
		values.Add("customer", customerID)
		values.Add("status", "all")
		values.Add("limit", "100")
		if after != "" {
			values.Add("starting_after", after)
		}
		raw, err := c.get(ctx, "/v1/subscriptions", values)
		if err != nil {
			return nil, err
		}
		var list struct {
			Data    []json.RawMessage `json:"data"`
			HasMore bool              `json:"has_more"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("stripe API GET /v1/subscriptions: the answer is not a list: %w", err)
		}
		out = append(out, list.Data...)
		if !list.HasMore || len(list.Data) == 0 {
			return out, nil
		}
		var last struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(list.Data[len(list.Data)-1], &last); err != nil || last.ID == "" {
			return nil, fmt.Errorf("stripe API GET /v1/subscriptions: a listed subscription has no id")
		}
		after = last.ID
	}
	return nil, fmt.Errorf("stripe API GET /v1/subscriptions: customer %s has more than 100,000 subscriptions", customerID)
}

// Check proves the key with the cheapest read CleanTrack is allowed:
// GET /v1/events?limit=1.
func (c *Client) Check(ctx context.Context) error {
	values := &form.Values{}
	values.Add("limit", "1")
	_, err := c.get(ctx, "/v1/events", values)
	return err
}

// WebhookEndpoint is a webhook endpoint as GET /v1/webhook_endpoints lists it.
type WebhookEndpoint struct {
	ID            string   `json:"id"`
	URL           string   `json:"url"`
	Status        string   `json:"status"`
	APIVersion    string   `json:"api_version"`
	EnabledEvents []string `json:"enabled_events"`
}

// WebhookEndpoints lists the account's webhook endpoints, every page. Only a
// client built with AllowWebhookEndpoints may (the transport refuses it
// otherwise): "cleantrack stripe check" is its one caller.
func (c *Client) WebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	var out []WebhookEndpoint
	after := ""
	for range 100 {
		values := &form.Values{}
		values.Add("limit", "100")
		if after != "" {
			values.Add("starting_after", after)
		}
		raw, err := c.get(ctx, "/v1/webhook_endpoints", values)
		if err != nil {
			return nil, err
		}
		var list struct {
			Data    []WebhookEndpoint `json:"data"`
			HasMore bool              `json:"has_more"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("stripe API GET /v1/webhook_endpoints: the answer is not a list: %w", err)
		}
		out = append(out, list.Data...)
		if !list.HasMore || len(list.Data) == 0 {
			break
		}
		after = list.Data[len(list.Data)-1].ID
	}
	return out, nil
}

// get makes one read, retrying what may succeed later.
func (c *Client) get(ctx context.Context, p string, query *form.Values) (json.RawMessage, error) {
	for attempt := 1; ; attempt++ {
		info := &responseInfo{}
		actx, cancel := context.WithTimeout(context.WithValue(ctx, responseInfoKey{}, info), c.timeout)
		var out rawBody
		err := c.backend.CallRaw(http.MethodGet, p, c.key, query, &stripe.Params{Context: actx}, &out)
		cancel()
		if err == nil {
			return out.body, nil
		}
		apiErr := newError(http.MethodGet, p, attempt, info, err)
		if ctx.Err() != nil {
			apiErr.Err = errors.Join(apiErr.Err, ctx.Err())
			return nil, apiErr
		}
		wait, reason, retry := c.retryAfter(apiErr, info, attempt)
		if !retry {
			return nil, apiErr
		}
		if c.onRetry != nil {
			c.onRetry(Retry{Method: http.MethodGet, Path: p, Attempt: attempt, Wait: wait, Reason: reason})
		}
		if err := c.sleep(ctx, wait); err != nil {
			apiErr.Err = errors.Join(apiErr.Err, err)
			return nil, apiErr
		}
	}
}

// retryAfter decides whether a failed attempt is tried again, and after how
// long: Stripe-Should-Retry wins; otherwise 429, 5xx and network failures
// are retried, waiting Retry-After when given, else a backoff.
func (c *Client) retryAfter(e *Error, info *responseInfo, attempt int) (time.Duration, string, bool) {
	if attempt > c.maxRetries || errors.Is(e, ErrRefused) {
		return 0, "", false
	}
	reason := ""
	switch should := info.header.Get("Stripe-Should-Retry"); {
	case should == "false":
		return 0, "", false
	case should == "true":
		reason = "Stripe-Should-Retry: true"
	case e.Status == http.StatusTooManyRequests || e.Status >= 500:
		reason = strings.TrimSpace(strconv.Itoa(e.Status) + " " + e.Code)
	case e.Status == 0:
		reason = "no answer: " + errString(e.Err)
	default:
		return 0, "", false
	}
	wait := backoff(attempt)
	if ra, ok := parseRetryAfter(info.header.Get("Retry-After"), time.Now()); ok {
		wait = ra
		reason += ", Retry-After: " + info.header.Get("Retry-After")
	}
	return min(wait, c.maxWait), reason, true
}

// backoff is 0.5 s, 1 s, 2 s, 4 s ... capped at 8 s, less up to a quarter of
// jitter.
func backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt-1, 4)
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Error is a failed request to the Stripe API.
type Error struct {
	Method, Path string
	Attempts     int
	Status       int    // 0 when no answer came
	Type         string // Stripe's error type: invalid_request_error, api_error ...
	Code         string // Stripe's error code: resource_missing, rate_limit ...
	Message      string // Stripe's message
	RequestID    string
	// RetryAfter is the last answer's Retry-After, when it had one.
	RetryAfter time.Duration
	Err        error // what went wrong below the API (network, timeout, refusal)
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stripe API %s %s", e.Method, e.Path)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d", e.Status)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
	}
	switch {
	case e.Message != "":
		b.WriteString(": " + e.Message)
	case e.Err != nil:
		b.WriteString(": " + errString(e.Err))
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

func newError(method, p string, attempts int, info *responseInfo, err error) *Error {
	e := &Error{Method: method, Path: p, Attempts: attempts, Status: info.status}
	if ra, ok := parseRetryAfter(info.header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = ra
	}
	var se *stripe.Error
	if errors.As(err, &se) {
		e.Status = max(e.Status, se.HTTPStatusCode)
		e.Type, e.Code, e.Message, e.RequestID = string(se.Type), string(se.Code), se.Msg, se.RequestID
		return e
	}
	e.Err = err
	if e.Status != 0 && !errors.Is(err, ErrRefused) {
		// An answer that is not Stripe's error body (a proxy's 502 page):
		// stripe-go's message quotes a sample of it.
		e.Message = errString(err)
		e.Err = nil
	}
	return e
}

// errString is err's message without the *url.Error wrapping that repeats
// the method and URL.
func errString(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// rawBody keeps a response body as it came.
type rawBody struct{ body json.RawMessage }

func (r *rawBody) SetLastResponse(resp *stripe.APIResponse) { r.body = resp.RawJSON }
func (r *rawBody) UnmarshalJSON([]byte) error               { return nil }

// responseInfo carries an attempt's status and headers from the transport
// back to the retry loop, whatever the body says.
type responseInfo struct {
	status int
	header http.Header
}

type responseInfoKey struct{}

// guard is the transport every request goes through: it sends only the
// reads this package may make, to the configured host, and notes each
// answer's status and headers.
type guard struct {
	next      http.RoundTripper
	host      string
	prefix    string // the base URL's path, for a base such as http://proxy/stripe
	endpoints bool
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	p := strings.TrimPrefix(req.URL.Path, g.prefix)
	if req.Method != http.MethodGet || req.URL.Host != g.host || req.URL.RawPath != "" || path.Clean(p) != p || !g.allowed(p) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, ErrRefused)
	}
	resp, err := g.next.RoundTrip(req)
	if info, ok := req.Context().Value(responseInfoKey{}).(*responseInfo); ok && resp != nil {
		info.status, info.header = resp.StatusCode, resp.Header.Clone()
	}
	return resp, err
}

// allowed lists the reads: one customer, one invoice, one event, one
// subscription or the list of them, the list of events; the list of webhook
// endpoints only when asked for.
func (g *guard) allowed(p string) bool {
	switch p {
	case "/v1/subscriptions", "/v1/events":
		return true
	case "/v1/webhook_endpoints":
		return g.endpoints
	}
	for _, prefix := range []string{"/v1/customers/", "/v1/subscriptions/", "/v1/invoices/", "/v1/events/"} {
		if id, ok := strings.CutPrefix(p, prefix); ok && ValidID(id) {
			return true
		}
	}
	return false
}
