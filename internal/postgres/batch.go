package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/strata-events/strata/internal/eventstore"
)

// Reading $all and categories in snapshot-difference batches (PgQ's method).
//
// A row's tx_id becomes visible when its transaction commits, and a
// snapshot is the set of transactions finished when it was taken. The
// batch (a, b] is the rows whose transaction is visible in b and not in a,
// ordered by transaction id, then position, so that a transaction's events
// are read together. Consecutive batches (a, b], (b, c], ... hold every
// committed row exactly once — in the batch of the first snapshot that saw
// its commit — and no aborted row. A long transaction delays only its own
// rows.
//
// Each stream stays in version order, because every statement that stores
// an event reads the stream with a snapshot taken before its transaction
// had an id: a single statement in the default isolation, or a transaction
// of several statements run in repeatable read (multi-stream appends,
// erasures). A stream's next event is stored only by a transaction whose
// snapshot saw the previous one committed, so that transaction took its
// id after the commit: a later id, in the same batch or a later one. The
// cut of a batch into slices, at a transaction id, keeps that order too.
//
// The rows of (a, b] are those with tx_id in [xmax(a), xmax(b)), plus those
// of transactions running at a (xip(a)) that finished by b. A batch that
// would hold more than sliceSize rows is cut, at a transaction id, into
// slices (see snapshot.cut); the cut depends only on rows visible in b, so
// it is the same on every read of the cursor.

// readSliceSQL reads the slice of (a, b] that starts the cursor's batch,
// after a position, in one statement. Its first row carries no event but
// the slice's bound: the server's current snapshot; the slice's end
// (slice_end, migration 0003), the id of the first transaction beyond
// sliceSize rows, or xmax(b) when the batch is small; whether the store
// still holds the cursor's anchor with an id its snapshot b does not pass
// (see anchor); the store's epoch, which another process may have moved
// on (writer migrate --rebaseline) since this one loaded it; and the
// event of the highest transaction id, the next anchor. The cut is the
// same on every read of the cursor, because it counts only rows visible
// in b. Rows visible in the cut are those visible in b with tx_id below
// it. The events follow, from the rows statement (%[2]s), in its order
// (%[3]s). A category read ($13, or $12 by position) names the category
// in every part, so that each can use the (category, tx_id) index.
//
// $1 xmax(a), $2 xmax(b), $3 b, $4 sliceSize, $5 xip(a), $6 a, $7 after,
// $8 limit, $9 and $10 the anchor's position and event id, $11 xmax(b) - 1,
// $12 the last event's transaction id.
const readSliceSQL = `WITH cut AS MATERIALIZED (
	SELECT pg_current_snapshot()::text AS now,
		slice_end($1::xid8, $2::xid8, $3::pg_snapshot, $4 %[1]s) AS x,
		$9::bigint = 0 OR EXISTS (SELECT 1 FROM events WHERE position = $9 AND event_id = $10 AND tx_id >= $11::xid8)
			OR EXISTS (SELECT 1 FROM scavenged WHERE position = $9 AND event_id = $10 AND tx_id >= $11::xid8) AS anchored,
		(SELECT epoch FROM store_meta) AS epoch
), ` + topSQL + `
SELECT NULL::bigint, NULL::uuid, NULL::text, NULL::bigint, NULL::text, NULL::bigint, NULL::bytea,
	NULL::text, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::timestamptz, NULL::text, NULL::text, NULL::text,
	now, x, anchored, epoch, top.tx_id, top.position, top.event_id
FROM cut LEFT JOIN top ON true
UNION ALL (
SELECT ` + eventColumns + `, NULL, NULL, NULL, NULL, e.tx_id, NULL, NULL FROM (%[2]s) e
ORDER BY %[3]s LIMIT $8)`

// byTxRows reads a slice in (transaction id, position) order, so that a
// transaction's events are read together, from after the cursor's event
// (of transaction $12, at position $7). The rows of transactions from
// xmax(a) on and those of xip(a), which lie below xmax(a), are read apart:
// the first walk the tx_id index in order from the cursor's transaction,
// bounded by the cut (a value the planner takes from an InitPlan, so that
// it bounds the index scan), and stop at the limit, so that a page costs
// about a page of rows however large the batch behind it — a backlog of
// millions after a cursor reads as fast as the head; the second are few,
// and $5 holds only those from the cursor's transaction on, so that the
// index is probed for each and not scanned from $12. Rows of $12 up to
// the cursor's position are passed over by a filter ("position + 0" keeps
// it from looking like an index condition).
const byTxRows = `(SELECT ` + eventColumns + `, e.tx_id FROM events e
	WHERE %[1]s e.tx_id >= greatest($1::xid8, $12::xid8) AND e.tx_id < (SELECT x FROM cut)
	  AND pg_visible_in_snapshot(e.tx_id, $3::pg_snapshot)
	  AND (e.tx_id <> $12::xid8 OR e.position + 0 > $7)
	ORDER BY e.tx_id, e.position LIMIT $8)
	UNION ALL
	(SELECT ` + eventColumns + `, e.tx_id FROM events e
	WHERE %[1]s e.tx_id = ANY($5::xid8[])
	  AND pg_visible_in_snapshot(e.tx_id, $3::pg_snapshot)
	  AND NOT pg_visible_in_snapshot(e.tx_id, $6::pg_snapshot)
	  AND (e.tx_id <> $12::xid8 OR e.position + 0 > $7))`

