package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/eventstore"
)

// Snapshot is an aggregate's state at a version of its stream, encoded,
// so that a later load reads only the events after it. Snapshots are an
// optimisation, never a source of truth: with none at all, every command
// decides on the same state.
type Snapshot struct {
	StreamID string
	// Schema is the snapshot schema version the state was encoded with
	// (Snapshotter's schema): a snapshot is used only by a Snapshotter of
	// the same schema.
	Schema string
	// Version is the stream's version the state is at.
	Version int64
	// EventID is the id of the stream's event at Version. A load checks
	// that the stream still holds that event there, so that a snapshot
	// of another stream of the same id (one restored or recreated in
	// another database, say) is never used.
	EventID string
	// State is the encoded state.
	State []byte
}

// Snapshots stores snapshots: at least the latest of each stream and
// schema. aggregate/pgsnapshots keeps them in PostgreSQL.
type Snapshots interface {
	// Load returns the stream's snapshot of schema, and false when it
	// has none.
	Load(ctx context.Context, streamID, schema string) (Snapshot, bool, error)
	// Save stores s as its stream's snapshot of its schema, unless one of
	// a later version is held already.
	Save(ctx context.Context, s Snapshot) error
	// Drop removes the stream's snapshot of s.Schema if it is still the
	// one of s.Version; it is called with snapshots that could not be
	// used. Dropping one that is not held is no error.
	Drop(ctx context.Context, s Snapshot) error
}

// Defaults for SnapshotOptions.
const (
	DefaultSnapshotEvery   = 100
	DefaultSnapshotSaves   = 16
	DefaultSnapshotTimeout = 10 * time.Second
)

// SnapshotOptions configures a Snapshotter; the zero value gives the
// defaults.
type SnapshotOptions struct {
	// Every is how many events past the snapshot it started from (or
	// past the start of the stream) a state must be loaded at for a new
	// snapshot to be taken of it; default 100. Taking one costs an
	// encoding and a write, in the background; loading one saves reading
	// and folding up to Every-1 events fewer than the stream holds.
	Every int
	// MaxSaves bounds the saves in flight at once, across streams; a
	// save due beyond it is skipped (the next load takes it). Default 16.
	// One stream never has more than one save in flight.
	MaxSaves int
	// Timeout bounds each background save; default 10s.
	Timeout time.Duration
	// Marshal and Unmarshal encode and decode states; default
	// encoding/json's. Unmarshal is given a pointer to a zero state.
	// Set both or neither.
	Marshal   func(v any) ([]byte, error)
	Unmarshal func(data []byte, v any) error
	// OnError, when set, is told of every snapshot that could not be
	// loaded, used or saved, as a *SnapshotError; none of them fails a
	// command. It may be called from several goroutines at once, and
	// from background saves after the command returned.
	OnError func(error)
}

// SnapshotError is a snapshot that could not be loaded, used, saved or
// dropped. The command it happened under went on without it.
type SnapshotError struct {
	StreamID string
	Schema   string
	// Version is the snapshot's; 0 when none was read.
	Version int64
	// Op is what failed: "load" (the Snapshots store failed), "decode"
	// (Unmarshal failed), "use" (the stream does not continue from the
	// snapshot: it is past the stream's version, its event is not the
	// stream's, or an erasure came after it), "encode", "save" or "drop".
	Op  string
	Err error
}

