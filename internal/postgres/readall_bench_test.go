package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

// BenchmarkReadAllPages pages through 50,000 events in pages of 1000, as
// the relay does.
func BenchmarkReadAllPages(b *testing.B) {
	s := newStore(b, Options{})
	for i := 0; i < 500; i++ {
		storetest.MustAppend(b, s, fmt.Sprintf("Order-%d", i), eventstore.NoStream, storetest.Events(100, "e")...)
	}
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		var cursor eventstore.Cursor
		n, pages := 0, 0
		for {
			page, err := s.ReadAll(ctx, cursor, 1000)
			if err != nil {
				b.Fatal(err)
			}
			n += len(page.Events)
			pages++
			cursor = page.Next
			if len(page.Events) == 0 {
				break
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
		b.ReportMetric(float64(time.Since(start).Microseconds())/float64(pages), "µs/page")
	}
}
