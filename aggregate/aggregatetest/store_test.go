package aggregatetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/aggregatetest"
	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/writertest"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

var _ aggregate.Store = (*aggregatetest.Store)(nil)

// The same checks run against the in-memory Store and against a real
// writer through the client, so that the Store stays faithful to the API.
func TestStoreAnswersAsTheWriterDoes(t *testing.T) {
	t.Run("in memory", func(t *testing.T) { checkStore(t, &aggregatetest.Store{}) })
	t.Run("a writer through the client", func(t *testing.T) {
		c, err := client.New(writertest.Start(t, httpapi.Options{}).URL, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkStore(t, c)
	})
}

func created(id string) client.Event {
	return client.Event{Type: "OrderCreated", Data: map[string]any{"orderId": id, "customerId": "c-1", "timestamp": "2023-10-27T10:00:00Z"}}
}

func shipped(id string) client.Event {
	return client.Event{Type: "OrderShipped", Data: map[string]any{"orderId": id, "shippingAddress": "1 Main St", "timestamp": "2023-10-27T11:00:00Z"},
		Metadata: client.Metadata{DataSubject: "c-" + id}}
}

func checkStore(t *testing.T, store aggregate.Store) {
	code := func(err error) string {
		if err == nil {
			return ""
		}
		if client.ErrorCode(err) == "" {
			t.Fatalf("error %v (%T) is not a *client.Error", err, err)
		}
		return client.ErrorCode(err)
	}
	appendTo := func(stream string, expected client.ExpectedVersion, events ...client.Event) (client.AppendResult, error) {
		t.Helper()
		return store.Append(ctx, stream, expected, events)
	}

	if _, err := store.ReadStream(ctx, "Order-1", 1, 10); !client.IsStreamNotFound(err) {
		t.Errorf("reading a stream that does not exist = %v, want stream_not_found", err)
	}
	_, err := appendTo("Order-1", client.StreamExists, created("1"))
	var e *client.Error
	if code(err) != client.CodeWrongExpectedVersion || !errors.As(err, &e) || e.Status != 409 || e.Expected != client.StreamExists || e.Actual != 0 {
		t.Errorf("appending expecting a stream that does not exist = %v, want 409 wrong_expected_version, actual 0", err)
	}
	res, err := appendTo("Order-1", client.NoStream, created("1"), shipped("1"))
	if err != nil || res.FirstVersion != 1 || res.LastVersion != 2 || res.StreamID != "Order-1" || len(res.Events) != 2 ||
		res.Events[1].Version != 2 || res.Events[1].ID == "" || res.Events[1].GlobalPosition <= res.Events[0].GlobalPosition {
		t.Fatalf("appending to a new stream = %+v, %v", res, err)
	}
	for _, tt := range []struct {
		name     string
		expected client.ExpectedVersion
		wantCode string
	}{
		{"no stream, to a stream that exists", client.NoStream, client.CodeWrongExpectedVersion},
		{"a version the stream is past", 1, client.CodeWrongExpectedVersion},
		{"a version the stream is not at yet", 3, client.CodeWrongExpectedVersion},
		{"an invalid expected version", -3, client.CodeInvalidExpectedVersion},
	} {
		_, err := appendTo("Order-1", tt.expected, shipped("1"))
		if got := code(err); got != tt.wantCode {
			t.Errorf("appending expecting %s = %v, want %s", tt.name, err, tt.wantCode)
		}
		if tt.wantCode == client.CodeWrongExpectedVersion && (!errors.As(err, &e) || e.Actual != 2 || e.Expected != tt.expected) {
			t.Errorf("appending expecting %s = %+v, want expected %d, actual 2", tt.name, e, tt.expected)
		}
	}
	if _, err := appendTo("Order-1", client.Any); code(err) != client.CodeInvalidRequest {
		t.Errorf("appending no events = %v, want invalid_request", err)
	}
	for _, expected := range []client.ExpectedVersion{2, client.StreamExists, client.Any} {
		if _, err := appendTo("Order-1", expected, shipped("1")); err != nil {
			t.Errorf("appending expecting %d = %v", expected, err)
		}
	}

	page, err := store.ReadStream(ctx, "Order-1", 2, 2)
	if err != nil || len(page.Events) != 2 || page.Next != 4 || page.Version != 5 {
		t.Fatalf("reading from 2, limit 2 = %d events, next %d, version %d, %v; want 2, 4, 5", len(page.Events), page.Next, page.Version, err)
	}
	got := page.Events[0]
	if got.Version != 2 || got.Type != "OrderShipped" || got.StreamID != "Order-1" || got.ID != res.Events[1].ID || got.RecordedAt.IsZero() {
		t.Errorf("event 2 = %+v", got)
	}
	var data, want map[string]any
	json.Unmarshal(got.Data, &data)
	wantJSON, _ := json.Marshal(shipped("1").Data)
	json.Unmarshal(wantJSON, &want)
	if diff := cmp.Diff(want, data); diff != "" {
		t.Errorf("event 2's data (-want +got):\n%s", diff)
	}
	page, err = store.ReadStream(ctx, "Order-1", 9, 10)
	if err != nil || len(page.Events) != 0 || page.Next != 9 || page.Version != 5 {
		t.Errorf("reading past the end = %d events, next %d, version %d, %v; want 0, 9, 5", len(page.Events), page.Next, page.Version, err)
	}
	if _, err := store.ReadStream(ctx, "Order-1", 1, client.MaxReadLimit+1); code(err) != client.CodeInvalidRequest {
		t.Errorf("reading more than the limit = %v, want invalid_request", err)
	}
}

func TestBeforeAppendIsNotCalledForItsOwnAppends(t *testing.T) {
	store := &aggregatetest.Store{}
	var calls atomic.Int32
	store.BeforeAppend = func(ctx context.Context, streamID string) {
		calls.Add(1)
		if _, err := store.Append(ctx, streamID, client.Any, []client.Event{shipped("1")}); err != nil {
			t.Error(err)
		}
	}
	if _, err := store.Append(ctx, "Order-1", client.NoStream, []client.Event{created("1")}); !client.IsWrongExpectedVersion(err) {
		t.Errorf("an append after the hook's = %v, want wrong_expected_version", err)
	}
	if _, err := store.Append(ctx, "Order-1", client.Any, []client.Event{created("1")}); err != nil {
		t.Error(err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("BeforeAppend called %d times, want 2", n)
	}
	if n := len(store.Events("Order-1")); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
}

func TestPageSizeCapsReads(t *testing.T) {
	store := &aggregatetest.Store{PageSize: 2}
	if _, err := store.Append(ctx, "Order-1", client.Any, []client.Event{created("1"), shipped("1"), shipped("1")}); err != nil {
		t.Fatal(err)
	}
	page, err := store.ReadStream(ctx, "Order-1", 0, 100)
	if err != nil || len(page.Events) != 2 || page.Next != 3 || page.Version != 3 {
		t.Errorf("read = %d events, next %d, version %d, %v; want 2, 3, 3", len(page.Events), page.Next, page.Version, err)
	}
}