func (e *SnapshotError) Error() string {
	return fmt.Sprintf("snapshot %s of %s at version %d: %s: %v", e.Schema, e.StreamID, e.Version, e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *SnapshotError) Unwrap() error { return e.Err }

// SnapshotStats counts what a Snapshotter did since it was made.
type SnapshotStats struct {
	// Used is the loads that started from a snapshot.
	Used int64
	// Ignored is the snapshots found and not used: undecodable, of
	// another schema, or not continued by the stream.
	Ignored int64
	// Saved is the snapshots stored; Skipped the saves due that were not
	// started because the stream had one in flight or MaxSaves were.
	Saved, Skipped int64
	// Failed is the errors of the Snapshots store and of encoding.
	Failed int64
}

// A Snapshotter makes Handle and HandleTwo start from snapshots (set
// Options.Snapshots) and takes new ones in the background. Make one with
// NewSnapshotter, per aggregate kind and snapshot schema. It is safe for
// concurrent use.
//
// A snapshot is used only when it is of the Snapshotter's schema, decodes,
// and the stream continues from it: the stream holds the snapshot's event
// at its version, and no $DataSubjectErased after it (an erasure changes
// what the stream's earlier events read, which a replay sees and the
// snapshot does not). Any other snapshot, and any failure of the
// Snapshots store, falls back to reading the whole stream, as without
// snapshots; it is reported to OnError and counted, and a snapshot that
// could not be used is dropped.
//
// Snapshots are taken of a state as loaded, at the version loaded (not
// with the command's new events), when it is at least Every events past
// the snapshot it started from. They are encoded and saved in a goroutine:
// a command never waits for one, nor fails because of one. The state is
// encoded while decide runs, so decide must not modify it (it should
// only return events anyway).
type Snapshotter struct {
	store     Snapshots
	schema    string
	every     int64
	maxSaves  int
	timeout   time.Duration
	marshal   func(v any) ([]byte, error)
	unmarshal func(data []byte, v any) error
	onError   func(error)

	mu     sync.Mutex
	saving map[string]bool // streams with a save in flight
	wg     sync.WaitGroup

	used, ignored, saved, skipped, failed atomic.Int64
}

// NewSnapshotter returns a Snapshotter that keeps snapshots in store
// under schema, the snapshot schema version. Change schema whenever
// evolve or the state's shape changes, so that snapshots of the old fold
// are never used with the new one ("order-v3" after "order-v2"); the old
// ones are then ignored, and may be deleted.
//
// With the default encoding/json codec, a state must round-trip through
// json.Marshal and json.Unmarshal: only exported fields are kept, and
// interface-typed fields come back as JSON's types. A state that does not
// would make commands decide differently with snapshots than without;
// test it, or set Marshal and Unmarshal.
//
// It fails if store is nil, schema is empty, or only one of Marshal and
// Unmarshal is set.
func NewSnapshotter(store Snapshots, schema string, opts SnapshotOptions) (*Snapshotter, error) {
	switch {
	case store == nil:
		return nil, errors.New("snapshotter: no Snapshots store")
	case schema == "":
		return nil, errors.New("snapshotter: the snapshot schema is empty: name the version of the fold, e.g. \"order-v1\", and change it when evolve or the state changes")
	case (opts.Marshal == nil) != (opts.Unmarshal == nil):
		return nil, errors.New("snapshotter: set both Marshal and Unmarshal, or neither")
	}
	s := &Snapshotter{
		store: store, schema: schema, every: int64(opts.Every), maxSaves: opts.MaxSaves, timeout: opts.Timeout,
		marshal: opts.Marshal, unmarshal: opts.Unmarshal, onError: opts.OnError, saving: map[string]bool{},
	}
	if s.every <= 0 {
		s.every = DefaultSnapshotEvery
	}
	if s.maxSaves <= 0 {
		s.maxSaves = DefaultSnapshotSaves
	}
	if s.timeout <= 0 {
		s.timeout = DefaultSnapshotTimeout
	}
	if s.marshal == nil {
		s.marshal, s.unmarshal = json.Marshal, json.Unmarshal
	}
	return s, nil
}

// Schema returns the snapshot schema version.
func (s *Snapshotter) Schema() string { return s.schema }

// Wait returns when the saves in flight have ended. Call it before the
// Snapshots store closes; a save cut short costs nothing but a later
// load's extra reading.
func (s *Snapshotter) Wait() { s.wg.Wait() }

// Stats returns the counts so far.
func (s *Snapshotter) Stats() SnapshotStats {
	return SnapshotStats{Used: s.used.Load(), Ignored: s.ignored.Load(), Saved: s.saved.Load(),
		Skipped: s.skipped.Load(), Failed: s.failed.Load()}
}

func (s *Snapshotter) report(streamID string, version int64, op string, err error) {
	if s.onError != nil {
		s.onError(&SnapshotError{StreamID: streamID, Schema: s.schema, Version: version, Op: op, Err: err})
	}
}

// load returns the state of the stream's aggregate as Load does, starting
// from a snapshot when snaps has one it can use, and starts a save when
// one is due. Without snaps it is Load.
func load[S any](ctx context.Context, store Store, streamID string, initial S,
	evolve func(S, client.RecordedEvent) (S, error), snaps *Snapshotter) (S, int64, error) {
	if snaps == nil {
		return Load(ctx, store, streamID, initial, evolve)
	}
	snap, found, err := snaps.store.Load(ctx, streamID, snaps.schema)
	if err != nil {
		snaps.failed.Add(1)
		snaps.report(streamID, 0, "load", err)
		found = false
	}
	var bad *Snapshot
	if found {
		state, version, last, err := fromSnapshot(ctx, store, snaps, streamID, snap, evolve)
		if err == nil {
			snaps.used.Add(1)
			snaps.maybeSave(ctx, streamID, state, version, last, snap.Version, nil)
			return state, version, nil
		}
		if ctx.Err() != nil {
			return initial, 0, fmt.Errorf("load %s: %w", streamID, ctx.Err())
		}
		snaps.ignored.Add(1)
		var se *SnapshotError
		if errors.As(err, &se) {
			snaps.report(streamID, snap.Version, se.Op, se.Err)
		}
		if snap.StreamID == streamID && snap.Schema == snaps.schema {
			bad = &snap
		}
	}
	state, version, last, err := replay(ctx, store, streamID, initial, 0, "", evolve)
	if err != nil {
		return initial, 0, err
	}
	snaps.maybeSave(ctx, streamID, state, version, last, 0, bad)
	return state, version, nil
}

// fromSnapshot decodes snap and folds the stream's events after it; its
// errors are *SnapshotErrors, or the context's.
func fromSnapshot[S any](ctx context.Context, store Store, snaps *Snapshotter, streamID string, snap Snapshot,
	evolve func(S, client.RecordedEvent) (S, error)) (S, int64, string, error) {
	var state S
	fail := func(op string, err error) (S, int64, string, error) {
		return state, 0, "", &SnapshotError{Op: op, Err: err}
	}
	if snap.StreamID != streamID || snap.Schema != snaps.schema || snap.Version <= 0 || snap.EventID == "" {
		return fail("use", fmt.Errorf("the store answered a snapshot of stream %q, schema %q, version %d, event %q",
			snap.StreamID, snap.Schema, snap.Version, snap.EventID))
	}
	if err := snaps.unmarshal(snap.State, &state); err != nil {
		return fail("decode", err)
	}
	state, version, last, err := replay(ctx, store, streamID, state, snap.Version, snap.EventID, evolve)
	if err != nil {
		return fail("use", err)
	}
	return state, version, last, nil
}

// maybeSave starts a save of state, at version (whose event is eventID),
// if it is Every events past base; and a drop of bad first, when set.
func (s *Snapshotter) maybeSave(ctx context.Context, streamID string, state any, version int64, eventID string, base int64, bad *Snapshot) {
	due := version > 0 && version-base >= s.every
	if !due && bad == nil {
		return
	}
	s.mu.Lock()
	if s.saving[streamID] || len(s.saving) >= s.maxSaves {
		s.mu.Unlock()
		s.skipped.Add(1)
		return
	}
	s.saving[streamID] = true
	s.wg.Add(1)
	s.mu.Unlock()
	// The command's context ends with the command; the save outlives it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	go func() {
		defer func() {
			cancel()
			s.mu.Lock()
			delete(s.saving, streamID)
			s.mu.Unlock()
			s.wg.Done()
		}()
		if bad != nil {
			if err := s.store.Drop(ctx, *bad); err != nil {
				s.failed.Add(1)
				s.report(streamID, bad.Version, "drop", err)
			}
		}
		if !due {
			return
		}
		data, err := s.marshal(state)
		if err != nil {
			s.failed.Add(1)
			s.report(streamID, version, "encode", err)
			return
		}
		if err := s.store.Save(ctx, Snapshot{StreamID: streamID, Schema: s.schema, Version: version, EventID: eventID, State: data}); err != nil {
			s.failed.Add(1)
			s.report(streamID, version, "save", err)
			return
		}
		s.saved.Add(1)
	}()
}

