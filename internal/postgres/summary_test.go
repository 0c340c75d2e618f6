package postgres

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

func TestSummarize(t *testing.T) {
	s := newStore(t, Options{})
	sum, err := s.Summarize(ctx)
	if err != nil || sum.Events != 0 || sum.Streams != 0 || len(sum.Categories) != 0 || sum.LastRecordedAt != nil {
		t.Fatalf("Summarize of an empty store = %+v, %v", sum, err)
	}
	storetest.MustAppend(t, s, "Order-1", eventstore.NoStream, storetest.Events(2, "e")...)
	storetest.MustAppend(t, s, "Order-2", eventstore.NoStream, storetest.Events(1, "e")...)
	last := storetest.MustAppend(t, s, "Customer-1", eventstore.NoStream, storetest.Events(1, "e")...)

	sum, err = s.Summarize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := eventstore.Summary{Events: 4, Streams: 3, Categories: []string{"Customer", "Order"}, LastPosition: last.Events[0].GlobalPosition}
	if diff := cmp.Diff(want, sum, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "LastRecordedAt" || p.String() == "Head" }, cmp.Ignore())); diff != "" || sum.LastRecordedAt == nil || sum.Head == "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}

	t.Run("a large store is counted from the statistics", func(t *testing.T) {
		defer func(old float64) { exactBelow = old }(exactBelow)
		exactBelow = 0
		if _, err := s.pool.Exec(ctx, "ANALYZE events"); err != nil {
			t.Fatal(err)
		}
		sum, err := s.Summarize(ctx)
		if err != nil || !sum.Estimated || sum.Events != 4 || sum.Streams != 3 {
			t.Errorf("Summarize from the statistics = %+v, %v; want 4 events and 3 streams, estimated", sum, err)
		}
	})
}
