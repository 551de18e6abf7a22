package resendtest

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/resend/resend-go/v2"
)

// PutDomain adds (or replaces, by id) a domain of the account, served by
// GET /domains (without its records, as Resend lists them) and
// GET /domains/{id} (with them).
func (s *Server) PutDomain(d resend.Domain) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, old := range s.domains {
		if old.Id == d.Id {
			s.domains[i] = d
			return
		}
	}
	s.domains = append(s.domains, d)
}

// PutWebhook adds (or replaces, by id) a webhook of the account, served by
// GET /webhooks.
func (s *Server) PutWebhook(w resend.WebhookInList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, old := range s.webhooks {
		if old.Id == w.Id {
			s.webhooks[i] = w
			return
		}
	}
	s.webhooks = append(s.webhooks, w)
}

// RestrictAPIKey makes key a sending-only key, as Resend's "sending access"
// keys are: it may send, and GET /domains and /webhooks answer it 401
// restricted_api_key.
func (s *Server) RestrictAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restricted[key] = true
}

// accountEndpoint reports whether path is one of the account endpoints the
// fake serves (domains, webhooks), after any path prefix.
func accountEndpoint(path string) bool {
	for _, e := range []string{"/domains", "/webhooks"} {
		if strings.HasSuffix(path, e) || strings.Contains(path, e+"/") {
			return true
		}
	}
	return false
}

// serveAccount answers GET /domains, GET /domains/{id} and GET /webhooks.
func (s *Server) serveAccount(r *http.Request) (int, []byte) {
	auth := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case auth == "":
		return errorBody(Reply{Status: http.StatusUnauthorized})
	case s.apiKey != "" && auth != s.apiKey:
		return errorBody(Reply{Status: http.StatusForbidden})
	case s.restricted[auth]:
		return errorBody(Reply{Status: http.StatusUnauthorized, Name: "restricted_api_key",
			Message: "This API key is restricted to only send emails"})
	case r.Method != http.MethodGet:
		return errorBody(Reply{Status: http.StatusMethodNotAllowed})
	}
	path := r.URL.Path
	if i := strings.Index(path, "/webhooks"); i >= 0 && strings.TrimSuffix(path[i:], "/") == "/webhooks" {
		b, _ := json.Marshal(resend.ListWebhooksResponse{Object: "list", Data: append([]resend.WebhookInList{}, s.webhooks...)})
		return http.StatusOK, b
	}
	i := strings.Index(path, "/domains")
	if i < 0 {
		return errorBody(Reply{Status: http.StatusNotFound})
	}
	id := strings.Trim(path[i+len("/domains"):], "/")
	if id == "" {
		list := make([]resend.Domain, len(s.domains))
		for i, d := range s.domains {
			d.Records = nil
			list[i] = d
		}
		b, _ := json.Marshal(struct {
			Object string          `json:"object"`
			Data   []resend.Domain `json:"data"`
		}{"list", list})
		return http.StatusOK, b
	}
	for _, d := range s.domains {
		if d.Id == id {
			d.Object = "domain"
			b, _ := json.Marshal(d)
			return http.StatusOK, b
		}
	}
	return errorBody(Reply{Status: http.StatusNotFound, Message: "Domain not found"})
}
