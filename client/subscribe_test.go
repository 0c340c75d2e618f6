package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/httpapi"
)

func TestSubscribeFollowsACategoryLiveAndResumesFromAPosition(t *testing.T) {
	c := newClient(t, httpapi.Options{}, "")
	order := func(id string) client.Event {
		return client.Event{Type: "OrderCreated", Data: json.RawMessage(fmt.Sprintf(`{"orderId": %q, "customerId": "c", "timestamp": "2023-10-27T10:00:00Z"}`, id))}
	}
	for _, id := range []string{"a", "b"} {
		if _, err := c.Append(ctx, "Order-"+id, client.NoStream, []client.Event{order(id)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var got []string
	var positions []string
	for e, err := range c.Subscribe(ctx, client.Subscription{Category: "Order"}) {
		if err != nil {
			t.Fatal(err)
		}
		got, positions = append(got, e.StreamID), append(positions, e.Position)
		if len(got) == 2 { // caught up: the next comes live
			if _, err := c.Append(ctx, "Order-c", client.NoStream, []client.Event{order("c")}); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) == 3 {
			break
		}
	}
	if fmt.Sprint(got) != "[Order-a Order-b Order-c]" {
		t.Fatalf("Subscribe read %v", got)
	}
	for e, err := range c.Subscribe(ctx, client.Subscription{Category: "Order", After: positions[0]}) {
		if err != nil || e.StreamID != "Order-b" {
			t.Fatalf("resumed after the first event: %s, %v; want Order-b", e.StreamID, err)
		}
		break
	}
	for _, err := range c.Subscribe(ctx, client.Subscription{Category: "Order", After: "bogus"}) {
		var e *client.Error
		if !errors.As(err, &e) || e.Code != "invalid_request" {
			t.Errorf("a bad position: %v, want invalid_request", err)
		}
	}
}
