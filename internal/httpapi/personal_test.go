package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/writertest"
)

// call sends a request with a token and returns the status and body.
func call(t *testing.T, w *writertest.Writer, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, w.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const (
	created = `{"type": "OrderCreated", "data": {"orderId": "%s", "customerId": "%s", "timestamp": "2026-01-02T03:04:05Z"}}`
	shipped = `{"type": "OrderShipped", "data": {"orderId": "%s", "shippingAddress": "%s", "timestamp": "2026-01-02T04:04:05Z"}, "metadata": {"dataSubject": "%s"}}`
)

// firstShipped subscribes and returns the data of the first OrderShipped
// the subscription delivers.
func firstShipped(t *testing.T, w *writertest.Writer, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.URL+path, nil)
	req.Header.Set("Authorization", "Bearer r")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if line := lines.Text(); strings.HasPrefix(line, "data:") && strings.Contains(line, `"type":"OrderShipped"`) {
			return line
		}
	}
	t.Fatalf("the subscription %s delivered no OrderShipped: %v", path, lines.Err())
	return ""
}

// order is the body of an append that creates and ships an order.
func order(id, customer, address string) string {
	c := strings.Replace(strings.Replace(created, "%s", id, 1), "%s", customer, 1)
	s := strings.Replace(strings.Replace(strings.Replace(shipped, "%s", id, 1), "%s", address, 1), "%s", customer, 1)
	return `{"expectedVersion": 0, "events": [` + c + `, ` + s + `]}`
}

