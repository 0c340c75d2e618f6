package postgres

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

// streamVersions reads a stream's versions as its reads show them.
func streamVersions(t *testing.T, s *Store, stream string) string {
	t.Helper()
	page, err := s.ReadStream(ctx, eventstore.MustParseStreamID(stream), eventstore.StreamQuery{Limit: 1000})
	if err != nil {
		return eventstore.ErrorCode(err)
	}
	var out []string
	for _, e := range page.Events {
		out = append(out, fmt.Sprint(e.Version))
	}
	return fmt.Sprintf("%s of %d", strings.Join(out, " "), page.Version)
}

// reportPublished has the relay report a checkpoint at the store's end.
func reportPublished(t *testing.T, s *Store) {
	t.Helper()
	_, next := storetest.ReadAllEvents(t, s, "", "", 1000)
	if err := s.SaveRelayReport(ctx, eventstore.RelayReport{Instance: "test", ActiveSince: time.Now(),
		Checkpoint: eventstore.RelayCheckpoint{Cursor: next}}); err != nil {
		t.Fatal(err)
	}
}

// scavengeAll scavenges in batches of size until a batch finds less.
func scavengeAll(t *testing.T, s *Store, size int) int {
	t.Helper()
	total := 0
	for {
		n, err := s.ScavengeBatch(ctx, size)
		if err != nil {
			t.Fatalf("ScavengeBatch: %v", err)
		}
		if total += n; n < size {
			return total
		}
	}
}

