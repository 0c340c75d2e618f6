package orders

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/writertest"
)

// These tests run the Order commands through the client against a real
// writer: PostgreSQL, the registered schemas and the HTTP API.

func newWriterClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(writertest.Start(t, httpapi.Options{}).URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnOrdersLifeThroughTheWriter(t *testing.T) {
	c := newWriterClient(t)
	steps := []struct {
		name        string
		run         func() (aggregate.Result, error)
		wantErr     error
		wantVersion int64
	}{
		{"create", func() (aggregate.Result, error) { return Create(ctx, c, "a1b2c3d4", "user123") }, nil, 1},
		{"create again", func() (aggregate.Result, error) { return Create(ctx, c, "a1b2c3d4", "user456") }, ErrAlreadyCreated, 1},
		{"ship without items", func() (aggregate.Result, error) { return Ship(ctx, c, "a1b2c3d4", "123 Main St") }, ErrNoItems, 1},
		{"add an item", func() (aggregate.Result, error) { return AddItem(ctx, c, "a1b2c3d4", "widget-x", 2, "15.99") }, nil, 2},
		{"add another", func() (aggregate.Result, error) { return AddItem(ctx, c, "a1b2c3d4", "gadget", 1, "5") }, nil, 3},
		{"add more of the first", func() (aggregate.Result, error) { return AddItem(ctx, c, "a1b2c3d4", "widget-x", 1, "14.5") }, nil, 4},
		{"ship", func() (aggregate.Result, error) { return Ship(ctx, c, "a1b2c3d4", "123 Main St, Anytown, USA") }, nil, 5},
		{"add after shipping", func() (aggregate.Result, error) { return AddItem(ctx, c, "a1b2c3d4", "widget-x", 1, "15.99") }, ErrShipped, 5},
		{"ship again", func() (aggregate.Result, error) { return Ship(ctx, c, "a1b2c3d4", "elsewhere") }, ErrShipped, 5},
		{"add to an order that does not exist", func() (aggregate.Result, error) { return AddItem(ctx, c, "nope", "widget-x", 1, "1.00") }, ErrNotCreated, 0},
	}
	for _, s := range steps {
		res, err := s.run()
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
			t.Fatalf("%s = %v, want %v", s.name, err, s.wantErr)
		}
		if s.wantErr != nil && !errors.Is(err, aggregate.ErrRejected) {
			t.Errorf("%s = %v, want an aggregate rejection", s.name, err)
		}
		if got := res.StreamVersion(); got != s.wantVersion || res.Attempts != 1 {
			t.Errorf("%s: stream version %d after %d attempts, want %d after 1", s.name, got, res.Attempts, s.wantVersion)
		}
	}

	o, err := Load(ctx, c, "a1b2c3d4")
	if err != nil {
		t.Fatal(err)
	}
	want := Order{ID: "a1b2c3d4", CustomerID: "user123", Created: true, Shipped: true, ShippingAddress: "123 Main St, Anytown, USA",
		Items: []Item{
			{ItemID: "widget-x", Quantity: 3, Price: "14.50", Currency: "USD"},
			{ItemID: "gadget", Quantity: 1, Price: "5.00", Currency: "USD"},
		}, Version: 5}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("the order as the writer has it (-want +got):\n%s", diff)
	}
	if _, err := c.ReadStream(ctx, StreamID("nope"), 1, 10); !client.IsStreamNotFound(err) {
		t.Errorf("reading the order rejected before creation = %v, want stream_not_found: nothing was appended", err)
	}
}

// raceOnce is a Store that runs a competing command once, just before the
// first append, as a second service would.
type raceOnce struct {
	aggregate.Store
	once    sync.Once
	compete func()
}

func (r *raceOnce) Append(ctx context.Context, streamID string, expected client.ExpectedVersion, events []client.Event) (client.AppendResult, error) {
	r.once.Do(r.compete)
	return r.Store.Append(ctx, streamID, expected, events)
}

func TestAShipThatLandsFirstRejectsAnAddItemOnItsRetry(t *testing.T) {
	c := newWriterClient(t)
	if _, err := Create(ctx, c, "o-1", "user123"); err != nil {
		t.Fatal(err)
	}
	if _, err := AddItem(ctx, c, "o-1", "widget-x", 2, "15.99"); err != nil {
		t.Fatal(err)
	}
	racing := &raceOnce{Store: c, compete: func() {
		if _, err := Ship(ctx, c, "o-1", "123 Main St"); err != nil {
			t.Errorf("the competing Ship = %v", err)
		}
	}}
	res, err := AddItem(ctx, racing, "o-1", "gadget", 1, "5.00")
	if !errors.Is(err, ErrShipped) || err.Error() != "order o-1 is shipped: no items can be added" {
		t.Fatalf("AddItem racing a Ship = %v, want the shipped rejection", err)
	}
	if res.Attempts != 2 || res.Version != 3 {
		t.Errorf("AddItem: %d attempts, last on version %d; want a 409, then a rejection on version 3", res.Attempts, res.Version)
	}
	page, err := c.ReadStream(ctx, StreamID("o-1"), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range page.Events {
		types = append(types, e.Type)
	}
	if diff := cmp.Diff([]string{TypeOrderCreated, TypeOrderItemAdded, TypeOrderShipped}, types); diff != "" {
		t.Errorf("the stream (-want +got):\n%s", diff)
	}
}

func TestConcurrentAddItemsAllLandInOrder(t *testing.T) {
	c := newWriterClient(t)
	if _, err := Create(ctx, c, "o-1", "user123"); err != nil {
		t.Fatal(err)
	}
	// With the default 5 attempts, 5 commands racing on one order all
	// land: each attempt that fails lost to another command that stored.
	const n = aggregate.DefaultMaxAttempts
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = AddItem(ctx, c, "o-1", fmt.Sprintf("item-%d", i), i+1, "1.00")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("AddItem %d = %v", i, err)
		}
	}
	o, err := Load(ctx, c, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	quantity := map[string]int64{}
	for _, it := range o.Items {
		quantity[it.ItemID] += it.Quantity
	}
	for i := range n {
		if got := quantity[fmt.Sprintf("item-%d", i)]; got != int64(i+1) {
			t.Errorf("item-%d has quantity %d, want %d", i, got, i+1)
		}
	}
	if o.Version != n+1 || len(o.Items) != n {
		t.Errorf("order at version %d with %d items, want %d with %d", o.Version, len(o.Items), n+1, n)
	}
}
