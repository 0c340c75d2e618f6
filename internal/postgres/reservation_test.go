package postgres

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

func reserving(stream string, expected eventstore.ExpectedVersion, reserve, release []eventstore.Reservation) []eventstore.StreamAppend {
	return []eventstore.StreamAppend{{Stream: sid(stream), Expected: expected, Events: storetest.Events(1, "r"), Reserve: reserve, Release: release}}
}

func TestReservations(t *testing.T) {
	s := newStore(t, Options{})
	email := eventstore.Reservation{Scope: "customer-email", Value: "ada@example.com"}
	holder := func(r eventstore.Reservation) string {
		t.Helper()
		got, err := s.Reservation(ctx, r)
		if eventstore.ErrorCode(err) == eventstore.CodeReservationNotFound {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return got.Stream.String()
	}
	taken := func(err error, holder string, release bool) bool {
		var e *eventstore.ReservationTakenError
		return errors.As(err, &e) && e.Holder.String() == holder && e.Release == release && eventstore.ErrorCode(err) == eventstore.CodeReservationTaken
	}

	t.Run("a value claimed is its stream's, and refused to another, which stores nothing", func(t *testing.T) {
		if _, err := s.AppendMulti(ctx, reserving("Customer-1", eventstore.NoStream, []eventstore.Reservation{email}, nil), nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.Reservation(ctx, email)
		if err != nil || got.Stream.String() != "Customer-1" || got.Version != 1 || got.At.IsZero() {
			t.Fatalf("Reservation = %+v, %v; want Customer-1 at version 1", got, err)
		}
		_, err = s.AppendMulti(ctx, reserving("Customer-2", eventstore.NoStream, []eventstore.Reservation{email}, nil), nil)
		if !taken(err, "Customer-1", false) || !strings.Contains(err.Error(), "Customer-1") {
			t.Fatalf("a second claim = %v, want reservation_taken naming Customer-1", err)
		}
		if _, err := s.ReadStream(ctx, sid("Customer-2"), eventstore.StreamQuery{}); eventstore.ErrorCode(err) != eventstore.CodeStreamNotFound {
			t.Errorf("the refused append stored events: %v", err)
		}
	})

	t.Run("a claim rolls back with a failed append", func(t *testing.T) {
		other := eventstore.Reservation{Scope: "customer-email", Value: "bob@example.com"}
		_, err := s.AppendMulti(ctx, reserving("Customer-1", 5, []eventstore.Reservation{other}, nil), nil)
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("append at a wrong version = %v", err)
		}
		if h := holder(other); h != "" {
			t.Errorf("the failed append's claim is held, by %s", h)
		}
	})

	t.Run("the holder claims again, and releases; then another may claim", func(t *testing.T) {
		if _, err := s.AppendMulti(ctx, reserving("Customer-1", eventstore.Any, []eventstore.Reservation{email}, nil), nil); err != nil {
			t.Fatalf("the holder's claim again = %v", err)
		}
		if got, _ := s.Reservation(ctx, email); got.Version != 2 {
			t.Errorf("claimed again, the reservation is at version %d, want 2", got.Version)
		}
		_, err := s.AppendMulti(ctx, reserving("Customer-2", eventstore.Any, nil, []eventstore.Reservation{email}), nil)
		if !taken(err, "Customer-1", true) {
			t.Fatalf("a release by another stream = %v, want reservation_taken naming Customer-1", err)
		}
		if _, err := s.AppendMulti(ctx, reserving("Customer-1", eventstore.Any, nil, []eventstore.Reservation{email}), nil); err != nil {
			t.Fatalf("the holder's release = %v", err)
		}
		if h := holder(email); h != "" {
			t.Fatalf("released, the value is held by %s", h)
		}
		if _, err := s.AppendMulti(ctx, reserving("Customer-1", eventstore.Any, nil, []eventstore.Reservation{email}), nil); err != nil {
			t.Errorf("releasing a value nobody holds = %v, want no error", err)
		}
		if _, err := s.AppendMulti(ctx, reserving("Customer-2", eventstore.Any, []eventstore.Reservation{email}, nil), nil); err != nil || holder(email) != "Customer-2" {
			t.Errorf("a claim of the released value = %v, holder %q", err, holder(email))
		}
	})

	t.Run("concurrent claims of one value have exactly one winner", func(t *testing.T) {
		value := eventstore.Reservation{Scope: "username", Value: "grace"}
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.AppendMulti(ctx, reserving(fmt.Sprintf("User-%d", i), eventstore.NoStream, []eventstore.Reservation{value}, nil), nil)
			}()
		}
		wg.Wait()
		winner := holder(value)
		won := 0
		for i, err := range errs {
			switch {
			case err == nil && fmt.Sprintf("User-%d", i) == winner:
				won++
			case taken(err, winner, false):
			default:
				t.Errorf("claim %d = %v (winner %s)", i, err, winner)
			}
		}
		if won != 1 {
			t.Errorf("%d claims won, want 1", won)
		}
	})

	t.Run("a multi-stream append claims for each stream, all or nothing", func(t *testing.T) {
		a, b := eventstore.Reservation{Scope: "seat", Value: "12A"}, eventstore.Reservation{Scope: "seat", Value: "12B"}
		storetest.MustAppend(t, s, "Holder-1", eventstore.NoStream, storetest.Events(1, "h")...)
		if _, err := s.AppendMulti(ctx, reserving("Holder-1", 1, []eventstore.Reservation{b}, nil), nil); err != nil {
			t.Fatal(err)
		}
		_, err := s.AppendMulti(ctx, []eventstore.StreamAppend{
			{Stream: sid("Booking-1"), Expected: eventstore.Any, Events: storetest.Events(1, "x"), Reserve: []eventstore.Reservation{a}},
			{Stream: sid("Booking-2"), Expected: eventstore.Any, Events: storetest.Events(1, "y"), Reserve: []eventstore.Reservation{b}},
		}, nil)
		if !taken(err, "Holder-1", false) || holder(a) != "" {
			t.Errorf("a multi-stream append with one value taken = %v, and 12A held by %q; want reservation_taken and nothing held", err, holder(a))
		}
		_, err = s.AppendMulti(ctx, []eventstore.StreamAppend{
			{Stream: sid("Booking-1"), Expected: eventstore.Any, Events: storetest.Events(1, "x"), Reserve: []eventstore.Reservation{a}},
			{Stream: sid("Booking-2"), Expected: eventstore.Any, Events: storetest.Events(1, "y"), Reserve: []eventstore.Reservation{a}},
		}, nil)
		if eventstore.ErrorCode(err) != eventstore.CodeInvalidRequest || !strings.Contains(err.Error(), "appends[1].reserve[0]") {
			t.Errorf("one value claimed twice = %v, want invalid_request naming appends[1].reserve[0]", err)
		}
	})

	t.Run("a stream deleted for good holds nothing; the table holds no value", func(t *testing.T) {
		value := eventstore.Reservation{Scope: "customer-email", Value: "erin@example.com"}
		if _, err := s.AppendMulti(ctx, reserving("Customer-9", eventstore.NoStream, []eventstore.Reservation{value}, nil), nil); err != nil {
			t.Fatal(err)
		}
		var text string
		if err := s.pool.QueryRow(ctx, "SELECT string_agg(r::text, ' ') FROM reservations r").Scan(&text); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, "example.com") || !strings.Contains(text, "Customer-9") {
			t.Errorf("the reservations table reads %q: values in the clear, or no holder", text)
		}
		if _, err := s.DeleteStream(ctx, eventstore.Deletion{Stream: sid("Customer-9"), Expected: eventstore.Any, Hard: true,
			Event: storetest.Event(eventstore.StreamDeletedType, "deleted")}); err != nil {
			t.Fatal(err)
		}
		if h := holder(value); h != "" {
			t.Errorf("after a hard deletion the value is held by %s", h)
		}
	})

	t.Run("bad reservations are refused, naming the part", func(t *testing.T) {
		for _, tc := range []struct {
			r    eventstore.Reservation
			want string
		}{
			{eventstore.Reservation{Value: "x"}, "reserve[0].scope is required"},
			{eventstore.Reservation{Scope: "a b", Value: "x"}, "may hold only"},
			{eventstore.Reservation{Scope: "s"}, "reserve[0].value is required"},
			{eventstore.Reservation{Scope: "s", Value: strings.Repeat("v", 1001)}, "at most 1000"},
			{eventstore.Reservation{Scope: "s", Value: "a\x00b"}, "without NUL"},
		} {
			_, err := s.AppendMulti(ctx, reserving("Bad-1", eventstore.Any, []eventstore.Reservation{tc.r}, nil), nil)
			if eventstore.ErrorCode(err) != eventstore.CodeInvalidRequest || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("reserve %+v = %v, want invalid_request with %q", tc.r, err, tc.want)
			}
		}
		many := make([]eventstore.Reservation, 101)
		for i := range many {
			many[i] = eventstore.Reservation{Scope: "s", Value: fmt.Sprint(i)}
		}
		if _, err := s.AppendMulti(ctx, reserving("Bad-1", eventstore.Any, many, nil), nil); eventstore.ErrorCode(err) != eventstore.CodeTooLarge {
			t.Errorf("101 values = %v, want too_large", err)
		}
	})
}
