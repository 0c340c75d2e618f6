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

func TestALeaseOutlivesItsTTLWhileItsHolderRunsAndExpiresWhenItFallsSilent(t *testing.T) {
	s := newStore(t, Options{})
	first, err := s.AcquireLease(ctx, "relay", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	// Another asks for it for longer than the TTL, in vain.
	short, cancel := context.WithTimeout(ctx, LeaseTTL+time.Second)
	defer cancel()
	if _, err := s.AcquireLease(short, "relay", 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcquireLease while the holder runs = %v, want it to wait until its deadline", err)
	}
	if held, err := first.Held(ctx); err != nil || !held {
		t.Fatalf("Held after %s = %v, %v; want the lock held", LeaseTTL+time.Second, held, err)
	}

	// The holder falls silent, as a stopped process does with its
	// session left open: within the TTL (and a second of slack for the
	// server's timer), another has the lease, and the first's Check fails.
	first.silence()
	silent := time.Now()
	within, cancel := context.WithTimeout(ctx, LeaseTTL+2*time.Second)
	defer cancel()
	second, err := s.AcquireLease(within, "relay", 50*time.Millisecond)
	if err != nil {
		t.Fatalf("AcquireLease %s after the holder fell silent = %v, want the lease", time.Since(silent).Round(time.Millisecond), err)
	}
	defer second.Release()
	if err := first.Check(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("the silent holder's Check = %v, want ErrLeaseLost", err)
	}
}
