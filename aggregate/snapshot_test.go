package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/aggregatetest"
	"github.com/strata-events/strata/client"
)

// A ledger is the aggregate of the snapshot tests: an account whose state
// round-trips through encoding/json, as a snapshotted state must.
type ledger struct {
	Balance int
	Events  int
	Erased  bool
}

func evolveLedger(l ledger, e client.RecordedEvent) (ledger, error) {
	if e.Type == "$DataSubjectErased" {
		l.Erased = true
		return l, nil
	}
	a, err := evolve(account{balance: l.Balance, events: l.Events}, e)
	return ledger{Balance: a.balance, Events: a.events, Erased: l.Erased}, err
}

func take(n int) func(ledger) ([]client.Event, error) {
	return func(l ledger) ([]client.Event, error) {
		if l.Balance < n {
			return nil, fmt.Errorf("balance %d, cannot withdraw %d: %w", l.Balance, n, errInsufficient)
		}
		return []client.Event{{Type: "Withdrawn", Data: amount{n}}}, nil
	}
}

// look decides nothing: it only sees the state.
func look(ledger) ([]client.Event, error) { return nil, nil }

func give(n int) func(ledger) ([]client.Event, error) {
	return func(ledger) ([]client.Event, error) { return []client.Event{{Type: "Deposited", Data: amount{n}}}, nil }
}

// memSnapshots keeps snapshots in memory, latest version wins, and can be
// made to fail or to block its saves.
type memSnapshots struct {
	mu       sync.Mutex
	held     map[[2]string]aggregate.Snapshot
	loadErr  error
	saveErr  error
	blocking chan struct{} // when set, Save waits for it to close
	saves    int
}

func (m *memSnapshots) Load(ctx context.Context, streamID, schema string) (aggregate.Snapshot, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loadErr != nil {
		return aggregate.Snapshot{}, false, m.loadErr
	}
	s, ok := m.held[[2]string{streamID, schema}]
	return s, ok, nil
}

func (m *memSnapshots) Save(ctx context.Context, s aggregate.Snapshot) error {
	m.mu.Lock()
	block := m.blocking
	m.mu.Unlock()
	if block != nil {
		<-block
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saves++
	if m.saveErr != nil {
		return m.saveErr
	}
	m.put(s)
	return nil
}

func (m *memSnapshots) Drop(ctx context.Context, s aggregate.Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := [2]string{s.StreamID, s.Schema}
	if held, ok := m.held[key]; ok && held.Version == s.Version {
		delete(m.held, key)
	}
	return nil
}

// put stores s unless a later one is held, as Save does.
func (m *memSnapshots) put(s aggregate.Snapshot) {
	if m.held == nil {
		m.held = map[[2]string]aggregate.Snapshot{}
	}
	key := [2]string{s.StreamID, s.Schema}
	if held, ok := m.held[key]; !ok || held.Version <= s.Version {
		m.held[key] = s
	}
}

// plant stores s as it is, whatever is held.
func (m *memSnapshots) plant(s aggregate.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.held, [2]string{s.StreamID, s.Schema})
	m.put(s)
}

func (m *memSnapshots) get(streamID, schema string) (aggregate.Snapshot, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.held[[2]string{streamID, schema}]
	return s, ok
}

func (m *memSnapshots) deleteAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held = nil
}

// counting is a store that counts the events its reads return.
type counting struct {
	aggregate.MultiStore
	mu     sync.Mutex
	events int
}

func (c *counting) ReadStream(ctx context.Context, streamID string, from int64, limit int) (client.StreamPage, error) {
	page, err := c.MultiStore.ReadStream(ctx, streamID, from, limit)
	c.mu.Lock()
	c.events += len(page.Events)
	c.mu.Unlock()
	return page, err
}

// read returns the events read since the last call.
func (c *counting) read() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.events
	c.events = 0
	return n
}

// errorLog collects what a Snapshotter reports.
type errorLog struct {
	mu   sync.Mutex
	errs []*aggregate.SnapshotError
}

