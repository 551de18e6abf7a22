package stripetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// API is a fake of the parts of Stripe's API CleanTrack reads, over an
// in-memory store the test fills:
//
//	GET /v1/balance
//	GET /v1/customers/{id}
//	GET /v1/subscriptions/{id}
//	GET /v1/subscriptions?customer=&status=       (status=all, or one status; default: not canceled)
//	GET /v1/invoices/{id}
//	GET /v1/events/{id}
//	GET /v1/events?types[]=&type=&created[gte|gt|lte|lt]=
//	GET /v1/webhook_endpoints
//
// Lists are newest first, as Stripe lists, with limit (1-100, default 10),
// starting_after, ending_before and has_more. Objects are rendered in the
// shape of the request's Stripe-Version (stripe-go v76 pins 2023-10-16;
// 2025-03-31 and later get the basil shape), events as they were added.
// Errors have Stripe's body, {"error":{"type":...,"message":...}}; an
// unknown parameter is a 400, as Stripe answers, so a client asking for
// something the fake does not filter on fails loudly.
//
// A request needs a secret key (Authorization: Bearer sk_test_... or
// sk_live_...; the live one makes livemode true). Every request is recorded
// (Requests); answers can be scripted (ReplyNext, ReplyTo, SetHook). Methods
// are safe for concurrent use.
type API struct {
	srv *httptest.Server

	mu            sync.Mutex
	seq           int // insertion order, to keep lists stable
	customers     map[string]stored[Customer]
	subscriptions map[string]stored[Subscription]
	invoices      map[string]stored[Invoice]
	events        []storedEvent
	endpoints     []WebhookEndpoint
	requests      []Request
	next          []Reply
	byNumber      map[int]Reply
	hook          func(n int, req Request) *Reply
}

type stored[T any] struct {
	v   T
	seq int
}

type storedEvent struct {
	id      string
	typ     string
	created int64
	raw     json.RawMessage
	seq     int
}

// WebhookEndpoint is a webhook endpoint as GET /v1/webhook_endpoints lists it.
type WebhookEndpoint struct {
	ID            string // a random we_... when empty
	URL           string
	Status        string // enabled (default) or disabled
	APIVersion    string // empty: the account's default
	EnabledEvents []string
}

// Request is one request the fake received.
type Request struct {
	N      int // arrival order, from 1
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	At     time.Time
	Status int // the status answered
}

// Reply is a scripted answer, with Stripe's error body. Type and Message
// default to Stripe's for the status. A Reply whose Status is 0 or 2xx lets
// the request through to normal handling.
type Reply struct {
	Status      int
	Type        string // api_error, invalid_request_error, ...
	Code        string // rate_limit, lock_timeout, resource_missing, ...
	Message     string
	RetryAfter  string // the Retry-After header, in seconds
	ShouldRetry string // the Stripe-Should-Retry header: "true", "false" or unset
}

func (r Reply) passes() bool { return r.Status == 0 || (r.Status >= 200 && r.Status < 300) }

// NewAPI starts the fake with an empty store; Close it when done.
func NewAPI() *API {
	a := &API{
		customers:     map[string]stored[Customer]{},
		subscriptions: map[string]stored[Subscription]{},
		invoices:      map[string]stored[Invoice]{},
		byNumber:      map[int]Reply{},
	}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	return a
}

// URL is the API base, for STRIPE_API_BASE or stripe.BackendConfig.URL.
func (a *API) URL() string { return a.srv.URL }

// Close shuts the server down.
func (a *API) Close() { a.srv.Close() }

// PutCustomer adds c, or replaces the customer with its id.
func (a *API) PutCustomer(c Customer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	a.customers[c.ID] = stored[Customer]{c.withDefaults(), a.seq}
}

// PutSubscription adds s, or replaces the subscription with its id (a
// change of state, as Stripe's object changes).
func (a *API) PutSubscription(s Subscription) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	a.subscriptions[s.ID] = stored[Subscription]{s.withDefaults(), a.seq}
}

// PutInvoice adds in, or replaces the invoice with its id.
func (a *API) PutInvoice(in Invoice) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	a.invoices[in.ID] = stored[Invoice]{in.withDefaults(), a.seq}
}

