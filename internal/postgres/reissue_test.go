package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/storetest"
)

// PostgreSQL issues transaction ids again that it had issued before after
// a point-in-time restore, after an asynchronous replica is promoted, and
// after pg_resetwal -x: the server then stands at an earlier point of its
// history than cursors (and relay checkpoints) issued before. These tests
// rewind a cluster of their own with pg_resetwal -x.

// ownCluster starts a cluster for one test, with a migrated store on it.
func ownCluster(t *testing.T) (*harness.PostgresCluster, *Store) {
	t.Helper()
	cluster, err := harness.StartPostgres(ctx, harness.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	s, err := Open(ctx, cluster.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx, MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cluster, s
}

// readToHead reads $all from after to the head and returns the events as
// stream@version, and the cursor at the head.
func readToHead(s *Store, after eventstore.Cursor) ([]string, eventstore.Cursor, error) {
	var got []string
	for {
		page, err := s.ReadAll(ctx, after, 10)
		if err != nil {
			return got, after, err
		}
		for _, e := range page.Events {
			got = append(got, fmt.Sprintf("%s@%d", e.StreamID, e.Version))
		}
		after = page.Next
		if len(page.Events) == 0 {
			return got, after, nil
		}
	}
}

// burn makes the server issue n transaction ids that write nothing.
func burn(t *testing.T, s *Store, n int) {
	t.Helper()
	for range n {
		if _, err := s.pool.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
			t.Fatal(err)
		}
	}
}

// appendAfterRestart appends one event; the server restarted under the
// store's pool, whose first attempts may meet the connections it closed.
func appendAfterRestart(t *testing.T, s *Store, stream string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		_, err := s.Append(ctx, eventstore.MustParseStreamID(stream), eventstore.NoStream, []eventstore.EventData{storetest.Event("E", stream)})
		if err == nil {
			return
		}
		if attempt == 5 {
			t.Fatalf("append to %s after the restart: %v", stream, err)
		}
	}
}

func lastTxID(t *testing.T, s *Store) uint64 {
	t.Helper()
	var x uint64
	if err := s.pool.QueryRow(ctx, "SELECT max(tx_id)::text::bigint FROM events").Scan(&x); err != nil {
		t.Fatal(err)
	}
	return x
}