// byPositionRows reads the rest of a slice by position, for a cursor of
// an earlier format in the middle of it: the order it began the slice in.
// The order is taken outside the subquery, and "position + 0" keeps the
// planner from walking the position index, which would start at the
// slice's lowest position and could cross most of the table.
const byPositionRows = `SELECT ` + eventColumns + `, e.tx_id FROM events e, cut
	WHERE (%[1]s e.tx_id >= $1::xid8 AND e.tx_id < cut.x OR %[1]s e.tx_id = ANY($5::xid8[]))
	  AND pg_visible_in_snapshot(e.tx_id, $3::pg_snapshot)
	  AND NOT pg_visible_in_snapshot(e.tx_id, $6::pg_snapshot)
	  AND e.position + 0 > $7 OFFSET 0`

// topSQL is the event of the highest transaction id, by the tx_id index:
// any event of that transaction serves as an anchor.
const topSQL = `top AS MATERIALIZED (SELECT tx_id, position, event_id FROM events ORDER BY tx_id DESC LIMIT 1)`

// readSliceSQLs holds the four statements: for $all or a category ($13,
// or $12 by position), in either order.
var readSliceSQLs = map[[2]bool]string{
	{false, false}: fmt.Sprintf(readSliceSQL, "", fmt.Sprintf(byTxRows, ""), "e.tx_id, e.position"),
	{false, true}:  fmt.Sprintf(readSliceSQL, "", fmt.Sprintf(byPositionRows, ""), "e.position"),
	{true, false}:  fmt.Sprintf(readSliceSQL, ", $13", fmt.Sprintf(byTxRows, "e.category = $13 AND"), "e.tx_id, e.position"),
	{true, true}:   fmt.Sprintf(readSliceSQL, ", $12", fmt.Sprintf(byPositionRows, "e.category = $12 AND"), "e.position"),
}

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
		return eventstore.Page{}, err
	}
	return eventstore.Page{Events: events, Next: c.encode()}, nil
}

// readCursor reads up to limit events from c and returns the cursor after
// them. It crosses slice boundaries freely, since slices are fixed; it
// takes a new snapshot only when the batch (a, b] is exhausted, and reads
// on into the new batch only if it has returned nothing yet, so that a
// page with events is the same on every read of its cursor.
func (s *Store) readCursor(ctx context.Context, q querier, c cursor, limit int) ([]eventstore.RecordedEvent, cursor, error) {
	out := make([]eventstore.RecordedEvent, 0, limit+1)
	movedToHead := false
	for {
		sl, err := s.readSlice(ctx, q, c, limit-len(out), out)
		if err != nil {
			return nil, c, err
		}
		out = sl.events
		if sl.more {
			return out, c.at(out[len(out)-1].GlobalPosition, sl.txs[len(sl.txs)-1]), nil
		}
		var moved bool
		if c, moved = c.past(sl.bound); moved && (len(out) > 0 || movedToHead) || len(out) == limit {
			return out, c, nil
		}
		movedToHead = movedToHead || moved
	}
}

// bound is what a slice read learns besides its events.
type bound struct {
	now snapshot // the server's current snapshot
	cut uint64   // where the slice ends: an xmax to cut b at
	// top is the event of the highest transaction id, topTx, that the
	// server holds (zero values when it holds none).
	top   anchor
	topTx uint64
	// anchored is whether the server holds the cursor's anchor.
	anchored bool
	epoch    int64 // the store's
}

// past returns the cursor after c's slice, read to its end: the next slice
// of its batch or, when the batch is done, the start of the batch up to
// the last event the server holds — its snapshot cut after that event's
// transaction, which the event anchors. It reports whether it moved to a
// new batch.
func (c cursor) past(bd bound) (cursor, bool) {
	c.after, c.afterTx, c.byPosition, c.epoch = 0, 0, false, bd.epoch
	if next := c.b.cut(bd.cut); !next.equal(c.b) {
		c.a = next
		return c, false
	}
	b := bd.now.cut(bd.topTx + 1)
	// Cutting the old b changes nothing but for a cursor of the first
	// format, whose b may pass the last event: the ids it drops are of
	// transactions with no event visible now.
	c.a, c.b = c.b.cut(b.xmax), b
	c.anchor, c.legacy = bd.top, false
	return c, true
}

// slice is what a read of a slice found.
type slice struct {
	bound
	events []eventstore.RecordedEvent // the events given to readSlice, then those read
	txs    []uint64                   // the transaction id of each event read
	more   bool                       // whether the slice holds events after them
}

