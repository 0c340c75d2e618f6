package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// Reading $all and categories in snapshot-difference batches (PgQ's method).
//
// A row's tx_id becomes visible when its transaction commits, and a
// snapshot is the set of transactions finished when it was taken. The
// batch (a, b] is the rows whose transaction is visible in b and not in a,
// ordered by position. Consecutive batches (a, b], (b, c], ... hold every
// committed row exactly once — in the batch of the first snapshot that saw
// its commit — and no aborted row. A stream's next event is inserted only
// after its previous one committed, so it is never in an earlier batch and,
// within a batch, always has a larger position: each stream stays in
// version order. A long transaction delays only its own rows.
//
// The rows of (a, b] are those with tx_id in [xmax(a), xmax(b)), plus those
// of transactions running at a (xip(a)) that finished by b. A batch that
// would hold more than sliceSize rows is cut, at a transaction id, into
// slices (see snapshot.cut); the cut depends only on rows visible in b, so
// it is the same on every read of the cursor.

// sliceBound finds where to cut (a, b]: the id of the first transaction
// beyond sliceSize rows, or xmax(b) when the batch is small. It also
// returns the server's current snapshot, taken by the same statement.
const sliceBoundSQL = `SELECT pg_current_snapshot()::text,
	(SELECT tx_id FROM events WHERE tx_id >= $1::text::xid8 AND tx_id < $2::text::xid8
	   AND pg_visible_in_snapshot(tx_id, $3::text::pg_snapshot) %s
	 ORDER BY tx_id LIMIT 1)::text,
	(SELECT tx_id FROM events WHERE tx_id >= $1::text::xid8 AND tx_id < $2::text::xid8
	   AND pg_visible_in_snapshot(tx_id, $3::text::pg_snapshot) %s
	 ORDER BY tx_id OFFSET $4 LIMIT 1)::text`

// fetchSQL reads the rows of the slice (a, b'] after a position.
const fetchSQL = `SELECT ` + eventColumns + ` FROM events e
WHERE (e.tx_id >= $1::text::xid8 AND e.tx_id < $2::text::xid8 OR e.tx_id = ANY($3::text[]::xid8[]))
  AND pg_visible_in_snapshot(e.tx_id, $4::text::pg_snapshot)
  AND NOT pg_visible_in_snapshot(e.tx_id, $5::text::pg_snapshot)
  AND e.position > $6 %s
ORDER BY e.position LIMIT $7`

var (
	sliceBoundAll      = fmt.Sprintf(sliceBoundSQL, "", "")
	sliceBoundCategory = fmt.Sprintf(sliceBoundSQL, "AND category = $5", "AND category = $5")
	fetchAll           = fmt.Sprintf(fetchSQL, "")
	fetchCategory      = fmt.Sprintf(fetchSQL, "AND e.category = $8")
)

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Cursor, limit int) (eventstore.Page, error) {
	return s.readBatches(ctx, "", after, limit)
}

// ReadCategory implements eventstore.Store.
func (s *Store) ReadCategory(ctx context.Context, category string, after eventstore.Cursor, limit int) (eventstore.Page, error) {
	if err := eventstore.ValidateCategory(category); err != nil {
		return eventstore.Page{}, err
	}
	return s.readBatches(ctx, category, after, limit)
}

func (s *Store) readBatches(ctx context.Context, category string, after eventstore.Cursor, limit int) (eventstore.Page, error) {
	limit, err := eventstore.NormalizeLimit(limit)
	if err != nil {
		return eventstore.Page{}, err
	}
	c, err := decodeCursor(after, category, s.epoch.Load())
	if err != nil {
		return eventstore.Page{}, err
	}
	events, c, err := s.readCursor(ctx, s.pool, c, limit)
	if err != nil {
		return eventstore.Page{}, translate(err)
	}
	return eventstore.Page{Events: events, Next: c.encode()}, nil
}

// readCursor reads up to limit events from c and returns the cursor after
// them. It crosses slice boundaries freely, since slices are fixed; it
// takes a new snapshot only when the batch (a, b] is exhausted, and reads
// on into the new batch only if it has returned nothing yet, so that a
// page with events is the same on every read of its cursor.
func (s *Store) readCursor(ctx context.Context, q querier, c cursor, limit int) ([]eventstore.RecordedEvent, cursor, error) {
	var out []eventstore.RecordedEvent
	movedToHead := false
	for {
		cut, now, err := s.sliceBound(ctx, q, c)
		if err != nil {
			return nil, c, err
		}
		if !c.b.containedIn(now) {
			return nil, c, eventstore.Errorf(eventstore.CodeInvalidRequest,
				"invalid position token: it is from a later point than this database has reached (from another store, or from before a restore)")
		}
		slice := c.b.cut(cut)
		events, err := s.fetch(ctx, q, c, slice, limit-len(out))
		if err != nil {
			return nil, c, err
		}
		out = append(out, events...)
		if len(out) == limit {
			c.after = out[len(out)-1].GlobalPosition
			return out, c, nil
		}
		if !slice.equal(c.b) { // next slice of the same batch
			c.a, c.after = slice, 0
			continue
		}
		c.a, c.b, c.after = c.b, now, 0
		if len(out) > 0 || movedToHead {
			return out, c, nil
		}
		movedToHead = true
	}
}

// sliceBound returns where the slice of c's batch ends (an xmax to cut b
// at) and the server's current snapshot.
func (s *Store) sliceBound(ctx context.Context, q querier, c cursor) (uint64, snapshot, error) {
	sql, args := sliceBoundAll, []any{u64(c.a.xmax), u64(c.b.xmax), c.b.String(), s.sliceSize}
	if c.category != "" {
		sql, args = sliceBoundCategory, append(args, c.category)
	}
	var nowText string
	var first, kth *string
	if err := q.QueryRow(ctx, sql, args...).Scan(&nowText, &first, &kth); err != nil {
		return 0, snapshot{}, err
	}
	now, err := parseSnapshot(nowText)
	if err != nil {
		return 0, snapshot{}, err
	}
	if kth == nil {
		return c.b.xmax, now, nil
	}
	f, _ := strconv.ParseUint(*first, 10, 64)
	k, _ := strconv.ParseUint(*kth, 10, 64)
	if k == f { // one transaction larger than a slice stays whole
		k = f + 1
	}
	return k, now, nil
}

// fetch reads up to n rows of the slice (c.a, slice] after c.after.
func (s *Store) fetch(ctx context.Context, q querier, c cursor, slice snapshot, n int) ([]eventstore.RecordedEvent, error) {
	sql, args := fetchAll, []any{u64(c.a.xmax), u64(slice.xmax), c.a.xipText(), slice.String(), c.a.String(), c.after, n}
	if c.category != "" {
		sql, args = fetchCategory, append(args, c.category)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []eventstore.RecordedEvent
	var r eventRow
	_, err = pgx.ForEachRow(rows, r.dest(), func() error {
		e, err := r.event()
		out = append(out, e)
		return err
	})
	return out, err
}

func u64(x uint64) string { return strconv.FormatUint(x, 10) }
