package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-events/strata/internal/console"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestEveryPageGetsTheShellAndTheAssetsTheirTypes(t *testing.T) {
	h := console.Handler()
	for _, path := range []string{"/console/", "/console/events", "/console/streams/Order-1", "/console/schemas/example.orders.OrderCreated"} {
		res, body := get(t, h, path)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `<script type="module" src="/console/assets/app.js">`) {
			t.Errorf("GET %s = %d, want the page shell", path, res.StatusCode)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	for path, typ := range map[string]string{"/console/assets/app.js": "text/javascript", "/console/assets/app.css": "text/css"} {
		res, body := get(t, h, path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), typ) || len(body) < 100 {
			t.Errorf("GET %s = %d %q (%d bytes), want %s", path, res.StatusCode, res.Header.Get("Content-Type"), len(body), typ)
		}
	}
	for _, path := range []string{"/console/assets/nothing.js", "/console/assets/index.html", "/console/assets/../console.go"} {
		if res, _ := get(t, h, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, res.StatusCode)
		}
	}
}