// at returns c positioned after the event at position, of transaction tx,
// an event of its slice.
func (c cursor) at(position int64, tx uint64) cursor {
	c.after, c.afterTx = position, tx
	return c
}

// readSlice reads up to n events of the slice that starts c's batch, after
// c.after, appends them to events, and returns them with the slice's bound
// and whether the slice holds more after them: it asks for one event more
// than n, so that a reader that reads a slice to its end learns so without
// a read that returns nothing. It refuses a cursor whose snapshot the
// server has not reached, and one whose anchor it no longer holds.
func (s *Store) readSlice(ctx context.Context, q querier, c cursor, n int, events []eventstore.RecordedEvent) (slice, error) {
	xip := c.a.xipText()
	if !c.byPosition {
		xip = c.a.xipFrom(c.afterTx) // those before the cursor's transaction are read
	}
	args := []any{u64(c.a.xmax), u64(c.b.xmax), c.b.String(), s.sliceSize, xip, c.a.String(), c.after, n + 1,
		c.anchor.position, pgtype.UUID{Bytes: c.anchor.id, Valid: true}, u64(c.b.xmax - 1)}
	if !c.byPosition {
		args = append(args, u64(c.afterTx))
	}
	if c.category != "" {
		args = append(args, c.category)
	}
	sql := readSliceSQLs[[2]bool{c.category != "", c.byPosition}]
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return slice{}, translate(err)
	}
	given := len(events)
	txs := make([]uint64, 0, n+1)
	var r eventRow
	var nowText *string
	var cut pgtype.Uint64
	var anchored *bool
	var epoch *int64
	var top topRow
	var bd bound
	_, err = pgx.ForEachRow(rows, append(r.dest(), &nowText, &cut, &anchored, &epoch, &top.tx, &top.position, &top.id), func() error {
		if !r.position.Valid { // the first row: the bound
			if nowText == nil || !cut.Valid || anchored == nil || epoch == nil {
				return fmt.Errorf("the slice bound row is incomplete")
			}
			var err error
			if bd.now, err = parseSnapshot(*nowText); err != nil {
				return err
			}
			bd.cut, bd.anchored, bd.epoch = cut.Uint64, *anchored, *epoch
			bd.top, bd.topTx, err = top.anchor()
			return err
		}
		e, err := r.event()
		if err != nil {
			return err
		}
		if !top.tx.Valid {
			return fmt.Errorf("the event at position %d has no transaction id", e.GlobalPosition)
		}
		events, txs = append(events, e), append(txs, top.tx.Uint64)
		return nil
	})
	switch {
	case err != nil:
		return slice{}, translate(err)
	case bd.cut == 0:
		return slice{}, fmt.Errorf("the slice bound row is missing")
	case bd.epoch != c.epoch && !c.fresh():
		s.learnEpoch(bd.epoch)
		return slice{}, errEpoch(c.epoch, bd.epoch)
	case !bd.anchored:
		return slice{}, eventstore.Errorf(eventstore.CodeInvalidRequest,
			"invalid position token: the store no longer holds the last event it had seen (position %d): the database may have "+
				"failed over to a replica that had not received it, or been restored from a backup, or the token is from another store; "+
				"reading on could skip events written since, so read again from the beginning", c.anchor.position)
	case !c.b.containedIn(bd.now):
		return slice{}, eventstore.Errorf(eventstore.CodeInvalidRequest,
			"invalid position token: it is from a later point than this database has reached (from another store, or from before a restore)")
	}
	s.learnEpoch(bd.epoch)
	if len(txs) > n {
		return slice{bound: bd, events: events[:given+n], txs: txs[:n], more: true}, nil
	}
	return slice{bound: bd, events: events, txs: txs}, nil
}

// fresh reports whether c reads from the beginning, which it may do in any
// epoch.
func (c cursor) fresh() bool {
	return c.a.equal(origin) && c.b.equal(origin) && c.after == 0
}

// learnEpoch notes an epoch the store was found in, if later than the
// one loaded.
func (s *Store) learnEpoch(epoch int64) {
	for {
		old := s.epoch.Load()
		if epoch <= old || s.epoch.CompareAndSwap(old, epoch) {
			return
		}
	}
}

// topRow scans the top event's columns of a bound row.
type topRow struct {
	tx       pgtype.Uint64
	position pgtype.Int8
	id       pgtype.UUID
}

// anchor returns the top event as an anchor, with its transaction id.
func (t topRow) anchor() (anchor, uint64, error) {
	if !t.tx.Valid {
		return anchor{}, 0, nil
	}
	if !t.position.Valid || t.position.Int64 <= 0 || !t.id.Valid {
		return anchor{}, 0, fmt.Errorf("the store's last event is malformed (tx %d)", t.tx.Uint64)
	}
	return anchor{position: t.position.Int64, id: t.id.Bytes}, t.tx.Uint64, nil
}

func u64(x uint64) string { return strconv.FormatUint(x, 10) }