// The scavenger removes what deletions and retention settings hide, and
// only that, once the relay has published it; stream reads do not change,
// a stream's last event stays, and $all stays exact from any cursor.
func TestTheScavengerRemovesWhatReadsNoLongerShow(t *testing.T) {
	s := newStore(t, Options{})
	put := func(stream string, n int) {
		t.Helper()
		if _, err := s.Append(ctx, eventstore.MustParseStreamID(stream), eventstore.Any, eventstore.AssignIDs(storetest.Events(n, stream))); err != nil {
			t.Fatal(err)
		}
	}
	for _, stream := range []string{"Order-keep", "Order-count", "Order-trunc", "Order-gone", "Order-cat", "Order-old", "Cart-x"} {
		put(stream, 5)
	}
	// A cursor taken now, before anything is removed, anchored on the
	// last event.
	_, before := storetest.ReadAllEvents(t, s, "", "", 2)
	two, three, hour := int64(2), int64(3), time.Hour
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetStreamRetention(ctx, eventstore.MustParseStreamID("Order-count"), eventstore.Retention{MaxCount: &two}))
	must(s.SetStreamRetention(ctx, eventstore.MustParseStreamID("Order-trunc"), eventstore.Retention{TruncateBefore: &three}))
	must(s.SetStreamRetention(ctx, eventstore.MustParseStreamID("Order-keep"), eventstore.Retention{MaxAge: &hour}))
	must(s.SetCategoryRetention(ctx, "Order", eventstore.Retention{MaxCount: &three}))
	if _, err := s.DeleteStream(ctx, eventstore.Deletion{Stream: eventstore.MustParseStreamID("Order-gone"), Expected: 5,
		Event: storetest.Event(eventstore.StreamDeletedType, "deleted")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE events SET recorded_at = now() - interval '2 hours' WHERE stream_id = 'Order-old' OR (stream_id = 'Order-keep' AND version < 5)`); err != nil {
		t.Fatal(err)
	}
	put("Order-late", 2)

	streams := []string{"Order-keep", "Order-count", "Order-trunc", "Order-gone", "Order-cat", "Order-old", "Cart-x", "Order-late"}
	reads := map[string]string{}
	for _, stream := range streams {
		reads[stream] = streamVersions(t, s, stream)
	}
	want := map[string]string{
		"Order-keep":  "5 of 5",         // its own maxAge: the older four are hidden
		"Order-count": "4 5 of 5",       // its own maxCount 2
		"Order-trunc": "3 4 5 of 5",     // its own truncateBefore 3 (and the category's maxCount 3)
		"Order-gone":  "stream_deleted", // deleted at version 6
		"Order-cat":   "3 4 5 of 5",     // the category's maxCount 3
		"Order-old":   "3 4 5 of 5",     // old, but no maxAge applies to it
		"Cart-x":      "1 2 3 4 5 of 5", // another category
		"Order-late":  "1 2 of 2",
	}
	for stream, w := range want {
		if reads[stream] != w {
			t.Errorf("before scavenging %s reads %q, want %q", stream, reads[stream], w)
		}
	}

	if _, err := s.ScavengeBatch(ctx, 100); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("scavenging before the relay reported = %v, want ErrNotPublished", err)
	}
	reportPublished(t, s)
	put("Order-count", 3) // after the report: versions 6 to 8 are not published, and 6 is hidden
	reads["Order-count"] = "7 8 of 8"
	if removed := scavengeAll(t, s, 3); removed != 4+5+2+5+2+2 {
		t.Errorf("the scavenger removed %d events, want %d", removed, 4+5+2+5+2+2)
	}
	for _, stream := range streams {
		if got := streamVersions(t, s, stream); got != reads[stream] {
			t.Errorf("after scavenging %s reads %q, want %q as before", stream, got, reads[stream])
		}
	}
	var left []string
	rows, _ := s.pool.Query(ctx, "SELECT stream_id || '@' || version FROM events ORDER BY stream_id, version")
	for rows.Next() {
		var v string
		rows.Scan(&v)
		left = append(left, v)
	}
	for _, kept := range []string{"Order-gone@6", "Order-keep@5", "Order-count@6", "Order-late@1", "Cart-x@1"} {
		if !slices.Contains(left, kept) {
			t.Errorf("the scavenger removed %s; the table holds %v", kept, left)
		}
	}

	// The cursor taken before goes on, exactly over what is left.
	events, _ := storetest.ReadAllEvents(t, s, "", before, 4)
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s@%d", e.StreamID, e.Version))
	}
	var all []string
	everything, _ := storetest.ReadAllEvents(t, s, "", "", 4)
	for _, e := range everything {
		all = append(all, fmt.Sprintf("%s@%d", e.StreamID, e.Version))
	}
	if len(got) == 0 || !slices.Equal(got, all[len(all)-len(got):]) {
		t.Errorf("$all from the cursor taken before scavenging = %v; want the tail of %v", got, all)
	}
	if n := scavengeAll(t, s, 3); n != 0 {
		t.Errorf("a second round removed %d events, want none", n)
	}
}

// Appends go on while the scavenger works, and lose nothing; a reader
// paging $all by cursor all the while sees no event twice and misses none
// that the scavenger leaves.
func TestAppendsDuringScavenging(t *testing.T) {
	s := newStore(t, Options{})
	one := int64(1)
	if err := s.SetCategoryRetention(ctx, "Order", eventstore.Retention{MaxCount: &one}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	appended := make([]int, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := eventstore.MustParseStreamID(fmt.Sprintf("Order-w%d", w))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Append(ctx, stream, eventstore.Any, eventstore.AssignIDs(storetest.Events(1, "w"))); err != nil {
					t.Error(err)
					return
				}
				appended[w]++
			}
		}()
	}
	seen := map[eventstore.UUID]int{}
	var cursor eventstore.Cursor
	page := func() int {
		p, err := s.ReadAll(ctx, cursor, 50)
		if err != nil {
			t.Errorf("paging $all while the scavenger works: %v", err)
			return 0
		}
		for _, e := range p.Events {
			seen[e.ID]++
		}
		cursor = p.Next
		return len(p.Events)
	}
	paged := make(chan struct{})
	go func() {
		defer close(paged)
		for {
			select {
			case <-stop:
				return
			default:
				page()
			}
		}
	}()
	removed := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		reportPublished(t, s)
		removed += scavengeAll(t, s, 500)
	}
	close(stop)
	wg.Wait()
	<-paged
	for page() > 0 {
	}
	left, _ := storetest.ReadAllEvents(t, s, "", "", 1000)
	for _, e := range left {
		if seen[e.ID] == 0 {
			t.Errorf("the $all pager missed %s@%d (position %d), which the scavenger left", e.StreamID, e.Version, e.GlobalPosition)
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("the $all pager saw event %s %d times", id, n)
		}
	}
	if len(seen) <= len(left) {
		t.Errorf("the pager saw %d events and %d are left: it read nothing the scavenger then removed, so the test proves little", len(seen), len(left))
	}
	for w, n := range appended {
		stream := fmt.Sprintf("Order-w%d", w)
		if got := streamVersions(t, s, stream); got != fmt.Sprintf("%d of %d", n, n) {
			t.Errorf("%s after %d appends reads %q, want only its last", stream, n, got)
		}
	}
	if removed == 0 {
		t.Error("the scavenger removed nothing while appends went on")
	}
}
