package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// deletion is a stream's row of stream_deletions.
type deletion struct {
	version int64
	hard    bool
}

// deletionOf returns the stream's deletion, nil if it was never deleted.
func deletionOf(ctx context.Context, q querier, stream eventstore.StreamID, lock string) (*deletion, error) {
	var d deletion
	err := q.QueryRow(ctx, "SELECT version, hard FROM stream_deletions WHERE stream_id = $1"+lock, stream.String()).Scan(&d.version, &d.hard)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return &d, err
}

// hardDeletion returns the error of a write to stream when it is
// hard-deleted, nil when it is not.
func hardDeletion(ctx context.Context, q querier, stream eventstore.StreamID) (*eventstore.StreamDeletedError, error) {
	d, err := deletionOf(ctx, q, stream, "")
	if err != nil || d == nil || !d.hard {
		return nil, err
	}
	return &eventstore.StreamDeletedError{Stream: stream, Version: d.version, Hard: true, Write: true}, nil
}

// DeleteStream implements eventstore.Deleter: in one transaction, it
// appends d.Event at d.Expected and records the deletion. Deletions of a
// stream take turns (an advisory lock of the transaction); appends race a
// deletion for the stream's next version, as two appends do, and once a
// hard deletion has committed every append refuses the stream.
func (s *Store) DeleteStream(ctx context.Context, d eventstore.Deletion) (eventstore.AppendResult, error) {
	if d.Expected == eventstore.NoStream || d.Expected < eventstore.StreamExists {
		return eventstore.AppendResult{}, eventstore.Errorf(eventstore.CodeInvalidExpectedVersion,
			"a deletion's expected version is -1 (any), -2 (the stream exists) or the stream's version N >= 1, not %d", d.Expected)
	}
	if err := s.checkDirect(ctx); err != nil {
		return eventstore.AppendResult{}, translate(err)
	}
	events := eventstore.AssignIDs([]eventstore.EventData{d.Event})
	expected := d.Expected
	if expected == eventstore.Any {
		expected = eventstore.StreamExists // deleting makes no stream
	}
	for try := 1; ; try++ {
		res, err := s.deleteOnce(ctx, d, expected, events)
		var deleted *eventstore.StreamDeletedError
		switch {
		case err == nil:
			s.versions.saw(d.Stream.String(), res.LastVersion)
			return res, nil
		case isUniqueViolation(err, "events_stream_version") && d.Expected == eventstore.Any && try < maxAnyTries:
			continue // an append took the next version first: no conflict at any version
		case isConflict(err):
			return eventstore.AppendResult{}, s.conflictError(ctx, d.Stream, d.Expected, err)
		case errors.As(err, &deleted), eventstore.ErrorCode(err) == eventstore.CodeStreamNotFound:
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{}, translate(err)
	}
}

func (s *Store) deleteOnce(ctx context.Context, d eventstore.Deletion, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	var res eventstore.AppendResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Deletions of one stream take turns.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('strata.delete.' || $1, 0))", d.Stream.String()); err != nil {
			return err
		}
		prior, err := deletionOf(ctx, tx, d.Stream, "")
		if err != nil {
			return err
		}
		version, err := streamVersion(ctx, tx, d.Stream)
		switch {
		case err != nil:
			return err
		case prior != nil && prior.hard:
			return &eventstore.StreamDeletedError{Stream: d.Stream, Version: prior.version, Hard: true, Write: true}
		case prior != nil && prior.version == version && !d.Hard:
			return &eventstore.StreamDeletedError{Stream: d.Stream, Version: prior.version, Write: true}
		case version == 0:
			return eventstore.Errorf(eventstore.CodeStreamNotFound, "stream %s not found", d.Stream)
		}
		if res, err = appendIn(ctx, tx, d.Stream, expected, false, events); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO stream_deletions (stream_id, version, hard) VALUES ($1, $2, $3)
			ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, hard = excluded.hard, deleted_at = now()`,
			d.Stream.String(), res.LastVersion, d.Hard)
		if err != nil || !d.Hard {
			return err
		}
		// A stream deleted for good holds no value any more.
		_, err = tx.Exec(ctx, "DELETE FROM reservations WHERE stream_id = $1", d.Stream.String())
		return err
	})
	return res, err
}
