package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/storetest"
)

// TestACrashDuringAppendsLosesNothingAndReportsTruly kills PostgreSQL in the
// middle of concurrent appends, as a crash would, and starts it again. Every
// append must either have been reported stored — and be stored, at the
// versions reported — or have been reported failed and be absent; appends
// whose answer was lost with the connection are settled before answering.
func TestACrashDuringAppendsLosesNothingAndReportsTruly(t *testing.T) {
	cluster := harness.SharedCluster(t)
	s := newStore(t, Options{SettleTimeout: 20 * time.Second})
	t.Cleanup(func() {
		if err := cluster.Start(context.Background()); err != nil && err.Error() != "postgres is already running" {
			t.Errorf("restart the cluster after the test: %v", err)
		}
	})

	type outcome struct {
		stream string
		ids    []eventstore.UUID
		res    eventstore.AppendResult
		err    error
	}
	var mu sync.Mutex
	var outcomes []outcome
	var failed, settledUnknown atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := eventstore.MustParseStreamID(fmt.Sprintf("Order-crash%d", w))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				events := eventstore.AssignIDs(storetest.Events(1+i%3, fmt.Sprintf("w%d-%d", w, i)))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				res, err := s.Append(ctx, stream, eventstore.Any, events)
				cancel()
				o := outcome{stream: stream.String(), res: res, err: err}
				for _, e := range events {
					o.ids = append(o.ids, e.ID)
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if err != nil {
					failed.Add(1)
					var unknown *OutcomeUnknownError
					if errors.As(err, &unknown) {
						settledUnknown.Add(1)
					}
					if !errors.Is(err, eventstore.ErrUnavailable) {
						t.Errorf("append failed with %v, want an unavailable error", err)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	cluster.Kill()
	time.Sleep(time.Second)
	if err := cluster.Start(context.Background()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	if failed.Load() == 0 {
		t.Fatalf("no append failed: the crash happened outside the appends")
	}
	if settledUnknown.Load() > 0 {
		t.Errorf("%d appends ended with an unknown outcome although the database came back within seconds", settledUnknown.Load())
	}
	stored := map[eventstore.UUID]eventstore.RecordedEvent{}
	all, _ := storetest.ReadAllEvents(t, s, "", "", eventstore.MaxReadLimit)
	for _, e := range all {
		stored[e.ID] = e
	}
	reported := 0
	for _, o := range outcomes {
		for i, id := range o.ids {
			e, ok := stored[id]
			switch {
			case o.err == nil && !ok:
				t.Errorf("append to %s reported stored, but event %s is absent", o.stream, id)
			case o.err == nil && e.Version != o.res.Events[i].Version:
				t.Errorf("event %s reported at version %d, stored at %d", id, o.res.Events[i].Version, e.Version)
			case o.err != nil && ok:
				t.Errorf("append to %s reported failed (%v), but event %s is stored", o.stream, o.err, id)
			}
			if o.err == nil {
				reported++
			}
		}
	}
	if reported != len(all) {
		t.Errorf("%d events stored, %d reported stored", len(all), reported)
	}
	t.Logf("%d appends, %d failed during the outage, %d events stored", len(outcomes), failed.Load(), len(all))
}
