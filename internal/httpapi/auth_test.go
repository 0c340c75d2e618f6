package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	reg "github.com/strata-events/strata/internal/registry"
)

const (
	readerToken = "reader-token-0123456789"
	writerToken = "writer-token-0123456789"
	adminToken  = "admin-token-01234567890"
	svcToken    = "service-token-012345678"
)

func TestTheAuthMatrix(t *testing.T) {
	var registryCalls []string
	registry := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		registryCalls = append(registryCalls, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusOK)
	})
	a := newAPI(t, Options{Registry: registry, RegistryIsWrite: reg.IsWrite, Tokens: []Token{
		{Secret: readerToken, Role: RoleReader}, {Secret: writerToken, Role: RoleWriter}, {Secret: adminToken, Role: RoleAdmin},
	}})
	if r := a.do("POST", "/v1/streams/Order-1/events", appendBody(-1, orderCreated), "Authorization", "Bearer "+writerToken); r.status != 201 {
		t.Fatalf("setup append = %d %s", r.status, r.body)
	}
	routes := []struct {
		name, method, path, body string
		need                     Role
	}{
		{"append", "POST", "/v1/streams/Order-1/events", appendBody(-1, orderCreated), RoleWriter},
		{"read a stream", "GET", "/v1/streams/Order-1/events", "", RoleReader},
		{"read a category", "GET", "/v1/categories/Order/events", "", RoleReader},
		{"read all", "GET", "/v1/events", "", RoleReader},
		{"the relay's status", "GET", "/v1/relay", "", RoleReader},
		{"get a schema", "GET", "/registry/schemas/ids/1", "", RoleReader},
		{"list subjects", "GET", "/registry/subjects", "", RoleReader},
		{"look a schema up", "POST", "/registry/subjects/example.orders.OrderCreated", `{"schema": "{}"}`, RoleReader},
		{"check compatibility", "POST", "/registry/compatibility/subjects/x/versions/latest", `{"schema": "{}"}`, RoleReader},
		{"register a schema", "POST", "/registry/subjects/x/versions", `{"schema": "{}"}`, RoleAdmin},
		{"set the compatibility level", "PUT", "/registry/config", `{"compatibility": "NONE"}`, RoleAdmin},
		{"set a subject's level", "PUT", "/registry/config/x", `{"compatibility": "NONE"}`, RoleAdmin},
		{"health", "GET", "/healthz", "", RoleNone},
		{"readiness", "GET", "/readyz", "", RoleNone},
		{"metrics", "GET", "/metrics", "", RoleNone},
	}
	callers := []struct {
		name   string
		header []string
		role   Role
		anon   bool // no valid token: 401 where a role is needed
	}{
		{"no token", nil, RoleNone, true},
		{"a malformed header", []string{"Authorization", "Token " + adminToken}, RoleNone, true},
		{"a wrong token", []string{"Authorization", "Bearer not-a-token-at-all"}, RoleNone, true},
		{"a reader", []string{"Authorization", "Bearer " + readerToken}, RoleReader, false},
		{"a writer", []string{"Authorization", "bearer " + writerToken}, RoleWriter, false},
		{"an admin", []string{"Authorization", "Bearer " + adminToken}, RoleAdmin, false},
	}
	for _, route := range routes {
		for _, c := range callers {
			t.Run(route.name+" by "+c.name, func(t *testing.T) {
				r := a.do(route.method, route.path, route.body, c.header...)
				code := r.errorOf().Code
				switch {
				case route.need != RoleNone && c.anon:
					if r.status != http.StatusUnauthorized || code != "unauthenticated" || r.header.Get("WWW-Authenticate") == "" {
						t.Errorf("= %d %s, want 401 unauthenticated with WWW-Authenticate", r.status, code)
					}
				case c.role < route.need:
					if r.status != http.StatusForbidden || code != "forbidden" {
						t.Errorf("= %d %s, want 403 forbidden", r.status, code)
					}
				case r.status >= 400:
					t.Errorf("= %d %s, want success", r.status, r.body)
				}
			})
		}
	}
	if len(registryCalls) == 0 || registryCalls[0] != "GET /schemas/ids/1" {
		t.Errorf("registry handler calls = %v; want paths without /registry", registryCalls)
	}
}

func TestAPrincipalTokenSetsTheUserID(t *testing.T) {
	a := newAPI(t, Options{Tokens: []Token{{Secret: svcToken, Role: RoleWriter, Principal: "svc-orders"}, {Secret: writerToken, Role: RoleWriter}}})
	claimed := strings.Replace(orderCreated, `"data"`, `"metadata": {"userId": "someone-else", "correlationId": "c"}, "data"`, 1)
	for _, tc := range []struct{ token, stream, want string }{
		{svcToken, "Order-p", "svc-orders"},
		{writerToken, "Order-q", "someone-else"},
	} {
		if r := a.do("POST", "/v1/streams/"+tc.stream+"/events", appendBody(0, claimed), "Authorization", "Bearer "+tc.token); r.status != 201 {
			t.Fatalf("append = %d %s", r.status, r.body)
		}
		var page struct {
			Events []struct{ Metadata map[string]any }
		}
		a.do("GET", "/v1/streams/"+tc.stream+"/events", "", "Authorization", "Bearer "+tc.token).decode(t, &page)
		if got := page.Events[0].Metadata["userId"]; got != tc.want {
			t.Errorf("userId appended with the %s token = %v, want %s", tc.stream, got, tc.want)
		}
	}
}

func TestHealthReadinessMetricsAndRequestIDs(t *testing.T) {
	var down error
	a := newAPI(t, Options{Ready: func(context.Context) error { return down }})
	if r := a.do("GET", "/healthz", ""); r.status != 200 {
		t.Errorf("healthz = %d", r.status)
	}
	if r := a.do("GET", "/readyz", ""); r.status != 200 {
		t.Errorf("readyz = %d", r.status)
	}
	down = errors.New("database down")
	if r := a.do("GET", "/readyz", ""); r.status != 503 || !strings.Contains(string(r.body), "database down") {
		t.Errorf("readyz with the database down = %d %s, want 503 saying why", r.status, r.body)
	}
	a.do("POST", "/v1/streams/Order-m/events", appendBody(0, orderCreated))
	a.do("POST", "/v1/streams/Order-m/events", appendBody(0, orderCreated))
	r := a.do("GET", "/metrics", "")
	for _, want := range []string{
		`strata_appends_total{outcome="stored"} 1`,
		`strata_appends_total{outcome="conflict"} 1`,
		`strata_append_events_total{outcome="stored"} 1`,
		`strata_http_requests_total{code="201",method="POST",route="append"} 1`,
		`strata_append_duration_seconds_count 2`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if r := a.do("GET", "/healthz", "", "X-Request-Id", "req-42"); r.header.Get("X-Request-Id") != "req-42" {
		t.Errorf("a sane request id is not echoed: %q", r.header.Get("X-Request-Id"))
	}
	if r := a.do("GET", "/healthz", "", "X-Request-Id", "bad id\twith junk"); r.header.Get("X-Request-Id") == "bad id\twith junk" || r.header.Get("X-Request-Id") == "" {
		t.Errorf("an insane request id is echoed or none is made: %q", r.header.Get("X-Request-Id"))
	}
}
