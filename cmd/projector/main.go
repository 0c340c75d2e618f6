// Command projector runs Strata's projections — Kafka consumer groups that
// build read models in PostgreSQL — and serves the read API. It runs the
// declarative projections of STRATA_PROJECTIONS_DIR and the example
// domain's order_summary; see package projector for a projector of your
// own with Go projections.
package main

import (
	"os"
	"runtime/debug"

	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/projector"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A small live heap (the batch in hand and the fetch buffers)
		// and steady garbage per batch: a higher target than the
		// default spares collections...
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// ... and a soft limit keeps the heap from doubling past it
		// when a catch-up fills every fetch buffer.
		debug.SetMemoryLimit(100 << 20)
	}
	projector.Main(orders.SummaryProjection())
}
