package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// StreamRetention implements eventstore.RetentionStore: the stream's own
// settings, without its category's.
func (s *Store) StreamRetention(ctx context.Context, stream eventstore.StreamID) (eventstore.Retention, error) {
	return s.retention(ctx, "stream_settings", "stream_id", stream.String())
}

// CategoryRetention implements eventstore.RetentionStore.
func (s *Store) CategoryRetention(ctx context.Context, category string) (eventstore.Retention, error) {
	return s.retention(ctx, "category_settings", "category", category)
}

// SetStreamRetention implements eventstore.RetentionStore; r replaces
// the stream's settings (no limit at all deletes them).
func (s *Store) SetStreamRetention(ctx context.Context, stream eventstore.StreamID, r eventstore.Retention) error {
	return s.setRetention(ctx, "stream_settings", "stream_id", stream.String(), r)
}

// SetCategoryRetention implements eventstore.RetentionStore.
func (s *Store) SetCategoryRetention(ctx context.Context, category string, r eventstore.Retention) error {
	return s.setRetention(ctx, "category_settings", "category", category, r)
}

func (s *Store) retention(ctx context.Context, table, key, value string) (eventstore.Retention, error) {
	var r eventstore.Retention
	var ms *int64
	err := s.pool.QueryRow(ctx, "SELECT truncate_before, max_count, max_age_ms FROM "+table+" WHERE "+key+" = $1", value).
		Scan(&r.TruncateBefore, &r.MaxCount, &ms)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Retention{}, nil
	}
	if ms != nil {
		d := time.Duration(*ms) * time.Millisecond
		r.MaxAge = &d
	}
	return r, translate(err)
}

func (s *Store) setRetention(ctx context.Context, table, key, value string, r eventstore.Retention) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r == (eventstore.Retention{}) {
		_, err := s.pool.Exec(ctx, "DELETE FROM "+table+" WHERE "+key+" = $1", value)
		return translate(err)
	}
	var ms *int64
	if r.MaxAge != nil {
		v := r.MaxAge.Milliseconds()
		ms = &v
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+table+` (`+key+`, truncate_before, max_count, max_age_ms) VALUES ($1, $2, $3, $4)
		ON CONFLICT (`+key+`) DO UPDATE SET truncate_before = excluded.truncate_before, max_count = excluded.max_count,
			max_age_ms = excluded.max_age_ms, updated_at = now()`, value, r.TruncateBefore, r.MaxCount, ms)
	return translate(err)
}