// AddEvent stores an event body (from BuildEvent, in either shape) for
// GET /v1/events. It needs an id, a type and a created time.
func (a *API) AddEvent(payload []byte) error {
	var ev struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Created int64  `json:"created"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("stripetest: add event: %w", err)
	}
	if ev.ID == "" || ev.Type == "" || ev.Created == 0 {
		return fmt.Errorf("stripetest: add event: id, type and created are required")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	a.events = append(a.events, storedEvent{id: ev.ID, typ: ev.Type, created: ev.Created,
		raw: append(json.RawMessage(nil), payload...), seq: a.seq})
	return nil
}

// PutWebhookEndpoint adds an endpoint for GET /v1/webhook_endpoints.
func (a *API) PutWebhookEndpoint(e WebhookEndpoint) {
	if e.ID == "" {
		e.ID = NewID("we_")
	}
	if e.Status == "" {
		e.Status = "enabled"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.endpoints = append(a.endpoints, e)
}

// ReplyNext scripts the answers to the next requests, in order.
func (a *API) ReplyNext(replies ...Reply) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next = append(a.next, replies...)
}

// ReplyTo scripts the answer to the nth request (from 1); it takes
// precedence over ReplyNext.
func (a *API) ReplyTo(n int, r Reply) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byNumber[n] = r
}

// SetHook installs h (nil removes it). It is asked about every request first,
// without the fake's lock held; nil or a passing Reply lets the request
// through.
func (a *API) SetHook(h func(n int, req Request) *Reply) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hook = h
}

// Requests returns every request received so far, in arrival order.
func (a *API) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), At: time.Now()}
	a.mu.Lock()
	req.N = len(a.requests) + 1
	a.requests = append(a.requests, req)
	hook := a.hook
	a.mu.Unlock()

	status, body, header := a.answer(r, req, hook)

	a.mu.Lock()
	a.requests[req.N-1].Status = status
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", NewID("req_"))
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (a *API) answer(r *http.Request, req Request, hook func(int, Request) *Reply) (int, []byte, map[string]string) {
	if reply, ok := a.scripted(hook, req); ok {
		return reply.render()
	}
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case key == "":
		return Reply{Status: http.StatusUnauthorized, Message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."}.render()
	case !strings.HasPrefix(key, "sk_test_") && !strings.HasPrefix(key, "sk_live_") &&
		!strings.HasPrefix(key, "rk_test_") && !strings.HasPrefix(key, "rk_live_"):
		return Reply{Status: http.StatusUnauthorized, Message: "Invalid API Key provided: " + redactKey(key)}.render()
	case r.Method != http.MethodGet:
		return Reply{Status: http.StatusMethodNotAllowed, Message: fmt.Sprintf("The fake Stripe API only serves GET, not %s.", r.Method)}.render()
	}
	livemode := strings.Contains(key, "_live_")
	shape := Shape2023
	if v := r.Header.Get("Stripe-Version"); v >= "2025-03-31" {
		shape = Shape2025
	}

	path := strings.TrimSuffix(r.URL.Path, "/")
	q := r.URL.Query()
	switch {
	case path == "/v1/balance":
		return ok(map[string]any{
			"object":    "balance",
			"livemode":  livemode,
			"available": []any{map[string]any{"amount": 0, "currency": "usd", "source_types": map[string]any{"card": 0}}},
			"pending":   []any{map[string]any{"amount": 0, "currency": "usd", "source_types": map[string]any{"card": 0}}},
		})
	case path == "/v1/webhook_endpoints":
		return a.listEndpoints(r, q, livemode)
	case path == "/v1/subscriptions":
		return a.listSubscriptions(r, q, shape)
	case path == "/v1/events":
		return a.listEvents(r, q)
	}
	for _, res := range []struct{ prefix, object string }{
		{"/v1/customers/", "customer"}, {"/v1/subscriptions/", "subscription"}, {"/v1/invoices/", "invoice"}, {"/v1/events/", "event"},
	} {
		id, matched := strings.CutPrefix(path, res.prefix)
		if !matched || id == "" || strings.Contains(id, "/") {
			continue
		}
		if obj, found := a.object(res.object, id, shape); found {
			return ok(obj)
		}
		return Reply{Status: http.StatusNotFound, Code: "resource_missing",
			Message: fmt.Sprintf("No such %s: '%s'", res.object, id)}.render()
	}
	return Reply{Status: http.StatusNotFound, Message: fmt.Sprintf("Unrecognized request URL (GET: %s).", r.URL.Path)}.render()
}

// scripted returns the scripted answer for req, if any.
func (a *API) scripted(hook func(int, Request) *Reply, req Request) (Reply, bool) {
	if hook != nil {
		if r := hook(req.N, req); r != nil && !r.passes() {
			return *r, true
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.byNumber[req.N]; ok {
		delete(a.byNumber, req.N)
		return r, !r.passes()
	}
	if len(a.next) > 0 {
		r := a.next[0]
		a.next = a.next[1:]
		return r, !r.passes()
	}
	return Reply{}, false
}

// object renders the stored object of kind with id.
func (a *API) object(kind, id, shape string) (any, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch kind {
	case "customer":
		c, ok := a.customers[id]
		return c.v.json(), ok
	case "subscription":
		s, ok := a.subscriptions[id]
		return s.v.json(shape, false), ok
	case "invoice":
		in, ok := a.invoices[id]
		return in.v.json(shape, false), ok
	case "event":
		for _, e := range a.events {
			if e.id == id {
				return e.raw, true
			}
		}
	}
	return nil, false
}

func (a *API) listSubscriptions(r *http.Request, q url.Values, shape string) (int, []byte, map[string]string) {
	if bad := unknownParams(q, "customer", "status", "price", "limit", "starting_after", "ending_before"); bad != "" {
		return unknownParam(bad)
	}
	customer, status, price := q.Get("customer"), q.Get("status"), q.Get("price")
	a.mu.Lock()
	var subs []stored[Subscription]
	for _, s := range a.subscriptions {
		switch {
		case customer != "" && s.v.Customer != customer,
			price != "" && s.v.PriceID != price,
			status == "" && s.v.Status == "canceled",
			status != "" && status != "all" && s.v.Status != status:
			continue
		}
		subs = append(subs, s)
	}
	a.mu.Unlock()
	slices.SortFunc(subs, func(x, y stored[Subscription]) int {
		return cmp.Or(y.v.Created.Compare(x.v.Created), cmp.Compare(y.seq, x.seq))
	})
	items := make([]listItem, len(subs))
	for i, s := range subs {
		items[i] = listItem{s.v.ID, s.v.json(shape, false)}
	}
	return a.list(r, q, items)
}

func (a *API) listEvents(r *http.Request, q url.Values) (int, []byte, map[string]string) {
	var types []string
	for k, vs := range q {
		if k == "types" || k == "types[]" || (strings.HasPrefix(k, "types[") && strings.HasSuffix(k, "]")) {
			types = append(types, vs...)
		} else if bad := unknownParams(url.Values{k: vs}, "type", "created", "created[gte]", "created[gt]", "created[lte]", "created[lt]",
			"limit", "starting_after", "ending_before"); bad != "" {
			return unknownParam(bad)
		}
	}
	if q.Has("type") {
		types = append(types, q.Get("type"))
	}
	bounds := map[string]int64{}
	for _, k := range []string{"created", "created[gte]", "created[gt]", "created[lte]", "created[lt]"} {
		if !q.Has(k) {
			continue
		}
		n, err := strconv.ParseInt(q.Get(k), 10, 64)
		if err != nil {
			return Reply{Status: http.StatusBadRequest, Code: "parameter_invalid_integer",
				Message: fmt.Sprintf("Invalid integer: %s", q.Get(k))}.render()
		}
		bounds[k] = n
	}
	keep := func(e storedEvent) bool {
		if len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool {
			prefix, wildcard := strings.CutSuffix(t, "*")
			return t == e.typ || (wildcard && strings.HasPrefix(e.typ, prefix))
		}) {
			return false
		}
		for k, n := range bounds {
			c := e.created
			if (k == "created" && c != n) || (k == "created[gte]" && c < n) || (k == "created[gt]" && c <= n) ||
				(k == "created[lte]" && c > n) || (k == "created[lt]" && c >= n) {
				return false
			}
		}
		return true
	}
	a.mu.Lock()
	var evs []storedEvent
	for _, e := range a.events {
		if keep(e) {
			evs = append(evs, e)
		}
	}
	a.mu.Unlock()
	slices.SortFunc(evs, func(x, y storedEvent) int {
		return cmp.Or(cmp.Compare(y.created, x.created), cmp.Compare(y.seq, x.seq))
	})
	items := make([]listItem, len(evs))
	for i, e := range evs {
		items[i] = listItem{e.id, e.raw}
	}
	return a.list(r, q, items)
}

func (a *API) listEndpoints(r *http.Request, q url.Values, livemode bool) (int, []byte, map[string]string) {
	if bad := unknownParams(q, "limit", "starting_after", "ending_before"); bad != "" {
		return unknownParam(bad)
	}
	a.mu.Lock()
	eps := slices.Clone(a.endpoints)
	a.mu.Unlock()
	slices.Reverse(eps)
	items := make([]listItem, len(eps))
	for i, e := range eps {
		var apiVersion any
		if e.APIVersion != "" {
			apiVersion = e.APIVersion
		}
		items[i] = listItem{e.ID, map[string]any{
			"id": e.ID, "object": "webhook_endpoint", "url": e.URL, "status": e.Status, "api_version": apiVersion,
			"enabled_events": e.EnabledEvents, "livemode": livemode, "description": nil, "metadata": map[string]any{},
		}}
	}
	return a.list(r, q, items)
}

type listItem struct {
	id  string
	obj any
}

// list answers one page of items (newest first) as Stripe pages a list.
func (a *API) list(r *http.Request, q url.Values, items []listItem) (int, []byte, map[string]string) {
	limit := 10
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > 100 {
			return Reply{Status: http.StatusBadRequest, Code: "parameter_invalid_integer",
				Message: "This value must be greater than or equal to 1 and less than or equal to 100."}.render()
		}
		limit = n
	}
	index := func(param string) (int, bool) {
		id := q.Get(param)
		return slices.IndexFunc(items, func(it listItem) bool { return it.id == id }), id != ""
	}
	var page []listItem
	var hasMore bool
	if i, given := index("starting_after"); given {
		if i < 0 {
			return Reply{Status: http.StatusBadRequest, Code: "resource_missing",
				Message: fmt.Sprintf("No such object: '%s'", q.Get("starting_after"))}.render()
		}
		rest := items[i+1:]
		page, hasMore = rest[:min(limit, len(rest))], len(rest) > limit
	} else if j, given := index("ending_before"); given {
		if j < 0 {
			return Reply{Status: http.StatusBadRequest, Code: "resource_missing",
				Message: fmt.Sprintf("No such object: '%s'", q.Get("ending_before"))}.render()
		}
		// The items just before it, still newest first; has_more says
		// whether newer ones remain.
		page, hasMore = items[max(0, j-limit):j], j > limit
	} else {
		page, hasMore = items[:min(limit, len(items))], len(items) > limit
	}
	data := make([]any, len(page))
	for i, it := range page {
		data[i] = it.obj
	}
	return ok(map[string]any{"object": "list", "url": r.URL.Path, "has_more": hasMore, "data": data})
}

// ok answers v as JSON.
func ok(v any) (int, []byte, map[string]string) {
	b, err := json.Marshal(v)
	if err != nil {
		return Reply{Status: http.StatusInternalServerError, Message: err.Error()}.render()
	}
	return http.StatusOK, b, nil
}

// unknownParams returns the first parameter of q not in known, or "".
func unknownParams(q url.Values, known ...string) string {
	for k := range q {
		if !slices.Contains(known, k) && k != "expand[]" && !strings.HasPrefix(k, "expand[") {
			return k
		}
	}
	return ""
}

func unknownParam(name string) (int, []byte, map[string]string) {
	return Reply{Status: http.StatusBadRequest, Code: "parameter_unknown",
		Message: fmt.Sprintf("Received unknown parameter: %s", name)}.render()
}

func redactKey(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:4] + strings.Repeat("*", len(k)-8) + k[len(k)-4:]
}

// render answers r with Stripe's error body and headers.
func (r Reply) render() (int, []byte, map[string]string) {
	typ, msg := r.Type, r.Message
	if typ == "" {
		typ = "invalid_request_error"
		if r.Status >= 500 {
			typ = "api_error"
		}
	}
	if msg == "" {
		switch {
		case r.Status == http.StatusTooManyRequests:
			msg = "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
		case r.Status >= 500:
			msg = "Something went wrong on Stripe's end."
		default:
			msg = http.StatusText(r.Status)
		}
	}
	code := r.Code
	if code == "" && r.Status == http.StatusTooManyRequests {
		code = "rate_limit"
	}
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	header := map[string]string{}
	if r.RetryAfter != "" {
		header["Retry-After"] = r.RetryAfter
	}
	if r.ShouldRetry != "" {
		header["Stripe-Should-Retry"] = r.ShouldRetry
	}
	return r.Status, b, header
}
