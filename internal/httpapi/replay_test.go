package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/memstore"
)

// registerEarlier makes the first schema of typ that the files hold its
// latest, as if the later ones were not registered yet, and returns a
// function that registers the last file's schema again.
func (s *testSchemas) registerEarlier(t *testing.T, typ string) (registerLatest func()) {
	t.Helper()
	latest := s.latest[typ]
	for fp, sch := range s.byFP {
		if sch.Name() == typ && fp != latest.Fingerprint() {
			s.latest[typ] = sch
			return func() { s.latest[typ] = latest }
		}
	}
	t.Fatalf("the schemas hold one version of %s; the test needs two", typ)
	return nil
}

// A retry of an append after a compatible schema was registered encodes
// the same data in other bytes; it is still the same event, and answers
// the first result. Data that differs as a value is still a duplicate.
func TestARetryAfterASchemaRegistrationIsIdempotent(t *testing.T) {
	stores := map[string]func(t *testing.T) eventstore.Store{
		"memstore": func(*testing.T) eventstore.Store { return memstore.New() },
		"postgres": func(t *testing.T) eventstore.Store { return newPostgresStore(t) },
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			schemas := loadTestSchemas(t)
			registerV2 := schemas.registerEarlier(t, "OrderItemAdded")
			srv := httptest.NewServer(New(newStore(t), schemas, Options{}).Handler())
			t.Cleanup(srv.Close)
			a := &api{t: t, url: srv.URL}

			const path = "/v1/streams/Order-a1b2c3d4/events"
			withID := func(id, event string) string { return strings.Replace(event, `{"type"`, `{"id": "`+id+`", "type"`, 1) }
			const id1, id2 = "0190f2a4-8d3c-7b1e-9f00-000000000001", "0190f2a4-8d3c-7b1e-9f00-000000000002"
			body := appendBody(-1, withID(id1, orderCreated), withID(id2, itemAdded))
			first := a.do("POST", path, body)
			if first.status != http.StatusCreated {
				t.Fatalf("append under v1 = %d %s, want 201", first.status, first.body)
			}
			registerV2()

			retry := a.do("POST", path, body)
			if retry.status != http.StatusOK || string(retry.body) != string(first.body) {
				t.Errorf("the same append after v2 was registered = %d %s, want 200 %s", retry.status, retry.body, first.body)
			}
			for what, changed := range map[string]string{
				"another quantity":                  strings.Replace(itemAdded, `"quantity": 2`, `"quantity": 3`, 1),
				"a currency other than the default": strings.Replace(itemAdded, `"price"`, `"currency": "EUR", "price"`, 1),
			} {
				r := a.do("POST", path, appendBody(-1, withID(id1, orderCreated), withID(id2, changed)))
				if r.status != http.StatusConflict || r.errorOf().Code != eventstore.CodeDuplicateEventID {
					t.Errorf("a retry with %s = %d %s, want 409 duplicate_event_id", what, r.status, r.body)
				}
			}
		})
	}
}
