package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The console reaches a projector's projections routes through the
// writer: with the writer's roles checked first, the token passed on, and
// nothing else of the projector reachable.
func TestTheProjectorsRoutesArePassedOnForTheConsole(t *testing.T) {
	var got []string
	projector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte(`{"from": "projector"}`))
	}))
	defer projector.Close()
	base, _ := url.Parse(projector.URL + "/base")
	tokens := []Token{{Secret: readerToken, Role: RoleReader}, {Secret: adminToken, Role: RoleAdmin}}
	a := newAPI(t, Options{Console: http.NotFoundHandler(), Projector: base, Tokens: tokens})

	for _, tt := range []struct {
		method, path, token string
		status              int
		passed              string // what the projector saw, "" for nothing
	}{
		{"GET", "/console/projector/v1/projections?limit=2", readerToken, 418, "GET /base/v1/projections?limit=2 Bearer " + readerToken},
		{"POST", "/console/projector/v1/projections/p/resume", adminToken, 418, "POST /base/v1/projections/p/resume Bearer " + adminToken},
		{"POST", "/console/projector/v1/projections/p/resume", readerToken, 403, ""},
		{"GET", "/console/projector/v1/projections", "", 401, ""},
		{"GET", "/console/projector/v1/orders/x", readerToken, 404, ""},
		{"GET", "/console/projector/metrics", readerToken, 404, ""},
		{"GET", "/console/projector/v1/projections/../../metrics", readerToken, 404, ""},
	} {
		got = nil
		var headers []string
		if tt.token != "" {
			headers = []string{"Authorization", "Bearer " + tt.token}
		}
		r := a.do(tt.method, tt.path, "", headers...)
		if r.status != tt.status {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
		}
		if want := []string{tt.passed}; (tt.passed == "" && len(got) > 0) || (tt.passed != "" && (len(got) != 1 || got[0] != want[0])) {
			t.Errorf("%s %s reached the projector as %q, want %q", tt.method, tt.path, got, tt.passed)
		}
	}

	projector.Close()
	r := a.do("GET", "/console/projector/v1/projections", "", "Authorization", "Bearer "+readerToken)
	if e := r.errorOf(); r.status != 503 || e.Code != "unavailable" || !strings.Contains(e.Message, "--projector-url") {
		t.Errorf("with the projector down = %d %s, want 503 unavailable naming --projector-url", r.status, r.body)
	}
}

func TestWithoutAProjectorTheConsoleIsToldSo(t *testing.T) {
	a := newAPI(t, Options{Console: http.NotFoundHandler()})
	r := a.do("GET", "/console/projector/v1/projections", "")
	if e := r.errorOf(); r.status != 404 || e.Code != "not_found" || !strings.Contains(e.Message, "--projector-url") {
		t.Errorf("GET the projections without a projector = %d %s, want 404 not_found naming --projector-url", r.status, r.body)
	}
}