// A cursor claims to have seen the transactions below its snapshot's
// xmax, and the server may have issued many ids since the last event, in
// transactions that wrote none. Ids issued again above the last stored
// event — what a replica promoted with every event, or a restore to a
// point after the last one, hands out — must be read as new.
func TestIDsIssuedAgainAboveTheLastEventAreRead(t *testing.T) {
	cluster, s := ownCluster(t)
	storetest.MustAppend(t, s, "Order-1", eventstore.NoStream, storetest.Event("E", "before"))
	stored := lastTxID(t, s)
	burn(t, s, 300) // the head's snapshot is now some 300 ids past the event
	_, checkpoint, err := readToHead(s, "")
	if err != nil {
		t.Fatal(err)
	}

	if err := cluster.ResetNextXID(ctx, stored+50); err != nil {
		t.Fatal(err)
	}
	appendAfterRestart(t, s, "Order-2") // written by an id issued again
	burn(t, s, 300)                     // the server passes the checkpoint's snapshot again
	if got, _, err := readToHead(s, checkpoint); err != nil || fmt.Sprint(got) != "[Order-2@1]" {
		t.Errorf("reading on from a cursor issued before the ids were issued again = %v, %v; want [Order-2@1]", got, err)
	}
	fresh, err := Open(ctx, cluster.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// A cursor from a history that the database no longer has — it had seen an
// event that a promoted asynchronous replica never received, or that a
// restore to an earlier point does not hold — claims ids that the server
// issues again: events written with them would be skipped by it for good.
// The store refuses such a cursor, and says why.
func TestACursorThatSawAnEventTheStoreNoLongerHasIsRefused(t *testing.T) {
	cluster, s := ownCluster(t)
	storetest.MustAppend(t, s, "Order-1", eventstore.NoStream, storetest.Event("E", "kept"))
	burn(t, s, 10)
	storetest.MustAppend(t, s, "Order-lost", eventstore.NoStream, storetest.Event("E", "lost"))
	lost := lastTxID(t, s)
	_, checkpoint, err := readToHead(s, "")
	if err != nil {
		t.Fatal(err)
	}

	// The event was never received, and the server's ids stand before it.
	if _, err := s.pool.Exec(ctx, "DELETE FROM events WHERE stream_id = 'Order-lost'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "VACUUM events"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.ResetNextXID(ctx, lost-5); err != nil {
		t.Fatal(err)
	}
	appendAfterRestart(t, s, "Order-new") // by an id the checkpoint counts as seen
	burn(t, s, 20)                        // the server passes the checkpoint's snapshot again

	got, _, err := readToHead(s, checkpoint)
	switch {
	case err == nil:
		t.Fatalf("reading on from a cursor that saw a lost event = %v and no error; want it refused (else Order-new is skipped)", got)
	case eventstore.ErrorCode(err) != eventstore.CodeInvalidRequest || !strings.Contains(err.Error(), "no longer holds"):
		t.Errorf("reading on from a cursor that saw a lost event: %v; want invalid_request saying the store no longer holds what it saw", err)
	}
	if got, _, err := readToHead(s, ""); err != nil || fmt.Sprint(got) != "[Order-1@1 Order-new@1]" {
		t.Errorf("reading from the beginning = %v, %v; want [Order-1@1 Order-new@1]", got, err)
	}
}

// An append trusts a version it saw committed (knownVersions). A server
// that is not the one it saw it on — a replica promoted without the last
// events — would take the next version after a version it lacks, leaving
// a gap: the store forgets what it knew when its server changes.
func TestAVersionTheServerLostIsNotTakenOnTrust(t *testing.T) {
	cluster, s := ownCluster(t)
	stream := eventstore.MustParseStreamID("Order-v")
	storetest.MustAppend(t, s, stream.String(), eventstore.NoStream, storetest.Events(3, "e")...)
	if _, err := s.pool.Exec(ctx, "DELETE FROM events WHERE stream_id = 'Order-v' AND version = 3"); err != nil { // never replicated
		t.Fatal(err)
	}
	if err := cluster.ResetNextXID(ctx, lastTxID(t, s)+100); err != nil { // a restart, as a failover is for the writer
		t.Fatal(err)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ { // the pool's first attempts may meet the connections the server closed
		if _, err = s.Append(ctx, stream, 3, storetest.Events(1, "after")); eventstore.ErrorCode(err) != eventstore.CodeUnavailable {
			break
		}
	}
	var wrong *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wrong) || wrong.Actual != 2 {
		t.Errorf("append at expected version 3 to a stream the server has at 2 = %v; want wrong_expected_version, actual 2", err)
	}
	page, err := s.ReadStream(ctx, stream, eventstore.StreamQuery{Limit: 10})
	if err != nil || len(page.Events) != 2 {
		t.Errorf("the stream holds %d events (%v), want versions 1 and 2", len(page.Events), err)
	}
}

// writer migrate --rebaseline on a store that is serving: the readers and
// relays already running loaded the old epoch at their start, and every
// event gets a transaction id above their cursors' snapshots, so they
// would read (and the relay publish) the whole store again. Each read
// checks the store's epoch instead. A store that does not need it is not
// re-baselined without Force.
func TestRebaselineUnderARunningStore(t *testing.T) {
	running := newStore(t, Options{})
	storetest.MustAppend(t, running, "Order-1", eventstore.NoStream, storetest.Events(3, "e")...)
	_, checkpoint, err := readToHead(running, "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, harness.PostgresURL(t), Options{Schema: running.schema})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Migrate(ctx, MigrateOptions{Rebaseline: true}); !errors.Is(err, ErrRebaselineNotNeeded) {
		t.Fatalf("Migrate(Rebaseline) of a store that does not need it = %v, want ErrRebaselineNotNeeded", err)
	}
	if _, err := other.Migrate(ctx, MigrateOptions{Rebaseline: true, Force: true}); err != nil {
		t.Fatalf("Migrate(Rebaseline, Force) = %v", err)
	}
	got, _, err := readToHead(running, checkpoint)
	if eventstore.ErrorCode(err) != eventstore.CodeInvalidRequest || !strings.Contains(err.Error(), "re-baselined") {
		t.Errorf("the running store read on from its old cursor: %v, %v; want invalid_request, re-baselined", got, err)
	}
	got, head, err := readToHead(running, "")
	if err != nil || fmt.Sprint(got) != "[Order-1@1 Order-1@2 Order-1@3]" {
		t.Errorf("the running store read from the beginning: %v, %v; want the 3 events", got, err)
	}
	storetest.MustAppend(t, other, "Order-1", 3, storetest.Event("E", "after"))
	if got, _, err := readToHead(running, head); err != nil || fmt.Sprint(got) != "[Order-1@4]" {
		t.Errorf("the running store read on from its new cursor: %v, %v; want [Order-1@4]", got, err)
	}
	if got, _, err := readToHead(other, head); err != nil || fmt.Sprint(got) != "[Order-1@4]" {
		t.Errorf("the other store read on from the running one's new cursor: %v, %v; want [Order-1@4]", got, err)
	}
}