func (l *errorLog) add(err error) {
	var se *aggregate.SnapshotError
	if !errors.As(err, &se) {
		panic(fmt.Sprintf("reported %v (%T), not a *SnapshotError", err, err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, se)
}

// ops returns the ops reported so far.
func (l *errorLog) ops() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ops []string
	for _, e := range l.errs {
		ops = append(ops, e.Op)
	}
	return ops
}

func newSnapshotter(t *testing.T, snaps aggregate.Snapshots, schema string, every int, log *errorLog) *aggregate.Snapshotter {
	t.Helper()
	opts := aggregate.SnapshotOptions{Every: every}
	if log != nil {
		opts.OnError = log.add
	}
	s, err := aggregate.NewSnapshotter(snaps, schema, opts)
	if err != nil {
		t.Fatalf("NewSnapshotter = %v", err)
	}
	t.Cleanup(s.Wait)
	return s
}

// fillLedger appends n deposits of 1 to stream id.
func fillLedger(t *testing.T, store aggregate.Store, id string, n int) {
	t.Helper()
	for done := 0; done < n; {
		batch := make([]client.Event, min(n-done, client.MaxAppendEvents))
		for i := range batch {
			batch[i] = client.Event{Type: "Deposited", Data: amount{1}}
		}
		if _, err := store.Append(ctx, id, client.Any, batch); err != nil {
			t.Fatal(err)
		}
		done += len(batch)
	}
}

// run handles a command on Ledger-1 with snaps (none when nil) and
// returns the state it decided on, through decide.
func run(t *testing.T, store aggregate.Store, snaps *aggregate.Snapshotter, decide func(ledger) ([]client.Event, error)) (ledger, aggregate.Result, error) {
	t.Helper()
	var seen ledger
	res, err := aggregate.Handle(ctx, store, "Ledger-1", ledger{}, evolveLedger, func(l ledger) ([]client.Event, error) {
		seen = l
		return decide(l)
	}, aggregate.Options{Backoff: -1, Snapshots: snaps})
	if snaps != nil {
		snaps.Wait()
	}
	return seen, res, err
}

func TestNewSnapshotterRefusesWhatItCannotUse(t *testing.T) {
	snaps := &memSnapshots{}
	tests := []struct {
		name   string
		store  aggregate.Snapshots
		schema string
		opts   aggregate.SnapshotOptions
		want   string
	}{
		{"no snapshot schema", snaps, "", aggregate.SnapshotOptions{}, "the snapshot schema is empty"},
		{"no store", nil, "ledger-v1", aggregate.SnapshotOptions{}, "no Snapshots store"},
		{"a Marshal without an Unmarshal", snaps, "ledger-v1", aggregate.SnapshotOptions{Marshal: json.Marshal}, "both Marshal and Unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := aggregate.NewSnapshotter(tt.store, tt.schema, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewSnapshotter = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestALoadFromASnapshotReadsOnlyTheEventsAfterIt(t *testing.T) {
	store := &counting{MultiStore: &aggregatetest.Store{}}
	fillLedger(t, store, "Ledger-1", 2500)
	store.read()
	mem := &memSnapshots{}
	snaps := newSnapshotter(t, mem, "ledger-v1", 100, nil)

	first, _, err := run(t, store, snaps, give(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := store.read(); got != 2500 {
		t.Errorf("the first command read %d events, want the whole stream's 2500", got)
	}
	snap, ok := mem.get("Ledger-1", "ledger-v1")
	if !ok || snap.Version != 2500 {
		t.Fatalf("snapshot after the first command = %+v, %v; want one at version 2500, the version loaded", snap, ok)
	}
	if want := store.Events("Ledger-1")[2499].ID; snap.EventID != want {
		t.Errorf("snapshot's EventID = %s, want %s, the id of the event at version 2500", snap.EventID, want)
	}

	second, res, err := run(t, store, snaps, give(1))
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot's own event, to check that the stream continues from
	// it, and the first command's deposit.
	if got := store.read(); got != 2 {
		t.Errorf("the second command read %d events, want 2: the snapshot's and the one after it", got)
	}
	if want := (ledger{Balance: 2501, Events: 2501}); second != want || res.Version != 2501 {
		t.Errorf("second command decided on %+v at version %d, want %+v at 2501", second, res.Version, want)
	}
	if first.Balance != 2500 {
		t.Errorf("first command decided on %+v, want a balance of 2500", first)
	}
	if st := snaps.Stats(); st.Used != 1 || st.Saved != 1 || st.Ignored != 0 || st.Failed != 0 {
		t.Errorf("Stats = %+v, want 1 used and 1 saved", st)
	}
}

func (c *counting) Events(id string) []client.RecordedEvent {
	return c.MultiStore.(*aggregatetest.Store).Events(id)
}

func TestCommandsDecideTheSameWithSnapshotsWithoutThemAndAfterTheyAreDeleted(t *testing.T) {
	plain, snapped := &aggregatetest.Store{}, &aggregatetest.Store{}
	mem := &memSnapshots{}
	snaps := newSnapshotter(t, mem, "ledger-v1", 3, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		decide := give(rng.IntN(10))
		if rng.IntN(2) == 0 {
			decide = take(rng.IntN(20))
		}
		if i == 120 {
			mem.deleteAll()
		}
		wantState, wantRes, wantErr := run(t, plain, nil, decide)
		gotState, gotRes, gotErr := run(t, snapped, snaps, decide)
		for _, err := range []error{wantErr, gotErr} {
			if err != nil && !errors.Is(err, aggregate.ErrRejected) {
				t.Fatalf("command %d: Handle = %v", i, err)
			}
		}
		if gotState != wantState || gotRes.Version != wantRes.Version || errors.Is(gotErr, aggregate.ErrRejected) != errors.Is(wantErr, aggregate.ErrRejected) {
			t.Fatalf("command %d decided on %+v at %d (%v) with snapshots, %+v at %d (%v) without",
				i, gotState, gotRes.Version, gotErr, wantState, wantRes.Version, wantErr)
		}
	}
	if st := snaps.Stats(); st.Used < 150 || st.Saved < 50 {
		t.Errorf("Stats = %+v, want most loads from snapshots", st)
	}
}

func TestSnapshotsThatCannotBeUsedAreIgnoredAndReported(t *testing.T) {
	eventAt := func(store *aggregatetest.Store, v int64) string { return store.Events("Ledger-1")[v-1].ID }
	// Each plants a snapshot with a wrong balance of 1,000,000: if it
	// were used, the command would decide on it.
	forged := func(version int64, eventID string) aggregate.Snapshot {
		state, _ := json.Marshal(ledger{Balance: 1_000_000, Events: int(version)})
		return aggregate.Snapshot{StreamID: "Ledger-1", Schema: "ledger-v2", Version: version, EventID: eventID, State: state}
	}
	tests := []struct {
		name   string
		plant  func(store *aggregatetest.Store) aggregate.Snapshot
		wantOp string
	}{
		{"a snapshot that does not decode", func(store *aggregatetest.Store) aggregate.Snapshot {
			s := forged(100, eventAt(store, 100))
			s.State = []byte(`{"Balance": "lots"`)
			return s
		}, "decode"},
		{"a snapshot past the stream's version", func(store *aggregatetest.Store) aggregate.Snapshot {
			return forged(400, "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a")
		}, "use"},
		{"a snapshot whose event is not the stream's", func(store *aggregatetest.Store) aggregate.Snapshot {
			return forged(100, "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a")
		}, "use"},
		{"a snapshot followed by an erasure", func(store *aggregatetest.Store) aggregate.Snapshot {
			s := forged(100, eventAt(store, 100))
			if _, err := store.Append(ctx, "Ledger-1", client.Any, []client.Event{{Type: "$DataSubjectErased", Data: map[string]string{"subjectId": "s-1"}}}); err != nil {
				t.Fatal(err)
			}
			return s
		}, "use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &aggregatetest.Store{}
			fillLedger(t, store, "Ledger-1", 300)
			mem := &memSnapshots{}
			bad := tt.plant(store)
			mem.plant(bad)
			log := &errorLog{}
			snaps := newSnapshotter(t, mem, "ledger-v2", 100, log)

			want, _, err := run(t, store, nil, look)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := run(t, store, snaps, look)
			if err != nil {
				t.Fatalf("Handle = %v, want no error: a snapshot never fails a command", err)
			}
			if got != want {
				t.Errorf("decided on %+v, want %+v, that of the whole stream", got, want)
			}
			if diff := cmp.Diff([]string{tt.wantOp}, log.ops()); diff != "" {
				t.Errorf("reported ops (-want +got):\n%s", diff)
			}
			if st := snaps.Stats(); st.Ignored != 1 || st.Used != 0 {
				t.Errorf("Stats = %+v, want 1 ignored, none used", st)
			}
			if held, ok := mem.get("Ledger-1", "ledger-v2"); ok && held.Version == bad.Version && string(held.State) == string(bad.State) {
				t.Errorf("the snapshot that could not be used is still held: %+v", held)
			}
		})
	}
}

func TestASnapshotOfAnotherSchemaIsNeverUsed(t *testing.T) {
	store := &aggregatetest.Store{}
	fillLedger(t, store, "Ledger-1", 300)
	state, _ := json.Marshal(ledger{Balance: 1_000_000, Events: 300})
	old := aggregate.Snapshot{StreamID: "Ledger-1", Schema: "ledger-v1", Version: 300, EventID: store.Events("Ledger-1")[299].ID, State: state}

	t.Run("one held beside the current schema's is not loaded", func(t *testing.T) {
		mem := &memSnapshots{}
		mem.plant(old)
		snaps := newSnapshotter(t, mem, "ledger-v2", 100, nil)
		got, _, err := run(t, store, snaps, look)
		if err != nil || got.Balance != 300 {
			t.Errorf("decided on %+v (%v), want a balance of 300: the ledger-v1 snapshot is not the fold of ledger-v2", got, err)
		}
		if st := snaps.Stats(); st.Used != 0 {
			t.Errorf("Stats = %+v, want none used", st)
		}
		if held, _ := mem.get("Ledger-1", "ledger-v1"); held.Version != 300 || string(held.State) != string(state) {
			t.Errorf("the ledger-v1 snapshot = %+v, want it left alone", held)
		}
	})
	t.Run("one a store answers for the current schema is ignored", func(t *testing.T) {
		log := &errorLog{}
		snaps := newSnapshotter(t, wrongSchema{old}, "ledger-v2", 100, log)
		got, _, err := run(t, store, snaps, look)
		if err != nil || got.Balance != 300 {
			t.Errorf("decided on %+v (%v), want a balance of 300", got, err)
		}
		if diff := cmp.Diff([]string{"use"}, log.ops()); diff != "" {
			t.Errorf("reported ops (-want +got):\n%s", diff)
		}
	})
}

// wrongSchema answers its snapshot whatever schema is asked for.
type wrongSchema struct{ snap aggregate.Snapshot }

func (w wrongSchema) Load(context.Context, string, string) (aggregate.Snapshot, bool, error) {
	return w.snap, true, nil
}
func (wrongSchema) Save(context.Context, aggregate.Snapshot) error { return nil }
func (wrongSchema) Drop(context.Context, aggregate.Snapshot) error { return nil }

func TestAFailingSnapshotStoreFailsNoCommand(t *testing.T) {
	store := &aggregatetest.Store{}
	fillLedger(t, store, "Ledger-1", 300)
	broken := errors.New("snapshot database down")
	mem := &memSnapshots{loadErr: broken, saveErr: broken}
	log := &errorLog{}
	snaps := newSnapshotter(t, mem, "ledger-v1", 100, log)
	for i := range 3 {
		got, res, err := run(t, store, snaps, give(1))
		if err != nil {
			t.Fatalf("command %d: Handle = %v, want no error", i, err)
		}
		if got.Balance != 300+i || res.Appended.LastVersion != int64(301+i) {
			t.Errorf("command %d decided on %+v and appended to %d, want a balance of %d, appended to %d", i, got, res.Appended.LastVersion, 300+i, 301+i)
		}
	}
	if diff := cmp.Diff([]string{"load", "save", "load", "save", "load", "save"}, log.ops()); diff != "" {
		t.Errorf("reported ops (-want +got):\n%s", diff)
	}
	for _, e := range log.errs {
		if !errors.Is(e, broken) || e.StreamID != "Ledger-1" || e.Schema != "ledger-v1" {
			t.Errorf("reported %+v, want the store's error, with the stream and schema", e)
		}
	}
	if st := snaps.Stats(); st.Failed != 6 || st.Saved != 0 {
		t.Errorf("Stats = %+v, want 6 failed", st)
	}
}

func TestSavesAreOffTheCommandsPath(t *testing.T) {
	store := &aggregatetest.Store{}
	fillLedger(t, store, "Ledger-1", 300)
	release := make(chan struct{})
	mem := &memSnapshots{blocking: release}
	snaps := newSnapshotter(t, mem, "ledger-v1", 100, nil)

	handle := func() {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			_, err := aggregate.Handle(ctx, store, "Ledger-1", ledger{}, evolveLedger, give(1), aggregate.Options{Snapshots: snaps})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Handle waited for a snapshot's save")
		}
	}
	handle()
	// The first save is still blocked: the stream's next one is skipped
	// rather than queued behind it.
	handle()
	if st := snaps.Stats(); st.Saved != 0 || st.Skipped != 1 {
		t.Errorf("Stats while the save is blocked = %+v, want none saved and 1 skipped", st)
	}
	close(release)
	snaps.Wait()
	if st := snaps.Stats(); st.Saved != 1 {
		t.Errorf("Stats after the save = %+v, want 1 saved", st)
	}
	if snap, ok := mem.get("Ledger-1", "ledger-v1"); !ok || snap.Version != 300 {
		t.Errorf("snapshot = %+v, %v, want one at version 300, that the first command loaded", snap, ok)
	}
}

func TestHandleTwoStartsFromSnapshots(t *testing.T) {
	store := &counting{MultiStore: &aggregatetest.Store{}}
	fillLedger(t, store, "Ledger-a", 500)
	fillLedger(t, store, "Ledger-b", 500)
	snaps := newSnapshotter(t, &memSnapshots{}, "ledger-v1", 100, nil)
	move := func(a, b ledger) ([]client.Event, []client.Event, error) {
		if a.Balance < 7 {
			return nil, nil, errInsufficient
		}
		return []client.Event{{Type: "Withdrawn", Data: amount{7}}}, []client.Event{{Type: "Deposited", Data: amount{7}}}, nil
	}
	if _, err := aggregate.HandleTwo(ctx, store, "Ledger-a", "Ledger-b", ledger{}, evolveLedger, move,
		aggregate.Options{Snapshots: snaps}); err != nil {
		t.Fatal(err)
	}
	snaps.Wait()
	store.read()
	if _, err := aggregate.HandleTwo(ctx, store, "Ledger-a", "Ledger-b", ledger{}, evolveLedger, move,
		aggregate.Options{Snapshots: snaps}); err != nil {
		t.Fatal(err)
	}
	if got := store.read(); got != 4 {
		t.Errorf("the second transfer read %d events, want 4: each snapshot's and the one after it", got)
	}
	a, _, _ := aggregate.Load(ctx, store, "Ledger-a", ledger{}, evolveLedger)
	b, _, _ := aggregate.Load(ctx, store, "Ledger-b", ledger{}, evolveLedger)
	if a.Balance != 486 || b.Balance != 514 {
		t.Errorf("balances %d and %d, want 486 and 514", a.Balance, b.Balance)
	}
}
