package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

// Two writer processes on one database: each remembers versions it has
// seen, so one's knowledge is stale after the other appends. Stale or cold,
// every append must still be decided by the stream's real version.
func TestStoresWithStaleVersionKnowledgeStayExact(t *testing.T) {
	a := newStore(t, Options{})
	b, err := Open(ctx, a.pool.Config().ConnString(), Options{Schema: a.schema})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stream := eventstore.MustParseStreamID("Order-shared")
	appendAt := func(s *Store, expected eventstore.ExpectedVersion) (eventstore.AppendResult, error) {
		return s.Append(ctx, stream, expected, []eventstore.EventData{storetest.Event("E", fmt.Sprint(expected))})
	}

	if _, err := appendAt(a, eventstore.NoStream); err != nil { // a knows 1
		t.Fatal(err)
	}
	if res, err := appendAt(b, 1); err != nil || res.FirstVersion != 2 { // b, cold, looks 1 up
		t.Fatalf("b at 1 = %+v, %v; want version 2", res, err)
	}
	// a still believes the stream is at 1: its append at 1 must fail with
	// the real version, and so must one at 3, which a has never seen.
	for _, expected := range []eventstore.ExpectedVersion{1, 3} {
		_, err := appendAt(a, expected)
		var wrong *eventstore.WrongExpectedVersionError
		if !errors.As(err, &wrong) || wrong.Actual != 2 {
			t.Errorf("a at %d with stale knowledge = %v, want wrong expected version, actual 2", expected, err)
		}
	}
	if res, err := appendAt(a, 2); err != nil || res.FirstVersion != 3 {
		t.Fatalf("a at 2 = %+v, %v; want version 3", res, err)
	}
	page, err := b.ReadStream(ctx, stream, eventstore.StreamQuery{})
	if err != nil || len(page.Events) != 3 || page.Version != 3 {
		t.Fatalf("stream = %d events at version %d, %v; want 3 at 3", len(page.Events), page.Version, err)
	}
}

func TestKnownVersionsAreBoundedAndOnlyGrow(t *testing.T) {
	k := newKnownVersions(64 * 4)
	for i := 0; i < 10000; i++ {
		k.saw(fmt.Sprintf("Order-%d", i), int64(i+1))
	}
	total := 0
	for i := range k.shards {
		if n := len(k.shards[i].m); n > k.limit {
			t.Errorf("shard %d holds %d entries, limit %d", i, n, k.limit)
		}
		total += len(k.shards[i].m)
	}
	if total > 64*4 {
		t.Errorf("cache holds %d entries, want at most 256", total)
	}
	k.saw("Order-x", 7)
	k.saw("Order-x", 3)
	if got := k.get("Order-x"); got != 7 {
		t.Errorf("after seeing 7 then 3, known version = %d, want 7", got)
	}
	if got := k.get("Order-never"); got != 0 {
		t.Errorf("unseen stream's known version = %d, want 0", got)
	}
}
