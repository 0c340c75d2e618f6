package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// guardType is the type of the row that holds a guarded stream's next
// version during a multi-stream append; it never commits.
const guardType = "$Guard"

// multiItem is one stream of a multi-stream append: an append (events)
// or a guard (none), and where it was in the request.
type multiItem struct {
	stream   eventstore.StreamID
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	index    int // in appends, or -1 for a guard

	reserve, release []eventstore.Reservation
}

// multiError is the failure of one item, which the whole transaction
// shares.
type multiError struct {
	item *multiItem
	err  error
}

func (e *multiError) Error() string { return e.err.Error() }
func (e *multiError) Unwrap() error { return e.err }

// AppendMulti implements eventstore.MultiAppender in one transaction that
// visits the streams in stream id order, as group commits do, then makes
// the appends' reservations (reserveIn), so that two
// multi-stream appends (or one and a group) wait for each other at worst,
// and never deadlock. A guarded stream's next version is held by a row
// inserted and deleted in the transaction: an append to that stream waits
// for the transaction, and so the guard holds at its commit.
func (s *Store) AppendMulti(ctx context.Context, appends []eventstore.StreamAppend, guards []eventstore.Guard) ([]eventstore.AppendResult, error) {
	if err := eventstore.ValidateMulti(appends, guards); err != nil {
		return nil, err
	}
	if err := s.checkDirect(ctx); err != nil {
		return nil, translate(err)
	}
	items := make([]*multiItem, 0, len(appends)+len(guards))
	for i, a := range appends {
		items = append(items, &multiItem{stream: a.Stream, expected: a.Expected, events: eventstore.AssignIDs(a.Events), index: i,
			reserve: a.Reserve, release: a.Release})
	}
	for _, g := range guards {
		items = append(items, &multiItem{stream: g.Stream, expected: g.Expected, index: -1})
	}
	slices.SortFunc(items, func(a, b *multiItem) int { return cmp.Compare(a.stream.String(), b.stream.String()) })
	for try := 1; ; try++ {
		results, err := s.appendMultiOnce(ctx, items, len(appends))
		if err == nil {
			for _, r := range results {
				s.versions.saw(r.Stream.String(), r.LastVersion)
			}
			return results, nil
		}
		if isSerializationFailure(err) && try < maxAnyTries {
			continue
		}
		var failed *multiError
		if !errors.As(err, &failed) || !isConflict(failed.err) {
			return nil, translate(err)
		}
		// A retry of a multi-stream append that succeeded conflicts: it is
		// a replay when every append's events are stored in place.
		if replay, ok, err := s.findMultiStored(ctx, items, len(appends)); err != nil || ok {
			return replay, translate(err)
		}
		it := failed.item
		if isUniqueViolation(failed.err, "events_stream_version") && it.index >= 0 &&
			(it.expected == eventstore.Any || it.expected == eventstore.StreamExists) && try < maxAnyTries {
			continue // an append took the version just now
		}
		switch deleted, err := hardDeletion(ctx, s.pool, it.stream); {
		case err != nil:
			return nil, translate(err)
		case deleted != nil:
			return nil, deleted
		}
		return nil, s.conflictError(ctx, it.stream, it.expected, failed.err)
	}
}

func (s *Store) appendMultiOnce(ctx context.Context, items []*multiItem, nappends int) ([]eventstore.AppendResult, error) {
	results := make([]eventstore.AppendResult, nappends)
	// Repeatable read: every stream is read in the snapshot taken before
	// the transaction had an id, which keeps each stream in order in $all
	// (see batch.go). A stream written since that snapshot fails on its
	// version index, as it would in a later statement.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var holds [][16]byte
		for _, it := range items {
			if it.index >= 0 {
				res, err := appendIn(ctx, tx, it.stream, it.expected, false, it.events)
				if err != nil {
					return &multiError{it, err}
				}
				results[it.index] = res
				continue
			}
			hold, err := guardIn(ctx, tx, it)
			if err != nil {
				return &multiError{it, err}
			}
			holds = append(holds, hold)
		}
		if err := reserveIn(ctx, tx, items, results); err != nil {
			return err
		}
		if len(holds) > 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM events WHERE event_id = ANY($1::uuid[])", holds); err != nil {
				return err
			}
		}
		if beforeMultiCommit != nil {
			beforeMultiCommit()
		}
		return nil
	})
	return results, err
}

// beforeMultiCommit, when set (by tests only), runs before a multi-stream
// append commits: a test holds the transaction open with it.
var beforeMultiCommit func()

// guardIn checks a guard's expectation, then holds the stream's next
// version with a row of type guardType, which the transaction deletes
// before it commits; it returns the row's event id.
func guardIn(ctx context.Context, tx pgx.Tx, it *multiItem) ([16]byte, error) {
	if deleted, err := hardDeletion(ctx, tx, it.stream); err != nil || deleted != nil {
		if err == nil {
			err = deleted
		}
		return [16]byte{}, err
	}
	version, err := streamVersion(ctx, tx, it.stream)
	if err != nil {
		return [16]byte{}, err
	}
	if !it.expected.Allows(version) {
		return [16]byte{}, &eventstore.WrongExpectedVersionError{Stream: it.stream, Expected: it.expected, Actual: version}
	}
	id := eventstore.NewUUIDv7()
	_, err = tx.Exec(ctx, `INSERT INTO events (event_id, stream_id, category, version, type, schema_fp, data)
		VALUES ($1, $2, $3, $4, $5, 0, ''::bytea)`, [16]byte(id), it.stream.String(), it.stream.Category(), version+1, guardType)
	return id, err
}

// findMultiStored returns the results of a multi-stream append whose
// events are all stored in place: a replay. When they are in place but
// some in other bytes (an encoding under a newer schema, or personal
// fields encrypted afresh), it returns a *eventstore.DuplicateEventIDError
// whose Stored holds every append's stored events, in request order, for
// the caller to compare as values.
func (s *Store) findMultiStored(ctx context.Context, items []*multiItem, nappends int) ([]eventstore.AppendResult, bool, error) {
	results := make([]eventstore.AppendResult, nappends)
	stored := make([][]eventstore.RecordedEvent, nappends)
	var differs *eventstore.DuplicateEventIDError
	for _, it := range items {
		if it.index < 0 {
			continue
		}
		res, found, err := s.findStored(ctx, it.stream, it.events)
		var dup *eventstore.DuplicateEventIDError
		switch {
		case errors.As(err, &dup) && len(dup.Stored) == len(it.events):
			differs, stored[it.index] = dup, dup.Stored
		case err != nil || !found:
			return nil, false, err
		default:
			results[it.index] = res
			// Stored in place with the same bytes: as this request has them.
			for i, e := range it.events {
				stored[it.index] = append(stored[it.index], eventstore.RecordedEvent{ID: e.ID, StreamID: it.stream, Type: e.Type,
					Version: res.Events[i].Version, GlobalPosition: res.Events[i].GlobalPosition, Schema: e.Schema, Data: e.Data})
			}
		}
	}
	if differs == nil {
		return results, true, nil
	}
	// Every event is in place, some in other bytes: all of them, as
	// stored, in request order.
	all := &eventstore.DuplicateEventIDError{ID: differs.ID, Stream: differs.Stream}
	for _, st := range stored {
		all.Stored = append(all.Stored, st...)
	}
	return nil, false, all
}