func TestPersonalFieldsAreEncryptedAndErasedByTheirSubject(t *testing.T) {
	w := writertest.Start(t, httpapi.Options{Tokens: []httpapi.Token{
		{Secret: "r", Role: httpapi.RoleReader}, {Secret: "w", Role: httpapi.RoleWriter}, {Secret: "a", Role: httpapi.RoleAdmin, Principal: "dpo"}}})
	pool := w.Store.Pool()

	t.Run("an event with personal fields needs a valid data subject, and bad input stores nothing", func(t *testing.T) {
		noSubject := `{"expectedVersion": 0, "events": [{"type": "OrderShipped", "data": {"orderId": "9", "shippingAddress": "x", "timestamp": 1}}]}`
		for _, tc := range []struct{ body, want string }{
			{noSubject, `events[0].metadata.dataSubject: OrderShipped has personal fields (shippingAddress): name their data subject in metadata.dataSubject`},
			{strings.Replace(noSubject, `"timestamp": 1}`, `"timestamp": 1}, "metadata": {"dataSubject": " c-1"}`, 1), `events[0].metadata.dataSubject: a data subject id must not begin or end with spaces`},
			{strings.Replace(noSubject, `"timestamp": 1}`, `"timestamp": 1}, "metadata": {"dataSubject": "c\u0001"}`, 1), `events[0].metadata.dataSubject: a data subject id must be text without control characters`},
			{`{"expectedVersion": 0, "events": [{"type": "OrderCreated", "data": {"orderId": "9", "customerId": "c-1", "timestamp": 1}, "metadata": {"dataSubject": "c-2"}}]}`,
				`differs from the event's own data subject, its field customerId`},
		} {
			status, body := call(t, w, "POST", "/v1/streams/Order-9/events", "w", tc.body)
			if status != http.StatusBadRequest || !strings.Contains(body, tc.want) || !strings.Contains(body, `"invalid_request"`) {
				t.Errorf("append %s = %d %s, want 400 invalid_request saying %q", tc.body, status, body, tc.want)
			}
		}
		var n int
		pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n)
		if n != 0 {
			t.Errorf("refused appends stored %d events", n)
		}
	})

	for _, o := range [][3]string{{"1", "c-1", "42 Secret Lane"}, {"2", "c-1", "42 Secret Lane, flat 2"}, {"3", "c-2", "7 Open Road"}} {
		if status, body := call(t, w, "POST", "/v1/streams/Order-"+o[0]+"/events", "w", order(o[0], o[1], o[2])); status != http.StatusCreated {
			t.Fatalf("append = %d %s", status, body)
		}
	}

	t.Run("the store holds ciphertext, and the subject of each event", func(t *testing.T) {
		var leaks, sealed int
		pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE position('Secret'::bytea IN data) > 0),
			count(*) FILTER (WHERE position($1::bytea IN data) > 0) FROM events`, []byte(personal.Envelope)).Scan(&leaks, &sealed)
		if leaks != 0 || sealed != 3 {
			t.Errorf("%d events hold the address in the clear and %d an envelope; want 0 and 3", leaks, sealed)
		}
		var subjects string
		pool.QueryRow(context.Background(), `SELECT string_agg(coalesce(data_subject, '-'), ' ' ORDER BY position) FROM events`).Scan(&subjects)
		if subjects != "c-1 c-1 c-1 c-1 c-2 c-2" {
			t.Errorf("the events' subjects are %q, want each order's customer, OrderCreated's from its customerId", subjects)
		}
	})

	read := func(t *testing.T, path string) string {
		t.Helper()
		status, body := call(t, w, "GET", path, "r", "")
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		return body
	}
	if got := read(t, "/v1/streams/Order-1/events"); !strings.Contains(got, `"shippingAddress":"42 Secret Lane"`) {
		t.Fatalf("a stream read shows %s, want the address decrypted", got)
	}

	t.Run("an access request answers every event of the subject, decrypted, to admins only", func(t *testing.T) {
		if status, _ := call(t, w, "GET", "/v1/data-subjects/c-1/events", "w", ""); status != http.StatusForbidden {
			t.Errorf("an access request with a writer token = %d, want 403", status)
		}
		status, body := call(t, w, "GET", "/v1/data-subjects/c-1/events", "a", "")
		var got struct {
			SubjectID string
			Events    []struct {
				StreamID, Type string
				Data           map[string]any
			}
			Next int64
		}
		json.Unmarshal([]byte(body), &got)
		if status != http.StatusOK || got.SubjectID != "c-1" || len(got.Events) != 4 || got.Next != 0 ||
			got.Events[1].Data["shippingAddress"] != "42 Secret Lane" || got.Events[3].StreamID != "Order-2" {
			t.Errorf("GET /v1/data-subjects/c-1/events = %d %s, want the 4 events of orders 1 and 2, decrypted", status, body)
		}
		status, body = call(t, w, "GET", "/v1/data-subjects/c-1/events?limit=3", "a", "")
		json.Unmarshal([]byte(body), &got)
		if status != http.StatusOK || len(got.Events) != 3 || got.Next == 0 {
			t.Errorf("a first page of 3 = %d %s, want 3 events and a next position", status, body)
		}
		for _, q := range []string{"?limit=0", "?after=-1", "?after=x", "?from=1", "?limit=1&limit=2"} {
			if status, body := call(t, w, "GET", "/v1/data-subjects/c-1/events"+q, "a", ""); status != http.StatusBadRequest {
				t.Errorf("GET .../events%s = %d %s, want 400", q, status, body)
			}
		}
	})

	t.Run("an erasure needs admin and a valid subject id", func(t *testing.T) {
		if status, _ := call(t, w, "DELETE", "/v1/data-subjects/c-1", "w", ""); status != http.StatusForbidden {
			t.Errorf("an erasure with a writer token = %d, want 403", status)
		}
		for _, path := range []string{"/v1/data-subjects/%20c-1", "/v1/data-subjects/" + strings.Repeat("x", 201), "/v1/data-subjects/c-1?hard=true"} {
			if status, body := call(t, w, "DELETE", path, "a", ""); status != http.StatusBadRequest || !strings.Contains(body, "invalid_request") {
				t.Errorf("DELETE %s = %d %s, want 400 invalid_request", path, status, body)
			}
		}
		if got := read(t, "/v1/streams/Order-1/events"); !strings.Contains(got, "42 Secret Lane") {
			t.Error("a refused erasure erased")
		}
	})

	status, body := call(t, w, "DELETE", "/v1/data-subjects/c-1", "a", "")
	var erasure struct {
		SubjectID    string
		KeyDestroyed bool
		Streams      []struct {
			StreamID string
			Version  int64
		}
	}
	json.Unmarshal([]byte(body), &erasure)
	if status != http.StatusOK || erasure.SubjectID != "c-1" || !erasure.KeyDestroyed || len(erasure.Streams) != 2 ||
		erasure.Streams[0].StreamID != "Order-1" || erasure.Streams[0].Version != 3 || erasure.Streams[1].StreamID != "Order-2" {
		t.Fatalf("DELETE /v1/data-subjects/c-1 = %d %s, want 200, the key destroyed, $DataSubjectErased at version 3 of Order-1 and Order-2", status, body)
	}

	t.Run("every read shows the subject's fields erased, another subject's readable", func(t *testing.T) {
		for _, path := range []string{"/v1/streams/Order-1/events", "/v1/streams/Order-2/events", "/v1/events", "/v1/categories/Order/events"} {
			got := read(t, path)
			if strings.Contains(got, "Secret") || !strings.Contains(got, `"shippingAddress":"[erased]"`) {
				t.Errorf("GET %s = %s, want the address [erased]", path, got)
			}
		}
		if got := read(t, "/v1/streams/Order-3/events"); !strings.Contains(got, `"shippingAddress":"7 Open Road"`) {
			t.Errorf("another subject's order reads %s", got)
		}
		got := read(t, "/v1/streams/Order-1/events")
		if !strings.Contains(got, `"type":"$DataSubjectErased"`) || !strings.Contains(got, `"subjectId":"c-1"`) {
			t.Errorf("Order-1 reads %s, want its $DataSubjectErased", got)
		}
		_, body := call(t, w, "GET", "/v1/data-subjects/c-1/events", "a", "")
		if strings.Contains(body, "Secret") || !strings.Contains(body, "[erased]") {
			t.Errorf("an access request after the erasure answers %s", body)
		}
		for stream, want := range map[string]string{"Order-1": `"shippingAddress":"[erased]"`, "Order-3": `"shippingAddress":"7 Open Road"`} {
			if got := firstShipped(t, w, "/v1/streams/"+stream+"/subscribe"); !strings.Contains(got, want) {
				t.Errorf("a subscription to %s delivers %s, want %s", stream, got, want)
			}
		}
	})

	t.Run("a second erasure destroys nothing more and answers as the first", func(t *testing.T) {
		status, body := call(t, w, "DELETE", "/v1/data-subjects/c-1", "a", "")
		if status != http.StatusOK || !strings.Contains(body, `"keyDestroyed":false`) {
			t.Errorf("a second erasure = %d %s", status, body)
		}
		status, body = call(t, w, "DELETE", "/v1/data-subjects/nobody", "a", "")
		if status != http.StatusOK || !strings.Contains(body, `"keyDestroyed":false,"streams":[]`) {
			t.Errorf("erasing a subject never seen = %d %s, want 200 with nothing done", status, body)
		}
	})

	t.Run("the subject written again has a new key, readable", func(t *testing.T) {
		if status, body := call(t, w, "POST", "/v1/streams/Order-4/events", "w", order("4", "c-1", "1 New Street")); status != http.StatusCreated {
			t.Fatalf("append = %d %s", status, body)
		}
		if got := read(t, "/v1/streams/Order-4/events"); !strings.Contains(got, `"shippingAddress":"1 New Street"`) {
			t.Errorf("the new order reads %s", got)
		}
		if got := read(t, "/v1/streams/Order-1/events"); !bytes.Contains([]byte(got), []byte("[erased]")) {
			t.Errorf("the erased order reads %s after the subject's new key", got)
		}
	})

	t.Run("a retry with the same event ids is a replay, though each encryption differs", func(t *testing.T) {
		body := strings.Replace(order("5", "c-5", "5 Retry Row"), `{"type": "OrderShipped"`, `{"id": "0190f2a4-8d3c-7b1e-9f00-00000000c0c5", "type": "OrderShipped"`, 1)
		body = strings.Replace(body, `{"type": "OrderCreated"`, `{"id": "0190f2a4-8d3c-7b1e-9f00-00000000c0c4", "type": "OrderCreated"`, 1)
		first, firstBody := call(t, w, "POST", "/v1/streams/Order-5/events", "w", body)
		again, againBody := call(t, w, "POST", "/v1/streams/Order-5/events", "w", body)
		if first != http.StatusCreated || again != http.StatusOK || againBody != firstBody {
			t.Errorf("an append and its retry = %d %s and %d %s, want 201 then 200 with the same answer", first, firstBody, again, againBody)
		}
		other := strings.Replace(body, "5 Retry Row", "6 Other Row", 1)
		if status, reply := call(t, w, "POST", "/v1/streams/Order-5/events", "w", other); status != http.StatusConflict || !strings.Contains(reply, "duplicate_event_id") {
			t.Errorf("the same ids with another address = %d %s, want 409 duplicate_event_id", status, reply)
		}
	})

	t.Run("a retry of a multi-stream append with personal fields is a replay", func(t *testing.T) {
		// Order-m1's event is stored with the same bytes again, Order-m2's
		// address encrypted afresh: both are compared as values.
		body := `{"appends": [
			{"streamId": "Order-m1", "expectedVersion": 0, "events": [{"id": "0190f2a4-8d3c-7b1e-9f00-00000000d0d1", "type": "OrderItemAdded",
				"data": {"orderId": "m1", "itemId": "x", "quantity": 1, "price": "1.00", "timestamp": 1}}]},
			{"streamId": "Order-m2", "expectedVersion": 0, "events": [{"id": "0190f2a4-8d3c-7b1e-9f00-00000000d0d2", "type": "OrderShipped",
				"data": {"orderId": "m2", "shippingAddress": "2 Multi Mews", "timestamp": 1}, "metadata": {"dataSubject": "c-m"}}]}]}`
		first, firstBody := call(t, w, "POST", "/v1/events", "w", body)
		again, againBody := call(t, w, "POST", "/v1/events", "w", body)
		if first != http.StatusCreated || again != http.StatusOK || againBody != firstBody {
			t.Errorf("a multi-stream append and its retry = %d %s and %d %s, want 201 then 200 with the same answer", first, firstBody, again, againBody)
		}
		other := strings.Replace(body, "2 Multi Mews", "3 Other Mews", 1)
		if status, reply := call(t, w, "POST", "/v1/events", "w", other); status != http.StatusConflict || !strings.Contains(reply, "duplicate_event_id") {
			t.Errorf("the same ids with another address = %d %s, want 409 duplicate_event_id", status, reply)
		}
	})

	t.Run("appends racing an erasure all land; those after it are readable", func(t *testing.T) {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		failures := make(chan string, 100)
		for c := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("r%d-%d", c, i)
					if status, body := call(t, w, "POST", "/v1/streams/Order-"+id+"/events", "w", order(id, "c-9", "9 Race Road")); status != http.StatusCreated {
						failures <- fmt.Sprintf("append %s = %d %s", id, status, body)
						return
					}
				}
			}()
		}
		time.Sleep(100 * time.Millisecond)
		status, body := call(t, w, "DELETE", "/v1/data-subjects/c-9", "a", "")
		close(stop)
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Error(f)
		}
		if status != http.StatusOK || !strings.Contains(body, `"keyDestroyed":true`) {
			t.Fatalf("the erasure amid appends = %d %s", status, body)
		}
		if status, body := call(t, w, "POST", "/v1/streams/Order-after/events", "w", order("after", "c-9", "10 After Street")); status != http.StatusCreated {
			t.Fatalf("append after the erasure = %d %s", status, body)
		}
		if got := read(t, "/v1/streams/Order-after/events"); !strings.Contains(got, `"shippingAddress":"10 After Street"`) {
			t.Errorf("an order appended after the erasure answered reads %s", got)
		}
		// In each stream the erasure reached, everything before its
		// $DataSubjectErased is erased.
		var erasure struct{ Streams []struct{ StreamID string } }
		json.Unmarshal([]byte(body), &erasure)
		for _, s := range erasure.Streams {
			var page struct {
				Events []struct {
					Type string
					Data map[string]any
				}
			}
			json.Unmarshal([]byte(read(t, "/v1/streams/"+s.StreamID+"/events")), &page)
			for _, e := range page.Events {
				if e.Type == "$DataSubjectErased" {
					break
				}
				if a, ok := e.Data["shippingAddress"]; ok && a != "[erased]" {
					t.Errorf("%s's %s before its $DataSubjectErased reads the address %v", s.StreamID, e.Type, a)
				}
			}
		}
	})
}
