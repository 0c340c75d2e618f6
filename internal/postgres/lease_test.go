package postgres

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestALeaseIsExclusiveAndFreedWhenItsSessionEnds(t *testing.T) {
	s := newStore(t, Options{})
	first, err := s.AcquireLease(ctx, "relay", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if held, err := first.Held(ctx); err != nil || !held {
		t.Fatalf("Held = %v, %v; want the lock held", held, err)
	}
	if err := first.Check(ctx); err != nil {
		t.Fatalf("Check = %v", err)
	}
	// A second cannot have it meanwhile.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.AcquireLease(short, "relay", 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second AcquireLease while held = %v, want it to wait until its deadline", err)
	}
	// Another name is another lease.
	other, err := s.AcquireLease(ctx, "other", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	other.Release()

	// The first's session is cut, as a network failure would: its Check
	// fails, and a second gets the lease.
	if _, err := s.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", int64(first.PID())); err != nil {
		t.Fatal(err)
	}
	if err := first.Check(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Check after the session was cut = %v, want ErrLeaseLost", err)
	}
	second, err := s.AcquireLease(ctx, "relay", 20*time.Millisecond)
	if err != nil {
		t.Fatalf("AcquireLease after the holder's session ended = %v", err)
	}
	defer second.Release()
	if held, err := second.Held(ctx); err != nil || !held {
		t.Errorf("the second's Held = %v, %v", held, err)
	}
}
