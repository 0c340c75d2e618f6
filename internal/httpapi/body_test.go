package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/memstore"
)

// A body that declares a gigabyte and sends ten bytes costs ten bytes'
// worth of buffer, not the declared size.
func TestAppendAllocatesWhatArrivesNotTheDeclaredLength(t *testing.T) {
	h := New(memstore.New(), loadTestSchemas(t), Options{}).Handler()
	const declared = 1<<30 - 1
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/streams/Order-1/events", strings.NewReader(`{"events":`))
		req.ContentLength = declared
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	serve() // warm up: the first request builds lazily made state

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := serve()
	runtime.ReadMemStats(&after)

	if rec.Code != http.StatusBadRequest {
		t.Errorf("append of a body shorter than its Content-Length = %d %s, want 400", rec.Code, rec.Body)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("append declaring Content-Length %d and sending 10 bytes allocated %d bytes, want under 1 MiB", declared, grew)
	}
}

// A body that does not arrive in time is cut off: the request is answered
// and the connection closed, instead of holding the handler for good.
func TestASlowBodyIsCutOffByTheBodyTimeout(t *testing.T) {
	h := New(memstore.New(), loadTestSchemas(t), Options{BodyTimeout: 50 * time.Millisecond}).Handler()
	addr := serveOnLoopback(t, h)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Send the headers and ten bytes of a 100-byte body, and then nothing:
	// the test waits for the server's answer, which the body timeout
	// forces. The client's own deadline only turns a hang into a failure.
	fmt.Fprintf(conn, "POST /v1/streams/Order-1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"events\":")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a request whose body stalls: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "did not arrive within") {
		t.Errorf("stalled body = %d %s, want 400 saying the body did not arrive in time", resp.StatusCode, body)
	}
}

// The body's deadline ends with the body: a request whose work takes
// longer than the body timeout is not cancelled by it.
func TestTheBodyTimeoutDoesNotCutTheWorkAfterTheBody(t *testing.T) {
	const bodyTimeout = 50 * time.Millisecond
	store := &slowStore{Store: memstore.New(), wait: 4 * bodyTimeout}
	h := New(store, loadTestSchemas(t), Options{BodyTimeout: bodyTimeout}).Handler()
	addr := serveOnLoopback(t, h)

	resp, err := http.Post("http://"+addr+"/v1/streams/Order-a1b2c3d4/events", "application/json", strings.NewReader(appendBody(0, orderCreated)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("append that takes %s after its body = %d %s, want 201", store.wait, resp.StatusCode, body)
	}
}

// slowStore's appends take at least wait, and fail if their context ends
// first.
type slowStore struct {
	eventstore.Store
	wait time.Duration
}

func (s *slowStore) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	select {
	case <-ctx.Done():
		return eventstore.AppendResult{}, fmt.Errorf("the append's context ended while it worked: %w", ctx.Err())
	case <-time.After(s.wait):
	}
	return s.Store.Append(ctx, stream, expected, events)
}

// serveOnLoopback serves h with Serve, as the writer does, until the test
// ends, and returns its address.
func serveOnLoopback(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, slog.New(slog.DiscardHandler), time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return ln.Addr().String()
}
