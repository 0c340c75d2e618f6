package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/httpapi"
)

func TestReservations(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, httpapi.Options{}, "")
	email := client.Reservation{Scope: "customer-email", Value: "ada@example.com"}
	res, err := c.AppendReserving(ctx, client.StreamAppend{StreamID: "Order-r1", ExpectedVersion: client.NoStream,
		Events: []client.Event{created("r1")}, Reserve: []client.Reservation{email}})
	if err != nil || res.LastVersion != 1 {
		t.Fatalf("AppendReserving = %+v, %v", res, err)
	}
	got, err := c.Reservation(ctx, email.Scope, email.Value)
	if err != nil || got.StreamID != "Order-r1" || got.Value != email.Value || got.Version != 1 {
		t.Fatalf("Reservation = %+v, %v", got, err)
	}
	_, err = c.AppendReserving(ctx, client.StreamAppend{StreamID: "Order-r2", ExpectedVersion: client.NoStream,
		Events: []client.Event{created("r2")}, Reserve: []client.Reservation{email}})
	var e *client.Error
	if !client.IsReservationTaken(err) || !errors.As(err, &e) || e.Holder != "Order-r1" || e.Scope != email.Scope || e.Value != email.Value {
		t.Errorf("a second claim = %v, want reservation_taken naming Order-r1", err)
	}
	if _, err := c.AppendReserving(ctx, client.StreamAppend{StreamID: "Order-r1", ExpectedVersion: 1,
		Events: []client.Event{itemAdded("r1")}, Release: []client.Reservation{email}}); err != nil {
		t.Fatalf("release = %v", err)
	}
	if _, err := c.Reservation(ctx, email.Scope, email.Value); client.ErrorCode(err) != client.CodeReservationNotFound {
		t.Errorf("Reservation of a released value = %v, want reservation_not_found", err)
	}
}
