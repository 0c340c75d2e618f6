package orders

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/aggregatetest"
	"github.com/strata-events/strata/client"
)

var decidedAt = time.Date(2023, 10, 27, 10, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))

// stamped is decidedAt as events carry it.
var stamped = time.Date(2023, 10, 27, 8, 0, 0, 123000000, time.UTC)

// history folds events, as decided by the commands, into an order's state
// the way a read of its stream would give them.
func history(t *testing.T, events ...client.Event) Order {
	t.Helper()
	o := Order{ID: "o-1"}
	for i, e := range events {
		data, err := json.Marshal(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if o, err = Evolve(o, client.RecordedEvent{Type: e.Type, Version: int64(i + 1), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func createdEvent() client.Event {
	return client.Event{Type: TypeOrderCreated, Data: OrderCreated{OrderID: "o-1", CustomerID: "user123", Timestamp: stamped}}
}

func itemEvent(item string, quantity int, price string) client.Event {
	return client.Event{Type: TypeOrderItemAdded, Data: OrderItemAdded{OrderID: "o-1", ItemID: item, Quantity: quantity, Price: price, Timestamp: stamped}}
}

func shippedEvent() client.Event {
	return client.Event{Type: TypeOrderShipped, Data: OrderShipped{OrderID: "o-1", ShippingAddress: "123 Main St", Timestamp: stamped},
		Metadata: client.Metadata{DataSubject: "user123"}}
}

func TestOrderCommandsFollowTheRules(t *testing.T) {
	var (
		none    []client.Event
		created = []client.Event{createdEvent()}
		filled  = []client.Event{createdEvent(), itemEvent("widget-x", 2, "15.99")}
		sent    = []client.Event{createdEvent(), itemEvent("widget-x", 2, "15.99"), shippedEvent()}
	)
	create := func(customer string) func(Order) ([]client.Event, error) {
		return func(o Order) ([]client.Event, error) { return o.Create(customer, decidedAt) }
	}
	add := func(item string, quantity int, price string) func(Order) ([]client.Event, error) {
		return func(o Order) ([]client.Event, error) { return o.AddItem(item, quantity, price, decidedAt) }
	}
	ship := func(address string) func(Order) ([]client.Event, error) {
		return func(o Order) ([]client.Event, error) { return o.Ship(address, decidedAt) }
	}
	tests := []struct {
		name    string
		given   []client.Event
		command func(Order) ([]client.Event, error)
		want    []client.Event
		wantErr error
		wantMsg string
	}{
		{"a new order is created", none, create("user123"), []client.Event{createdEvent()}, nil, ""},
		{"an order is created once", created, create("user123"), nil, ErrAlreadyCreated,
			"order o-1 already exists: an order is created once"},
		{"an order needs a customer", none, create(""), nil, ErrInvalid, "the customer id is empty"},

		{"an item is added to a created order", created, add("widget-x", 2, "15.99"), []client.Event{itemEvent("widget-x", 2, "15.99")}, nil, ""},
		{"items are added until the order ships", filled, add("widget-x", 1, "15.99"), []client.Event{itemEvent("widget-x", 1, "15.99")}, nil, ""},
		{"no item before the order is created", none, add("widget-x", 2, "15.99"), nil, ErrNotCreated,
			"order o-1 does not exist: create it before adding items"},
		{"no item after the order shipped", sent, add("widget-x", 2, "15.99"), nil, ErrShipped,
			"order o-1 is shipped: no items can be added"},
		{"an item needs an id", created, add("", 2, "15.99"), nil, ErrInvalid, "the item id is empty"},
		{"a quantity of zero is refused", created, add("widget-x", 0, "15.99"), nil, ErrInvalid,
			"item widget-x: the quantity must be positive, not 0"},
		{"a negative quantity is refused", created, add("widget-x", -3, "15.99"), nil, ErrInvalid,
			"item widget-x: the quantity must be positive, not -3"},
		{"a quantity beyond the schema's int is refused", created, add("widget-x", 1<<31, "15.99"), nil, ErrInvalid,
			"item widget-x: the quantity 2147483648 is too large (at most 2147483647)"},
		{"a negative price is refused", created, add("widget-x", 1, "-1.50"), nil, ErrInvalid,
			"item widget-x: the price -1.50 is negative: a price is 0 or more"},
		{"a price that is not a number is refused", created, add("widget-x", 1, "cheap"), nil, ErrInvalid,
			`item widget-x: the price "cheap" is not a decimal number such as 15.99`},
		{"an empty price is refused", created, add("widget-x", 1, ""), nil, ErrInvalid,
			`item widget-x: the price "" is not a decimal number such as 15.99`},
		{"a price in exponent form is refused", created, add("widget-x", 1, "1e3"), nil, ErrInvalid,
			`item widget-x: the price "1e3" is not a decimal number such as 15.99`},
		{"a price with a point and no decimals is refused", created, add("widget-x", 1, "15."), nil, ErrInvalid,
			`item widget-x: the price "15." is not a decimal number such as 15.99`},
		{"a price finer than cents is refused", created, add("widget-x", 1, "15.999"), nil, ErrInvalid,
			"item widget-x: the price 15.999 has more than 2 decimal places: prices are exact to the cent"},
		{"a price beyond decimal(18, 2) is refused", created, add("widget-x", 1, "12345678901234567"), nil, ErrInvalid,
			"item widget-x: the price 12345678901234567 is too large: at most 16 digits before the point"},
		{"a free item is fine", created, add("gift", 1, "0"), []client.Event{itemEvent("gift", 1, "0.00")}, nil, ""},
		{"a price is stored with two decimals", created, add("widget-x", 1, "015.9"), []client.Event{itemEvent("widget-x", 1, "15.90")}, nil, ""},
		{"trailing zeros beyond the cent are fine", created, add("widget-x", 1, "15.9900"), []client.Event{itemEvent("widget-x", 1, "15.99")}, nil, ""},
		{"minus zero is zero", created, add("gift", 1, "-0.00"), []client.Event{itemEvent("gift", 1, "0.00")}, nil, ""},
		{"the largest price fits", created, add("widget-x", 1, "9999999999999999.99"),
			[]client.Event{itemEvent("widget-x", 1, "9999999999999999.99")}, nil, ""},

		{"an order with items ships", filled, ship("123 Main St"), []client.Event{shippedEvent()}, nil, ""},
		{"an order ships once", sent, ship("123 Main St"), nil, ErrShipped, "order o-1 is already shipped: an order ships once"},
		{"an order without items does not ship", created, ship("123 Main St"), nil, ErrNoItems,
			"order o-1 has no items: an order ships with at least one"},
		{"an order that does not exist does not ship", none, ship("123 Main St"), nil, ErrNotCreated,
			"order o-1 does not exist: create it before shipping it"},
		{"an order ships to an address", filled, ship(" \t"), nil, ErrInvalid, "the shipping address is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.command(history(t, tt.given...))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || err.Error() != tt.wantMsg || got != nil {
					t.Fatalf("command = %v, %q; want no events and %q (%v)", got, err, tt.wantMsg, tt.wantErr)
				}
				for _, other := range []error{ErrInvalid, ErrAlreadyCreated, ErrNotCreated, ErrShipped, ErrNoItems} {
					if other != tt.wantErr && errors.Is(err, other) {
						t.Errorf("the error also matches %v", other)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("command = %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnOrderIDMustFitAStreamID(t *testing.T) {
	for _, id := range []string{"", "o 1", "o/1", "ö", string(make([]byte, 201))} {
		if _, err := (Order{ID: id}).Create("user123", decidedAt); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create for order id %q = %v, want ErrInvalid", id, err)
		}
	}
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'a'
	}
	for _, id := range []string{"a1b2c3d4", "o-1", "user@example.com:1_2", string(long)} {
		if _, err := (Order{ID: id}).Create("user123", decidedAt); err != nil {
			t.Errorf("Create for order id %q = %v", id, err)
		}
	}
}

func TestEvolveFoldsAnOrdersHistory(t *testing.T) {
	o := history(t, createdEvent(), itemEvent("widget-x", 2, "15.99"), itemEvent("gadget", 1, "5.00"),
		client.Event{Type: "OrderNoted", Data: map[string]any{"note": "fragile"}}, itemEvent("widget-x", 3, "14.50"))
	want := Order{ID: "o-1", CustomerID: "user123", Created: true, Items: []Item{
		{ItemID: "widget-x", Quantity: 5, Price: "14.50", Currency: DefaultCurrency},
		{ItemID: "gadget", Quantity: 1, Price: "5.00", Currency: DefaultCurrency},
	}, Version: 5}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}

	shipped, err := Evolve(o, client.RecordedEvent{Type: TypeOrderShipped, Version: 6,
		Data: json.RawMessage(`{"orderId": "o-1", "shippingAddress": "1 Main St", "timestamp": "2023-10-27T11:30:00Z"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !shipped.Shipped || shipped.ShippingAddress != "1 Main St" || shipped.Version != 6 {
		t.Errorf("after OrderShipped: %+v", shipped)
	}
	more, err := Evolve(o, client.RecordedEvent{Type: TypeOrderItemAdded, Version: 6,
		Data: json.RawMessage(`{"orderId": "o-1", "itemId": "gadget", "quantity": 1, "price": "5.00", "timestamp": "2023-10-27T11:30:00Z", "currency": "EUR"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if more.Items[1].Quantity != 2 || more.Items[1].Currency != "EUR" {
		t.Errorf("after a second gadget in EUR: %+v", more.Items[1])
	}
	// o is a value: evolving it changed nothing it holds.
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("Evolve changed the order it was given (-before +after):\n%s", diff)
	}
}

func TestEvolveFailsOnDataThatDoesNotDecode(t *testing.T) {
	_, err := Evolve(Order{}, client.RecordedEvent{ID: "e-1", Type: TypeOrderItemAdded, Version: 2,
		Data: json.RawMessage(`{"quantity": "two"}`)})
	if err == nil {
		t.Fatal("Evolve of an OrderItemAdded with a quantity as text = nil error")
	}
}

func TestAnAddItemRacingAShipIsDecidedAgainAndRejected(t *testing.T) {
	store := &aggregatetest.Store{}
	for _, step := range []func() (aggregate.Result, error){
		func() (aggregate.Result, error) { return Create(ctx, store, "o-1", "user123") },
		func() (aggregate.Result, error) { return AddItem(ctx, store, "o-1", "widget-x", 2, "15.99") },
	} {
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// The ship lands between the AddItem's read and its append.
	var once sync.Once
	store.BeforeAppend = func(ctx context.Context, streamID string) {
		once.Do(func() {
			if _, err := Ship(ctx, store, "o-1", "123 Main St"); err != nil {
				t.Errorf("Ship = %v", err)
			}
		})
	}
	res, err := AddItem(ctx, store, "o-1", "gadget", 1, "5.00")
	var rejected *aggregate.RejectedError
	if !errors.As(err, &rejected) || !errors.Is(err, ErrShipped) || !errors.Is(err, aggregate.ErrRejected) {
		t.Fatalf("AddItem = %v, want a rejection: the order is shipped", err)
	}
	if err.Error() != "order o-1 is shipped: no items can be added" || res.Attempts != 2 || rejected.Version != 3 {
		t.Errorf("AddItem = %q after %d attempts on version %d; want the shipped rejection after 2, on version 3", err, res.Attempts, rejected.Version)
	}
	var types []string
	for _, e := range store.Events(StreamID("o-1")) {
		types = append(types, e.Type)
	}
	if diff := cmp.Diff([]string{TypeOrderCreated, TypeOrderItemAdded, TypeOrderShipped}, types); diff != "" {
		t.Errorf("the stream (-want +got):\n%s", diff)
	}
}

func TestCommandsOnAnOrderIDThatCannotBeAStreamSendNothing(t *testing.T) {
	store := &aggregatetest.Store{}
	_, err := AddItem(ctx, store, "o 1", "widget-x", 1, "1.00")
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, aggregate.ErrRejected) {
		t.Errorf("AddItem to order %q = %v, want a rejection", "o 1", err)
	}
	if reads, appends := store.Calls(); reads+appends != 0 {
		t.Errorf("%d reads and %d appends, want none", reads, appends)
	}
}

func TestEventsAreSentAsTheSchemasWantThem(t *testing.T) {
	o := history(t, createdEvent())
	events, err := o.AddItem("widget-x", 2, "15.9", decidedAt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(events[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	// UTC, to the millisecond; the price with exactly two decimals; no
	// currency, so a writer with only version 1 of the schema takes it.
	want := `{"orderId":"o-1","itemId":"widget-x","quantity":2,"price":"15.90","timestamp":"2023-10-27T08:00:00.123Z"}`
	if string(got) != want {
		t.Errorf("OrderItemAdded data = %s, want %s", got, want)
	}
}
