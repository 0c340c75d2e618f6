package postgres

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

// TestGapHunter races writers that sleep inside their transactions and
// sometimes abort, and one that holds a transaction open for seconds,
// against readers paging $all and a category by cursor. Every committed
// event must be read exactly once, no aborted one, each stream in version
// order, and events committed while the long transaction is open must be
// read before it ends: the writers pause for the long transaction's last
// two seconds, which gives a reader that is merely slow time to catch up,
// and a reader that waits for the long transaction none.
func TestGapHunter(t *testing.T) {
	for _, slice := range []int{5, DefaultSliceSize} {
		t.Run(fmt.Sprintf("slices of %d", slice), func(t *testing.T) { huntGaps(t, slice) })
	}
}

type committedEvent struct {
	stream    string
	version   int64
	committed time.Time
}

type readEvent struct {
	eventstore.RecordedEvent
	at time.Time
}

func huntGaps(t *testing.T, sliceSize int) {
	s := newStore(t, Options{SliceSize: sliceSize})
	const writers, streams = 12, 16
	const runFor, writeFor, pauseFor = 6 * time.Second, 1 * time.Second, 2 * time.Second

	var mu sync.Mutex
	committed := map[eventstore.UUID]committedEvent{}
	aborted := map[eventstore.UUID]bool{}
	record := func(res eventstore.AppendResult, commitErr error, rolledBack bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range res.Events {
			switch {
			case rolledBack:
				aborted[e.ID] = true
			case commitErr == nil:
				committed[e.ID] = committedEvent{res.Stream.String(), e.Version, time.Now()}
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, writers+4)

	// The long transaction: open from the start for writeFor+pauseFor;
	// the writers pause for the last pauseFor of it.
	var longStart, longEnd time.Time
	var paused atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		tx, err := s.pool.Begin(context.Background())
		if err != nil {
			errs <- err
			return
		}
		res, err := appendIn(context.Background(), tx, eventstore.MustParseStreamID("Order-long"), eventstore.Any, false,
			eventstore.AssignIDs(storetest.Events(3, "long")))
		if err != nil {
			tx.Rollback(context.Background())
			errs <- err
			return
		}
		mu.Lock()
		longStart = time.Now()
		mu.Unlock()
		time.Sleep(writeFor)
		paused.Store(true)
		time.Sleep(pauseFor)
		mu.Lock()
		longEnd = time.Now() // before the commit: events read before this were not held up
		mu.Unlock()
		record(res, tx.Commit(context.Background()), false)
		paused.Store(false)
	}()

	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				if paused.Load() {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				stream := fmt.Sprintf("%s-%d", []string{"Order", "Customer"}[rng.IntN(2)], rng.IntN(streams))
				tx, err := s.pool.Begin(context.Background())
				if err != nil {
					errs <- err
					return
				}
				events := eventstore.AssignIDs(storetest.Events(1+rng.IntN(3), fmt.Sprintf("w%d", w)))
				res, err := appendIn(context.Background(), tx, eventstore.MustParseStreamID(stream), eventstore.Any, false, events)
				if isUniqueViolation(err, "events_stream_version") {
					// Another writer took the version while this one
					// waited: its transaction is aborted, like any conflict.
					tx.Rollback(context.Background())
					continue
				}
				if err != nil {
					tx.Rollback(context.Background())
					errs <- err
					return
				}
				time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
				if rng.IntN(5) == 0 {
					tx.Rollback(context.Background())
					record(res, nil, true)
					continue
				}
				record(res, tx.Commit(context.Background()), false)
			}
		}()
	}

	// Readers page until the writers are done, then drain.
	reads := map[string][]readEvent{}
	var readMu sync.Mutex
	var readers sync.WaitGroup
	writersDone := make(chan struct{})
	for _, category := range []string{"", "Order"} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			err := readUntil(s, category, writersDone, func(events []eventstore.RecordedEvent) {
				now := time.Now()
				readMu.Lock()
				for _, e := range events {
					reads[category] = append(reads[category], readEvent{e, now})
				}
				readMu.Unlock()
			})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(writersDone)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	if len(committed) < 200 || len(aborted) == 0 {
		t.Fatalf("only %d committed and %d aborted events: the hunt was too small to mean anything", len(committed), len(aborted))
	}
	for _, category := range []string{"", "Order"} {
		checkRead(t, readName(category), category, reads[category], committed, aborted, longStart, longEnd)
	}
}

// readUntil pages a read by cursor, 7 events a page, giving each page to
// got, until done is closed and a read after that finds nothing new.
func readUntil(s *Store, category string, done <-chan struct{}, got func([]eventstore.RecordedEvent)) error {
	var cursor eventstore.Cursor
	drained := false
	for {
		page, err := readPage(s, category, cursor, 7)
		if err != nil {
			return fmt.Errorf("read %s: %w", readName(category), err)
		}
		got(page.Events)
		cursor = page.Next
		if len(page.Events) > 0 {
			continue
		}
		select {
		case <-done:
			if drained {
				return nil
			}
			drained = true // one more pass after the last commit
		default:
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func readPage(s *Store, category string, after eventstore.Cursor, limit int) (eventstore.Page, error) {
	if category == "" {
		return s.ReadAll(context.Background(), after, limit)
	}
	return s.ReadCategory(context.Background(), category, after, limit)
}

func checkRead(t *testing.T, name, category string, got []readEvent, committed map[eventstore.UUID]committedEvent, aborted map[eventstore.UUID]bool, longStart, longEnd time.Time) {
	t.Helper()
	seen := map[eventstore.UUID]bool{}
	readAt := map[eventstore.UUID]time.Time{}
	lastVersion := map[string]int64{}
	for _, e := range got {
		switch {
		case aborted[e.ID]:
			t.Errorf("%s: read event %s of an aborted transaction", name, e.ID)
		case seen[e.ID]:
			t.Errorf("%s: read event %s twice", name, e.ID)
		}
		seen[e.ID] = true
		readAt[e.ID] = e.at
		stream := e.StreamID.String()
		if e.Version != lastVersion[stream]+1 {
			t.Errorf("%s: read %s@%d after version %d", name, stream, e.Version, lastVersion[stream])
		}
		lastVersion[stream] = e.Version
	}
	wanted, heldUp, during := 0, 0, 0
	for id, c := range committed {
		if category != "" && eventstore.MustParseStreamID(c.stream).Category() != category {
			continue
		}
		wanted++
		if !seen[id] {
			t.Errorf("%s: committed event %s (%s@%d) was never read", name, id, c.stream, c.version)
		}
		// Committed while the long transaction was open: read before it ends.
		if c.stream != "Order-long" && c.committed.After(longStart) && c.committed.Before(longEnd) {
			during++
			if readAt[id].After(longEnd) {
				heldUp++
			}
		}
	}
	if during == 0 {
		t.Errorf("%s: no event committed while the long transaction was open", name)
	}
	if heldUp > 0 {
		t.Errorf("%s: %d of %d events committed during the long transaction were read only after it ended", name, heldUp, during)
	}
	t.Logf("%s: read %d of %d committed events; %d committed during the long transaction, none held up", name, len(got), wanted, during)
}

// runCommand runs a program with stdin and returns its standard output.
func runCommand(ctx context.Context, name string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, stderr.String())
	}
	return out, nil
}
