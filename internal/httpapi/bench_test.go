package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-events/strata/internal/memstore"
)

// BenchmarkAppendHandler measures the HTTP layer's own work per append —
// parsing, validation, Avro encoding, the response — over the in-memory
// store, without the network or a database.
func BenchmarkAppendHandler(b *testing.B) {
	h := New(memstore.New(), loadTestSchemas(&testing.T{}), Options{}).Handler()
	body := `{"expectedVersion": %d, "events": [{"type": "OrderItemAdded", "data": {"orderId": "a1b2c3d4",
		"itemId": "widget-x", "quantity": 2, "price": 15.99, "timestamp": "2023-10-27T10:01:30Z"},
		"metadata": {"correlationId": "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a", "causationId": "cmd-1"}}]}`
	b.ReportAllocs()
	v := 0
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/streams/Order-bench/events", strings.NewReader(fmt.Sprintf(body, v)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("append = %d %s", rec.Code, rec.Body)
		}
		v++
	}
}
