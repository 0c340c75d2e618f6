package postgres

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

func TestRelayStatus(t *testing.T) {
	s := newStore(t, Options{})
	relayStatus := func(t *testing.T) eventstore.RelayStatus {
		t.Helper()
		st, err := s.RelayStatus(ctx)
		if err != nil {
			t.Fatalf("RelayStatus: %v", err)
		}
		return st
	}
	if st := relayStatus(t); st.Active || st.Last != nil {
		t.Fatalf("RelayStatus of a new store = %+v, want neither active nor reported", st)
	}

	t.Run("only this schema's relay lease makes it active", func(t *testing.T) {
		other := newStore(t, Options{}) // the same lease name in another schema
		l, err := other.AcquireLease(ctx, RelayLease, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		notRelay, err := s.AcquireLease(ctx, "not-the-relay", 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer notRelay.Release()
		if st := relayStatus(t); st.Active {
			t.Errorf("RelayStatus = %+v while only another schema's relay lease and another lease are held, want inactive", st)
		}
		if st, err := other.RelayStatus(ctx); err != nil || !st.Active {
			t.Errorf("the other schema's RelayStatus = %+v, %v; want active", st, err)
		}
	})

	lease, err := s.AcquireLease(ctx, RelayLease, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if st := relayStatus(t); !st.Active || st.Last != nil {
		t.Errorf("RelayStatus with the lease held and nothing reported = %+v, want active, not reported", st)
	}

	first := storetest.MustAppend(t, s, "Order-1", eventstore.NoStream, storetest.Events(2, "e")...)
	last := storetest.MustAppend(t, s, "Customer-1", eventstore.NoStream, storetest.Events(1, "e")...)
	now := time.Now().Truncate(time.Microsecond) // what timestamptz keeps
	report := eventstore.RelayReport{
		Instance: "host/1", ActiveSince: now.Add(-time.Minute), LagSeconds: 1.5,
		Checkpoint: eventstore.RelayCheckpoint{Position: first.Events[1].GlobalPosition, Published: 2, At: now,
			Partitions: map[string]int{"events.Order": 3}},
	}
	if err := s.SaveRelayReport(ctx, report); err != nil {
		t.Fatal(err)
	}
	st := relayStatus(t)
	want := eventstore.RelayStatus{Active: true, Last: &report, LagEvents: last.Events[0].GlobalPosition - first.Events[1].GlobalPosition}
	if diff := cmp.Diff(want, st, ignoreUpdatedAt); diff != "" || time.Since(st.UpdatedAt) > time.Minute {
		t.Errorf("RelayStatus after a report (-want +got):\n%s\nupdated at %s", diff, st.UpdatedAt)
	}

	t.Run("a later report replaces it, halted or never committed", func(t *testing.T) {
		later := eventstore.RelayReport{Instance: "host/2", ActiveSince: now,
			Checkpoint: eventstore.RelayCheckpoint{Position: last.Events[0].GlobalPosition, Published: 3},
			Halted:     &eventstore.RelayHalt{Reason: "event_too_large", Message: "too large", Remedy: "raise the limit", Since: now}}
		if err := s.SaveRelayReport(ctx, later); err != nil {
			t.Fatal(err)
		}
		later.Checkpoint.Partitions = map[string]int{} // saved as none
		want := eventstore.RelayStatus{Active: true, Last: &later}
		if diff := cmp.Diff(want, relayStatus(t), ignoreUpdatedAt); diff != "" {
			t.Errorf("RelayStatus after a second report (-want +got):\n%s", diff)
		}
	})

	t.Run("the report outlives the lease", func(t *testing.T) {
		lease.Release()
		if st := relayStatus(t); st.Active || st.Last == nil || st.Last.Instance != "host/2" {
			t.Errorf("RelayStatus after the lease was released = %+v, want inactive with the last report", st)
		}
	})
}

var ignoreUpdatedAt = cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "UpdatedAt" }, cmp.Ignore())