// replay folds the stream's events after version into state, and returns
// the state, the version reached and the id of the event there (anchor
// when none came after it). With an anchor, version is a snapshot's and
// anchor the id of its event: the read starts at that version, and fails
// unless the stream holds that event there and no erasure after it.
// Without one, version is 0 and a stream that does not exist is state at
// version 0.
func replay[S any](ctx context.Context, store Store, streamID string, state S, version int64, anchor string,
	evolve func(S, client.RecordedEvent) (S, error)) (S, int64, string, error) {
	start, last := state, anchor
	from, anchored := version+1, anchor != ""
	if anchored {
		from = version
	}
	for {
		page, err := store.ReadStream(ctx, streamID, from, client.MaxReadLimit)
		if client.IsStreamNotFound(err) && version == 0 {
			return start, 0, "", nil
		}
		if err != nil {
			return start, 0, "", fmt.Errorf("load %s: %w", streamID, err)
		}
		events := page.Events
		if anchor != "" {
			switch {
			case len(events) == 0:
				return start, 0, "", fmt.Errorf("the stream is at version %d, before the snapshot", page.Version)
			case events[0].Version != version:
				return start, 0, "", fmt.Errorf("the stream's first event from version %d is at version %d", version, events[0].Version)
			case events[0].ID != anchor:
				return start, 0, "", fmt.Errorf("the stream's event at version %d is %s, not %s", version, events[0].ID, anchor)
			}
			events, anchor = events[1:], ""
		}
		for _, e := range events {
			if e.Version != version+1 {
				return start, 0, "", fmt.Errorf("load %s: read version %d after version %d", streamID, e.Version, version)
			}
			if anchored && e.Type == eventstore.DataSubjectErasedType {
				return start, 0, "", fmt.Errorf("%s at version %d, after the snapshot", e.Type, e.Version)
			}
			if state, err = evolve(state, e); err != nil {
				return start, 0, "", fmt.Errorf("load %s: %s at version %d: %w", streamID, e.Type, e.Version, err)
			}
			version, last = e.Version, e.ID
		}
		if len(page.Events) == 0 || version >= page.Version {
			return state, version, last, nil
		}
		from = version + 1
	}
}
