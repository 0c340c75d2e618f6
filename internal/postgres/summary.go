package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// exactBelow is the size, by the statistics' estimate, below which
// Summarize counts events and streams exactly.
var exactBelow float64 = 200_000

// Summarize implements eventstore.Summarizer. Its cost does not grow with
// the store: counts come from the statistics beyond exactBelow events,
// the categories from one probe of the (category, tx_id) index each, and
// the latest event from the end of the position index.
func (s *Store) Summarize(ctx context.Context) (eventstore.Summary, error) {
	var sum eventstore.Summary
	var estimate, distinct float64
	err := s.pool.QueryRow(ctx, `SELECT greatest(c.reltuples, 0),
		coalesce((SELECT n_distinct FROM pg_stats WHERE schemaname = n.nspname AND tablename = 'events' AND attname = 'stream_id'), 0)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = 'events'::regclass`).Scan(&estimate, &distinct)
	if err != nil {
		return sum, translate(err)
	}
	if estimate < exactBelow {
		err = s.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT stream_id) FROM events`).Scan(&sum.Events, &sum.Streams)
	} else {
		sum.Estimated, sum.Events = true, int64(estimate)
		if sum.Streams = int64(distinct); distinct < 0 { // a fraction of the rows
			sum.Streams = int64(-distinct * estimate)
		}
	}
	if err != nil {
		return sum, translate(err)
	}
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE c AS (
			(SELECT category FROM events ORDER BY category LIMIT 1)
			UNION ALL
			SELECT (SELECT e.category FROM events e WHERE e.category > c.category ORDER BY e.category LIMIT 1)
			FROM c WHERE c.category IS NOT NULL
		)
		SELECT category FROM c WHERE category IS NOT NULL LIMIT 10000`)
	if err != nil {
		return sum, translate(err)
	}
	if sum.Categories, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return sum, translate(err)
	}
	var at time.Time
	err = s.pool.QueryRow(ctx, `SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1`).Scan(&sum.LastPosition, &at)
	switch {
	case err == nil:
		sum.LastRecordedAt = &at
	case errors.Is(err, pgx.ErrNoRows): // an empty store
	default:
		return sum, translate(err)
	}
	if sum.Head, err = s.Head(ctx, ""); err != nil {
		return sum, err
	}
	return sum, nil
}
