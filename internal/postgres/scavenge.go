package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scavenging removes the events that deletions and retention settings
// exclude from their streams' reads, in small batches of their own
// transactions. It removes none that
//   - the relay has not published: only events of transactions before the
//     relay's reported checkpoint snapshot (its xmin: each of those is
//     committed or aborted, and was read); with no report, none;
//   - is its stream's last: the stream's version is its highest event's,
//     which appends continue from, so a stream never starts again at 1;
//   - a stream read shows: the selections below are the reads' filters
//     (read.go), so scavenging changes no stream read.
//
// Each removed event's position, id and transaction id go to scavenged,
// so that a cursor anchored on it is still known to be of this history
// (batch.go). $all and category pages read after a removal lack the events
// removed, and never miss or repeat another: the cursors are snapshots,
// which removing rows does not move.

// ErrNotPublished: the relay has reported no checkpoint in this store's
// epoch, so nothing is known to be published, and nothing is scavenged.
var ErrNotPublished = errors.New("the relay has reported no checkpoint yet: nothing is known to be published, so nothing is scavenged")

// The selections of what to remove, $1 the published bound (xid8) and $2
// the batch's size. Each keeps its stream's last event (m.mv).
const (
	scavengeDeleted = `SELECT e.position FROM stream_deletions d
	JOIN events e ON e.stream_id = d.stream_id AND e.version < d.version
	WHERE e.tx_id < $1::xid8 LIMIT $2`

	scavengeStreams = `SELECT e.position FROM stream_settings ss
	LEFT JOIN category_settings cs ON cs.category = split_part(ss.stream_id, '-', 1)
	CROSS JOIN LATERAL (SELECT max(version) AS mv FROM events WHERE stream_id = ss.stream_id) m
	JOIN events e ON e.stream_id = ss.stream_id AND e.version < m.mv
	WHERE e.tx_id < $1::xid8 AND (e.version < coalesce(ss.truncate_before, cs.truncate_before, 0)
		OR e.version <= m.mv - coalesce(ss.max_count, cs.max_count, m.mv)
		OR e.recorded_at < now() - interval '1 millisecond' * coalesce(ss.max_age_ms, cs.max_age_ms))
	LIMIT $2`

	// A category's settings, for its streams without settings of their
	// own (scavengeStreams takes the others, with the category's as
	// their fallback). It scans the category.
	scavengeCategories = `SELECT e.position FROM category_settings cs
	JOIN events e ON e.category = cs.category
	CROSS JOIN LATERAL (SELECT max(version) AS mv FROM events x WHERE x.stream_id = e.stream_id) m
	WHERE e.tx_id < $1::xid8 AND e.version < m.mv
		AND NOT EXISTS (SELECT 1 FROM stream_settings ss WHERE ss.stream_id = e.stream_id)
		AND (e.version < coalesce(cs.truncate_before, 0) OR e.version <= m.mv - coalesce(cs.max_count, m.mv)
			OR e.recorded_at < now() - interval '1 millisecond' * cs.max_age_ms)
	LIMIT $2`

	scavengeRemove = `WITH gone AS (DELETE FROM events WHERE position IN (%s) RETURNING position, event_id, tx_id)
	INSERT INTO scavenged SELECT position, event_id, tx_id FROM gone`
)

var scavengeSQL = []string{
	fmt.Sprintf(scavengeRemove, scavengeDeleted),
	fmt.Sprintf(scavengeRemove, scavengeStreams),
	fmt.Sprintf(scavengeRemove, scavengeCategories),
}

// ScavengeBatch removes up to limit excluded events, in one short
// transaction, and returns how many it removed: fewer than limit when
// nothing more is to be removed now. It returns ErrNotPublished while the
// relay has not reported a checkpoint of this epoch.
func (s *Store) ScavengeBatch(ctx context.Context, limit int) (int, error) {
	bound, err := s.publishedBound(ctx)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, sql := range scavengeSQL {
		if removed >= limit {
			break
		}
		tag, err := s.pool.Exec(ctx, sql, strconv.FormatUint(bound, 10), limit-removed)
		if err != nil {
			return removed, translate(err)
		}
		removed += int(tag.RowsAffected())
	}
	s.scavenged.Add(int64(removed))
	return removed, nil
}

// publishedBound is the xmin of the relay's reported checkpoint: every
// transaction below it is published (or aborted).
func (s *Store) publishedBound(ctx context.Context) (uint64, error) {
	var text *string
	var epoch int64
	err := s.pool.QueryRow(ctx, "SELECT checkpoint_cursor, (SELECT epoch FROM store_meta) FROM relay_status WHERE lease = $1",
		RelayLease).Scan(&text, &epoch)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (text == nil || *text == "")) {
		return 0, ErrNotPublished
	}
	if err != nil {
		return 0, translate(err)
	}
	c, err := parseCursor(*text)
	if err != nil {
		return 0, fmt.Errorf("the relay's reported checkpoint: %w", err)
	}
	if c.epoch != epoch {
		return 0, ErrNotPublished
	}
	return c.a.xmin, nil
}

// ScavengerOptions configures RunScavenger; the zero value gives the
// defaults.
type ScavengerOptions struct {
	// Interval is the time between rounds; default DefaultScavengeInterval.
	Interval time.Duration
	// Batch is how many events a batch removes at most; default 500.
	Batch int
	// Share is the part of the time a round spends in batches: after a
	// batch that took d, it rests d×(1-Share)/Share, so that the
	// scavenger takes about that share of one connection's time, whatever
	// the machine; default DefaultScavengeShare.
	Share float64
}

// DefaultScavengeShare keeps the scavenger in batches a tenth of the time.
const DefaultScavengeShare = 0.1

// DefaultScavengeInterval is the time between two rounds of the scavenger.
const DefaultScavengeInterval = time.Minute

// RunScavenger scavenges until ctx ends: every Interval a round of
// batches, until a batch finds less than a batch to remove. Failures are
// logged and the round ends; the next tries again.
func (s *Store) RunScavenger(ctx context.Context, opts ScavengerOptions) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultScavengeInterval
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Share <= 0 || opts.Share > 1 {
		opts.Share = DefaultScavengeShare
	}
	log := s.log.With("component", "scavenger")
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	var warned time.Time
	for {
		round := 0
		for ctx.Err() == nil {
			start := time.Now()
			n, err := s.ScavengeBatch(ctx, opts.Batch)
			round += n
			if err != nil {
				switch {
				case ctx.Err() != nil:
				case errors.Is(err, ErrNotPublished):
					log.Debug("nothing to scavenge yet", "reason", err)
				case time.Since(warned) > 10*time.Minute:
					log.Warn("scavenging failed; trying again next round", "error", err)
					warned = time.Now()
				}
				break
			}
			if n < opts.Batch {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(float64(time.Since(start)) * (1 - opts.Share) / opts.Share)):
			}
		}
		if round > 0 {
			log.Info("scavenged", "events", round)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
