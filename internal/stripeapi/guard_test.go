package stripeapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The guard is the last word on what leaves the process: whatever a caller
// builds, only the listed GETs to the configured host go out.
func TestGuardSendsOnlyTheListedReads(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	g := &guard{next: http.DefaultTransport, host: host}
	cases := []struct {
		method, url string
		ok          bool
	}{
		{"GET", srv.URL + "/v1/customers/cus_1", true},
		{"GET", srv.URL + "/v1/subscriptions/sub_1", true},
		{"GET", srv.URL + "/v1/subscriptions?customer=cus_1", true},
		{"GET", srv.URL + "/v1/invoices/in_1", true},
		{"GET", srv.URL + "/v1/events?limit=1", true},
		{"GET", srv.URL + "/v1/events/evt_1", true},
		{"POST", srv.URL + "/v1/customers/cus_1", false},
		{"DELETE", srv.URL + "/v1/subscriptions/sub_1", false},
		{"POST", srv.URL + "/v1/events", false},
		{"GET", srv.URL + "/v1/charges", false},
		{"GET", srv.URL + "/v1/balance", false},
		{"GET", srv.URL + "/v1/webhook_endpoints", false},
		{"GET", srv.URL + "/v1/customers/cus_1/sources", false},
		{"GET", srv.URL + "/v1/customers/../charges", false},
		{"GET", srv.URL + "/v1/customers/cus%2F1", false},
		{"GET", srv.URL + "/v1/subscriptions_items", false},
		{"GET", "http://elsewhere.example/v1/customers/cus_1", false},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(tc.method, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := hits.Load()
		resp, err := g.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		if tc.ok && err != nil {
			t.Errorf("%s %s refused: %v", tc.method, tc.url, err)
		}
		if !tc.ok && (err == nil || !errors.Is(err, ErrRefused) || hits.Load() != before) {
			t.Errorf("%s %s was let through (err %v)", tc.method, tc.url, err)
		}
	}
	g.endpoints = true
	req, _ := http.NewRequest("GET", srv.URL+"/v1/webhook_endpoints", nil)
	if resp, err := g.RoundTrip(req); err != nil {
		t.Errorf("webhook endpoints refused for stripe check: %v", err)
	} else {
		resp.Body.Close()
	}
}
