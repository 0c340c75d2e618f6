package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// RecordErasure implements eventstore.DataSubjects. Erasures of one
// subject take turns (an advisory lock of the transaction). An append
// that takes a stream's next version first makes the transaction fail on
// the version index, and it is tried again, as an "any" append is; so is
// one that fails to serialize.
func (s *Store) RecordErasure(ctx context.Context, subject string, event func(eventstore.StreamID) (eventstore.EventData, error)) ([]eventstore.AppendResult, time.Time, error) {
	if err := s.checkDirect(ctx); err != nil {
		return nil, time.Time{}, translate(err)
	}
	for try := 1; ; try++ {
		results, at, err := s.recordErasureOnce(ctx, subject, event)
		if (isUniqueViolation(err, "events_stream_version") || isSerializationFailure(err)) && try < maxAnyTries {
			continue
		}
		if err != nil {
			return nil, time.Time{}, translate(err)
		}
		for _, r := range results {
			s.versions.saw(r.Stream.String(), r.LastVersion)
		}
		return results, at, nil
	}
}

func (s *Store) recordErasureOnce(ctx context.Context, subject string, event func(eventstore.StreamID) (eventstore.EventData, error)) (results []eventstore.AppendResult, at time.Time, err error) {
	// Repeatable read, as for multi-stream appends (see batch.go). The
	// snapshot is taken by the first statement, before its lock is
	// granted: an erasure that waited for another of the same subject
	// fails on what that one wrote, and is tried again.
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('strata.erase.' || $1, 0))", subject); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT DISTINCT e.stream_id FROM events e
			WHERE e.data_subject = $1 AND NOT EXISTS (SELECT 1 FROM stream_deletions d WHERE d.stream_id = e.stream_id AND d.hard)
			ORDER BY e.stream_id`, subject)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		results = results[:0]
		for _, name := range names {
			stream, err := eventstore.ParseStreamID(name)
			if err != nil {
				return err
			}
			e, err := event(stream)
			if err != nil {
				return err
			}
			res, err := appendIn(ctx, tx, stream, eventstore.Any, false, eventstore.AssignIDs([]eventstore.EventData{e}))
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		return tx.QueryRow(ctx, `INSERT INTO data_subject_erasures (subject) VALUES ($1)
			ON CONFLICT (subject) DO UPDATE SET erased_at = now() RETURNING erased_at`, subject).Scan(&at)
	})
	return results, at.UTC(), err
}

// SubjectEvents implements eventstore.DataSubjects.
func (s *Store) SubjectEvents(ctx context.Context, subject string, after int64, limit int) ([]eventstore.RecordedEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events e
		WHERE e.data_subject = $1 AND e.position > $2 ORDER BY e.position LIMIT $3`, subject, after, limit)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var r eventRow
	var out []eventstore.RecordedEvent
	for rows.Next() {
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, translate(err)
		}
		e, err := r.event()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, translate(rows.Err())
}
