package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/aggregatetest"
	"github.com/strata-events/strata/client"
)

// A ticket is opened once and closed once. Its state is derived from its
// stream; each command is decided on that state.
type ticket struct{ opened, closed bool }

func evolveTicket(t ticket, e client.RecordedEvent) (ticket, error) {
	switch e.Type {
	case "TicketOpened":
		t.opened = true
	case "TicketClosed":
		t.closed = true
	}
	return t, nil
}

func closeTicket(t ticket) ([]client.Event, error) {
	switch {
	case !t.opened:
		return nil, errors.New("the ticket is not open")
	case t.closed:
		return nil, errors.New("the ticket is already closed")
	}
	return []client.Event{{Type: "TicketClosed", Data: json.RawMessage(`{"reason": "done"}`)}}, nil
}

func ExampleHandle() {
	ctx := context.Background()
	// A service passes a *client.Client; the in-memory store keeps the
	// example self-contained.
	var store aggregate.Store = &aggregatetest.Store{}
	store.Append(ctx, "Ticket-1", client.NoStream, []client.Event{{Type: "TicketOpened", Data: map[string]any{}}})

	res, err := aggregate.Handle(ctx, store, "Ticket-1", ticket{}, evolveTicket, closeTicket, aggregate.Options{})
	fmt.Println(res.Version, res.Appended.LastVersion, err)

	_, err = aggregate.Handle(ctx, store, "Ticket-1", ticket{}, evolveTicket, closeTicket, aggregate.Options{})
	fmt.Println(errors.Is(err, aggregate.ErrRejected), err)
	// Output:
	// 1 2 <nil>
	// true the ticket is already closed
}
