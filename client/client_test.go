package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/writertest"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// newClient returns a Client of a writer of the test's own.
func newClient(t *testing.T, opts httpapi.Options, token string) *client.Client {
	t.Helper()
	w := writertest.Start(t, opts)
	c, err := client.New(w.URL, client.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func created(orderID string) client.Event {
	return client.Event{Type: "OrderCreated", Data: map[string]any{
		"orderId": orderID, "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}}
}

func itemAdded(orderID string) client.Event {
	// A json.RawMessage goes as it is: the price as a JSON number.
	return client.Event{Type: "OrderItemAdded", Data: json.RawMessage(`{"orderId": "` + orderID +
		`", "itemId": "widget-x", "quantity": 2, "price": 15.99, "timestamp": "2023-10-27T10:01:30Z"}`)}
}

type shippedData struct {
	OrderID         string `json:"orderId"`
	ShippingAddress string `json:"shippingAddress"`
	Timestamp       string `json:"timestamp"`
}

func shipped(orderID string) client.Event {
	return client.Event{Type: "OrderShipped", Data: shippedData{orderID, "123 Main St, Anytown, USA", "2023-10-27T11:30:00Z"},
		Metadata: client.Metadata{DataSubject: "user123"}} // the address is personal data: its customer's
}

// mustAppend appends and fails the test on an error.
func mustAppend(t *testing.T, c *client.Client, stream string, expected client.ExpectedVersion, events ...client.Event) client.AppendResult {
	t.Helper()
	res, err := c.Append(ctx, stream, expected, events)
	if err != nil {
		t.Fatalf("Append(%q, %d) = %v", stream, expected, err)
	}
	return res
}

func TestAppendThenReadTheStreamPageByPage(t *testing.T) {
	c := newClient(t, httpapi.Options{}, "")
	first := created("a1b2c3d4")
	first.Metadata = client.Metadata{CorrelationID: "c-1", CausationID: "cmd-1", UserID: "u-9", TenantID: "t-1",
		Custom: map[string]string{"source": "web"}}
	before := time.Now()
	res := mustAppend(t, c, "Order-a1b2c3d4", client.NoStream, first, itemAdded("a1b2c3d4"), shipped("a1b2c3d4"))
	if res.StreamID != "Order-a1b2c3d4" || res.FirstVersion != 1 || res.LastVersion != 3 || res.Replayed || len(res.Events) != 3 {
		t.Fatalf("Append = %+v, want Order-a1b2c3d4 versions 1 to 3, three events, not replayed", res)
	}
	for i, e := range res.Events {
		if e.ID == "" || e.Version != int64(i+1) || e.GlobalPosition <= 0 {
			t.Errorf("Append: events[%d] = %+v, want an id, version %d and a position", i, e, i+1)
		}
	}

	page, err := c.ReadStream(ctx, "Order-a1b2c3d4", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Next != 3 || page.Version != 3 {
		t.Fatalf("ReadStream(from 1, limit 2) = %d events, next %d, version %d; want 2, 3, 3", len(page.Events), page.Next, page.Version)
	}
	rest, err := c.ReadStream(ctx, "Order-a1b2c3d4", page.Next, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.Events) != 1 || rest.Next != 4 || rest.Version != 3 {
		t.Fatalf("ReadStream(from 3, limit 2) = %d events, next %d, version %d; want 1, 4, 3", len(rest.Events), rest.Next, rest.Version)
	}
	events := append(page.Events, rest.Events...)

	wantData := []string{
		`{"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}`,
		// Decimals read back as strings; version 2's currency is upcast in.
		`{"orderId": "a1b2c3d4", "itemId": "widget-x", "quantity": 2, "price": "15.99", "timestamp": "2023-10-27T10:01:30Z", "currency": "USD"}`,
		`{"orderId": "a1b2c3d4", "shippingAddress": "123 Main St, Anytown, USA", "timestamp": "2023-10-27T11:30:00Z"}`,
	}
	for i, e := range events {
		want := client.RecordedEvent{ID: res.Events[i].ID, StreamID: "Order-a1b2c3d4", Type: []string{"OrderCreated", "OrderItemAdded", "OrderShipped"}[i],
			Version: int64(i + 1), GlobalPosition: res.Events[i].GlobalPosition, RecordedAt: e.RecordedAt, SchemaID: e.SchemaID, Data: e.Data}
		switch i {
		case 0: // OrderCreated names its customer as its data subject (strata.dataSubject)
			want.Metadata = first.Metadata
			want.Metadata.DataSubject = "user123"
		case 2:
			want.Metadata.DataSubject = "user123"
		}
		if diff := cmp.Diff(want, e); diff != "" {
			t.Errorf("events[%d] (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(decode(t, wantData[i]), decode(t, string(e.Data))); diff != "" {
			t.Errorf("events[%d].Data (-want +got):\n%s", i, diff)
		}
		if e.SchemaID <= 0 {
			t.Errorf("events[%d].SchemaID = %d, want the registry's id", i, e.SchemaID)
		}
		if e.RecordedAt.Before(before.Add(-time.Minute)) || e.RecordedAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("events[%d].RecordedAt = %v, want about %v", i, e.RecordedAt, before)
		}
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return m
}

func TestReadStreamBackwardFromTheEnd(t *testing.T) {
	c := newClient(t, httpapi.Options{}, "")
	mustAppend(t, c, "Order-1", client.NoStream, created("1"), itemAdded("1"), shipped("1"))
	var versions []int64
	from := int64(0)
	for range 3 {
		page, err := c.ReadStreamBackward(ctx, "Order-1", from, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			versions = append(versions, e.Version)
		}
		if page.Next == 0 {
			break
		}
		from = page.Next
	}
	if diff := cmp.Diff([]int64{3, 2, 1}, versions); diff != "" {
		t.Errorf("versions read backward (-want +got):\n%s", diff)
	}
}

func TestAppendingTheSameIDsAgainIsReplayed(t *testing.T) {
	c := newClient(t, httpapi.Options{}, "")
	e := created("1")
	e.ID = "0190f1a2-0000-7000-8000-000000000001"
	first := mustAppend(t, c, "Order-1", client.NoStream, e)
	again := mustAppend(t, c, "Order-1", client.NoStream, e)
	if !again.Replayed || first.Replayed {
		t.Errorf("Replayed = %v then %v, want false then true", first.Replayed, again.Replayed)
	}
	first.Replayed = true
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("the replay's result differs from the first (-first +replay):\n%s", diff)
	}
	if first.Events[0].ID != e.ID {
		t.Errorf("stored id = %s, want the client's %s", first.Events[0].ID, e.ID)
	}
}

func TestRefusalsAreErrorsWithTheAPIsCodeAndDetails(t *testing.T) {
	c := newClient(t, httpapi.Options{}, "")
	existing := mustAppend(t, c, "Order-1", client.NoStream, created("1"), itemAdded("1"), shipped("1"))
	badQuantity := client.Event{Type: "OrderItemAdded", Data: map[string]any{"orderId": "2", "itemId": "x",
		"quantity": "two", "price": "1.00", "timestamp": "2023-10-27T10:01:30Z"}}
	reused := created("2")
	reused.ID = existing.Events[0].ID

	tests := []struct {
		name string
		call func() error
		want client.Error // RequestID and Message are checked apart
	}{
		{"an append at a version the stream is not at", func() error {
			_, err := c.Append(ctx, "Order-1", 2, []client.Event{itemAdded("1")})
			return err
		}, client.Error{Status: 409, Code: client.CodeWrongExpectedVersion, Expected: 2, Actual: 3, StreamID: "Order-1", EventIndex: -1}},
		{"an append that expects no stream to a stream that exists", func() error {
			_, err := c.Append(ctx, "Order-1", client.NoStream, []client.Event{created("1")})
			return err
		}, client.Error{Status: 409, Code: client.CodeWrongExpectedVersion, Expected: client.NoStream, Actual: 3, StreamID: "Order-1", EventIndex: -1}},
		{"an append that expects a stream that does not exist", func() error {
			_, err := c.Append(ctx, "Order-2", client.StreamExists, []client.Event{created("2")})
			return err
		}, client.Error{Status: 409, Code: client.CodeWrongExpectedVersion, Expected: client.StreamExists, Actual: 0, StreamID: "Order-2", EventIndex: -1}},
		{"a read of a stream that does not exist", func() error {
			_, err := c.ReadStream(ctx, "Order-2", 1, 10)
			return err
		}, client.Error{Status: 404, Code: client.CodeStreamNotFound, EventIndex: -1}},
		{"a stream id without a category", func() error {
			_, err := c.Append(ctx, "-1", client.Any, []client.Event{created("1")})
			return err
		}, client.Error{Status: 400, Code: client.CodeInvalidStreamID, EventIndex: -1}},
		{"an invalid expected version", func() error {
			_, err := c.Append(ctx, "Order-2", -3, []client.Event{created("2")})
			return err
		}, client.Error{Status: 400, Code: client.CodeInvalidExpectedVersion, EventIndex: -1}},
		{"an append of no events", func() error {
			_, err := c.Append(ctx, "Order-2", client.Any, nil)
			return err
		}, client.Error{Status: 400, Code: client.CodeInvalidRequest, EventIndex: -1}},
		{"a read page above the limit", func() error {
			_, err := c.ReadStream(ctx, "Order-1", 1, client.MaxReadLimit+1)
			return err
		}, client.Error{Status: 400, Code: client.CodeInvalidRequest, EventIndex: -1}},
		{"an unknown event type in the second event", func() error {
			_, err := c.Append(ctx, "Order-2", client.Any, []client.Event{created("2"), {Type: "OrderExploded", Data: map[string]any{}}})
			return err
		}, client.Error{Status: 422, Code: client.CodeUnknownEventType, EventIndex: 1}},
		{"data that does not fit the schema", func() error {
			_, err := c.Append(ctx, "Order-2", client.Any, []client.Event{badQuantity})
			return err
		}, client.Error{Status: 422, Code: client.CodeSchemaViolation, Path: "quantity", EventIndex: 0}},
		{"an event id another event has", func() error {
			_, err := c.Append(ctx, "Order-2", client.Any, []client.Event{reused})
			return err
		}, client.Error{Status: 409, Code: client.CodeDuplicateEventID, EventID: reused.ID, StreamID: "Order-1", EventIndex: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var got *client.Error
			if !errors.As(err, &got) {
				t.Fatalf("error = %v (%T), want a *client.Error", err, err)
			}
			if got.RequestID == "" || got.Message == "" {
				t.Errorf("error = %+v, want a message and a request id", got)
			}
			if !strings.Contains(err.Error(), got.Message) || !strings.Contains(err.Error(), tt.want.Code) {
				t.Errorf("Error() = %q, want the code and the message in it", err)
			}
			want := tt.want
			want.Message, want.RequestID = got.Message, got.RequestID
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if !errors.Is(err, &client.Error{Code: tt.want.Code}) || client.ErrorCode(err) != tt.want.Code {
				t.Errorf("errors.Is(err, code %s) = false or ErrorCode = %q", tt.want.Code, client.ErrorCode(err))
			}
			if got, want := client.IsWrongExpectedVersion(err), tt.want.Code == client.CodeWrongExpectedVersion; got != want {
				t.Errorf("IsWrongExpectedVersion = %v, want %v", got, want)
			}
			if got, want := client.IsStreamNotFound(err), tt.want.Code == client.CodeStreamNotFound; got != want {
				t.Errorf("IsStreamNotFound = %v, want %v", got, want)
			}
		})
	}
	page, err := c.ReadStream(ctx, "Order-1", 1, 100)
	if err != nil || page.Version != 3 {
		t.Errorf("after the refusals Order-1 is at version %d (%v), want 3: a refused append stores nothing", page.Version, err)
	}
	if _, err := c.ReadStream(ctx, "Order-2", 1, 100); !client.IsStreamNotFound(err) {
		t.Errorf("after the refusals reading Order-2 = %v, want stream_not_found", err)
	}
}

func TestTheTokenIsSentAsABearerToken(t *testing.T) {
	const writerToken, readerToken = "writer-token-0123456789", "reader-token-0123456789"
	w := writertest.Start(t, httpapi.Options{Tokens: []httpapi.Token{
		{Secret: writerToken, Role: httpapi.RoleWriter}, {Secret: readerToken, Role: httpapi.RoleReader}}})
	tests := []struct {
		name, token string
		appendCode  string
		readCode    string
	}{
		{"no token", "", client.CodeUnauthenticated, client.CodeUnauthenticated},
		{"a wrong token", "not-a-token-0123456789", client.CodeUnauthenticated, client.CodeUnauthenticated},
		{"a reader's token", readerToken, client.CodeForbidden, ""},
		{"a writer's token", writerToken, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(w.URL, client.Options{Token: tt.token})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Append(ctx, "Order-1", client.Any, []client.Event{created("1")})
			if got := client.ErrorCode(err); got != tt.appendCode || (tt.appendCode == "" && err != nil) {
				t.Errorf("Append = %v, want code %q", err, tt.appendCode)
			}
			_, err = c.ReadAll(ctx, "", 10)
			if got := client.ErrorCode(err); got != tt.readCode || (tt.readCode == "" && err != nil) {
				t.Errorf("ReadAll = %v, want code %q", err, tt.readCode)
			}
		})
	}
}

func TestReadCategoryAndReadAllPageWithTheNextToken(t *testing.T) {
	c := newClient(t, httpapi.Options{}, "")
	mustAppend(t, c, "Order-1", client.NoStream, created("1"), itemAdded("1"))
	mustAppend(t, c, "Order-2", client.NoStream, created("2"))
	mustAppend(t, c, "Order-1", 2, shipped("1"))

	readAll := func(read func(after string) (client.Page, error)) []string {
		t.Helper()
		var got []string
		after := ""
		for range 10 {
			page, err := read(after)
			if err != nil {
				t.Fatal(err)
			}
			if page.Next == "" {
				t.Fatal("a page without a next token")
			}
			if len(page.Events) == 0 {
				return got
			}
			for _, e := range page.Events {
				got = append(got, e.StreamID+"@"+e.Type)
			}
			after = page.Next
		}
		t.Fatal("reading never ended")
		return nil
	}
	want := []string{"Order-1@OrderCreated", "Order-1@OrderItemAdded", "Order-2@OrderCreated", "Order-1@OrderShipped"}
	category := readAll(func(after string) (client.Page, error) { return c.ReadCategory(ctx, "Order", after, 2) })
	if diff := cmp.Diff(want, category); diff != "" {
		t.Errorf("ReadCategory(Order) (-want +got):\n%s", diff)
	}
	all := readAll(func(after string) (client.Page, error) { return c.ReadAll(ctx, after, 3) })
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("ReadAll (-want +got):\n%s", diff)
	}
}
