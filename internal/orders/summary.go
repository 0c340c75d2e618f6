// Package orders is the example Order domain (contract §5) on both sides.
// The write side is the Order aggregate (order.go): its state derived from
// an order's stream, and the commands Create, AddItem and Ship validated
// against that state before their events are appended (package
// aggregate). The read side is the order_summary projection, written in
// Go; its sibling shipped_items is declarative SQL
// (projections/shipped_items.sql).
package orders

import (
	"context"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/strata-events/strata/projection"
)

// Event types of the Order category that order_summary reads; it ignores
// any other but projection.StreamDeletedType and
// projection.DataSubjectErasedType.
const (
	TypeOrderCreated   = "OrderCreated"
	TypeOrderItemAdded = "OrderItemAdded"
	TypeOrderShipped   = "OrderShipped"
)

// DefaultCurrency is the currency of an item added without one: events
// written with version 1 of OrderItemAdded, read where version 2 (which
// adds currency, default "USD") is not registered.
const DefaultCurrency = "USD"

// Statuses of an order.
const (
	StatusOpen    = "open"
	StatusShipped = "shipped"
)

// SummarySetup creates order_summary's tables; it is idempotent and names
// no schema (the runner's search_path is the read-model schema).
//
//   - order_summary: one row per order. status is open until the order
//     ships; item_count and total (exact numeric) sum its items;
//     shipping_address and shipped_at are NULL until it ships; customer_id
//     and created_at are NULL should an order's OrderCreated never have
//     been applied; version is the stream version of the last event
//     applied to the row.
//   - order_summary_items: one row per item of an order: the quantity
//     summed over its additions, and the unit price and currency of the
//     latest one.
//
// The indexes serve the read API's listings by status and by customer,
// paged in order_id order.
const SummarySetup = `
CREATE TABLE IF NOT EXISTS order_summary (
    order_id         text        PRIMARY KEY,
    customer_id      text,
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'shipped')),
    item_count       bigint      NOT NULL DEFAULT 0,
    total            numeric     NOT NULL DEFAULT 0,
    shipping_address text,
    created_at       timestamptz,
    shipped_at       timestamptz,
    version          bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS order_summary_by_status ON order_summary (status, order_id);
CREATE INDEX IF NOT EXISTS order_summary_by_customer ON order_summary (customer_id, order_id);
CREATE TABLE IF NOT EXISTS order_summary_items (
    order_id text    NOT NULL,
    item_id  text    NOT NULL,
    quantity bigint  NOT NULL,
    price    numeric NOT NULL,
    currency text    NOT NULL,
    PRIMARY KEY (order_id, item_id)
);
`

// SummaryProjection returns the order_summary projection: per order its
// customer, status, items summed by item, item count, exact total,
// shipping address, creation and shipping times and version (contract
// §5), in the tables SummarySetup describes. It halts on a poison event,
// so the summary never silently misses one.
//
// The order id is the stream id's part after "Order-", not the event's
// orderId field: the version guard and the version column are per stream,
// so keying rows by stream keeps one stream's events, and its versions, in
// one row even if a writer put a wrong orderId in the data. (The contract
// makes the two equal; a stream id without "-" falls back to orderId.)
//
// Apply folds a batch in memory, per order and per item, into deltas and
// writes them with at most two statements sent in one round trip, however
// many events the batch holds: an upsert of order_summary that adds the
// item count and total to what is stored and sets the fields the batch
// set, and one of order_summary_items that adds quantities. So an order
// created, filled and shipped in one batch, or across many, ends in the
// same rows. Totals are exact: prices are summed as decimals, never as
// floats. Events of other types are ignored, and do not advance version.
// A second OrderCreated or OrderShipped of an order overwrites what the
// first set, except that a missing (zero) timestamp keeps the stored one.
//
// A deletion of the order's stream (projection.StreamDeletedType, soft or
// hard) removes its row and its items: the batch deletes them before its
// upserts, and forgets what it had folded of the order before the
// deletion. A soft-deleted stream written again starts a new row from its
// new events, as if the order were new, its version that of its stream.
//
// An erasure of the order's customer (projection.DataSubjectErasedType,
// which comes to each of the customer's order streams) redacts the
// order's shipping address: the batch sets the stored one to
// projection.Erased before its upserts, and what it had folded of the
// address too. A rebuild reads the erased address as projection.Erased,
// and ends in the same row.
func SummaryProjection() *projection.Projection {
	return &projection.Projection{
		Name:       "order_summary",
		Categories: []string{"Order"},
		Setup:      SummarySetup,
		Apply:      applySummary,
		OnPoison:   projection.Halt,
		Source:     "internal/orders",
	}
}

// SummaryUpsertOrders writes one row per order of a batch. Created-only fields
// come NULL when the batch did not create the order, so the stored values
// stay; shipping fields are taken when the batch shipped it.
const SummaryUpsertOrders = `
INSERT INTO order_summary AS s
    (order_id, customer_id, created_at, status, shipping_address, shipped_at, item_count, total, version)
SELECT order_id, customer_id, created_at, CASE WHEN shipped THEN 'shipped' ELSE 'open' END,
       shipping_address, shipped_at, item_count, total, version
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bool[], $5::text[], $6::timestamptz[],
            $7::bigint[], $8::numeric[], $9::bigint[])
    AS d(order_id, customer_id, created_at, shipped, shipping_address, shipped_at, item_count, total, version)
ON CONFLICT (order_id) DO UPDATE SET
    customer_id      = COALESCE(excluded.customer_id, s.customer_id),
    created_at       = COALESCE(excluded.created_at, s.created_at),
    status           = CASE WHEN excluded.status = 'shipped' THEN 'shipped' ELSE s.status END,
    shipping_address = CASE WHEN excluded.status = 'shipped' THEN excluded.shipping_address ELSE s.shipping_address END,
    shipped_at       = CASE WHEN excluded.status = 'shipped' THEN COALESCE(excluded.shipped_at, s.shipped_at) ELSE s.shipped_at END,
    item_count       = s.item_count + excluded.item_count,
    total            = s.total + excluded.total,
    version          = GREATEST(s.version, excluded.version)`

// SummaryRedactOrders redacts the shipping address of the orders $1, for
// their customer's erasure; it runs before the upserts of the batch.
const SummaryRedactOrders = `
UPDATE order_summary SET shipping_address = '` + projection.Erased + `'
WHERE order_id = ANY($1::text[]) AND shipping_address IS DISTINCT FROM '` + projection.Erased + `' AND shipping_address IS NOT NULL`

// SummaryDeleteOrders removes the orders $1 and their items, for their
// streams' deletions; it runs before the upserts of the batch.
const SummaryDeleteOrders = `
WITH items AS (DELETE FROM order_summary_items WHERE order_id = ANY($1::text[]))
DELETE FROM order_summary WHERE order_id = ANY($1::text[])`

// SummaryUpsertItems adds each item's quantity and sets its latest price and
// currency.
const SummaryUpsertItems = `
INSERT INTO order_summary_items AS i (order_id, item_id, quantity, price, currency)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::numeric[], $5::text[])
ON CONFLICT (order_id, item_id) DO UPDATE SET
    quantity = i.quantity + excluded.quantity,
    price    = excluded.price,
    currency = excluded.currency`

func applySummary(ctx context.Context, tx pgx.Tx, events []projection.Event) error {
	var f summaryFold
	for i := range events {
		f.add(&events[i])
	}
	if len(f.orders) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	if deleted := f.marked(func(o *orderDelta) bool { return o.deleted }); len(deleted) > 0 {
		batch.Queue(SummaryDeleteOrders, deleted)
	}
	if redacted := f.marked(func(o *orderDelta) bool { return o.redacted }); len(redacted) > 0 {
		batch.Queue(SummaryRedactOrders, redacted)
	}
	if upserts := f.orderColumns(); upserts != nil {
		batch.Queue(SummaryUpsertOrders, upserts...)
	}
	if len(f.items) > 0 {
		batch.Queue(SummaryUpsertItems, f.itemColumns()...)
	}
	return tx.SendBatch(ctx, batch).Close()
}

// orderDelta is what a batch does to one order's row: delete it, if its
// stream was deleted, then upsert what the events after the last deletion
// made, if any.
type orderDelta struct {
	id         string
	deleted    bool       // the stored row and items go first
	redacted   bool       // the stored row's address is redacted first
	upsert     bool       // there are events since the deletion, or no deletion
	customerID *string    // set by OrderCreated
	createdAt  *time.Time // set by OrderCreated with a timestamp
	shipped    bool
	address    string
	shippedAt  *time.Time
	itemCount  int64
	total      exactSum
	version    int64
}

// itemDelta is what a batch does to one item of an order.
type itemDelta struct {
	orderID, itemID string
	quantity        int64
	price           projection.Decimal
	currency        string
}

// summaryFold folds a batch's events into deltas, per order and per item.
type summaryFold struct {
	orders   map[string]*orderDelta
	items    map[[2]string]*itemDelta
	orderIDs []string
}

func (f *summaryFold) add(e *projection.Event) {
	switch e.Type {
	case TypeOrderCreated, TypeOrderItemAdded, TypeOrderShipped:
	case projection.StreamDeletedType:
		f.deleteOrder(orderID(e))
		return
	case projection.DataSubjectErasedType:
		o := f.order(orderID(e))
		o.redacted = true
		if o.shipped {
			o.address = projection.Erased
		}
		return
	default:
		return
	}
	id := orderID(e)
	o := f.order(id)
	o.upsert = true
	o.version = max(o.version, e.Version)
	switch e.Type {
	case TypeOrderCreated:
		customer := e.Text("customerId")
		o.customerID = &customer
		if t := e.Time("timestamp"); !t.IsZero() {
			o.createdAt = &t
		}
	case TypeOrderItemAdded:
		quantity, price := e.Int("quantity"), e.Decimal("price")
		currency := e.Text("currency")
		if currency == "" {
			currency = DefaultCurrency
		}
		o.itemCount += quantity
		o.total.addProduct(quantity, price)
		key := [2]string{id, e.Text("itemId")}
		it := f.items[key]
		if it == nil {
			if f.items == nil {
				f.items = map[[2]string]*itemDelta{}
			}
			it = &itemDelta{orderID: key[0], itemID: key[1]}
			f.items[key] = it
		}
		it.quantity += quantity
		it.price, it.currency = price, currency
	case TypeOrderShipped:
		o.shipped = true
		o.address = e.Text("shippingAddress")
		if t := e.Time("timestamp"); !t.IsZero() {
			o.shippedAt = &t
		}
	}
}

func (f *summaryFold) order(id string) *orderDelta {
	if o := f.orders[id]; o != nil {
		return o
	}
	if f.orders == nil {
		f.orders = map[string]*orderDelta{}
	}
	o := &orderDelta{id: id}
	f.orders[id] = o
	f.orderIDs = append(f.orderIDs, id)
	return o
}

// deleteOrder forgets what the batch did to order id so far, and has its
// stored row and items deleted.
func (f *summaryFold) deleteOrder(id string) {
	*f.order(id) = orderDelta{id: id, deleted: true} // a redaction of the deleted row is moot
	for k := range f.items {
		if k[0] == id {
			delete(f.items, k)
		}
	}
}

// marked returns the orders for which is holds, in order id order, as the
// argument of SummaryDeleteOrders or SummaryRedactOrders.
func (f *summaryFold) marked(is func(*orderDelta) bool) []string {
	var ids []string
	for _, id := range f.orderIDs {
		if is(f.orders[id]) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// orderID is the stream id's part after the category, or the data's
// orderId for a stream id without one.
func orderID(e *projection.Event) string {
	if _, id, ok := strings.Cut(e.StreamID, "-"); ok && id != "" {
		return id
	}
	return e.Text("orderId")
}

// orderColumns returns SummaryUpsertOrders' arguments, rows in order id order so
// that concurrent writers lock rows in one order; nil when no order is
// upserted.
func (f *summaryFold) orderColumns() []any {
	var ids []string
	for _, id := range f.orderIDs {
		if f.orders[id].upsert {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	n := len(ids)
	var (
		customers  = make([]*string, n)
		createdAt  = make([]*time.Time, n)
		shipped    = make([]bool, n)
		addresses  = make([]*string, n)
		shippedAt  = make([]*time.Time, n)
		itemCounts = make([]int64, n)
		totals     = make([]pgtype.Numeric, n)
		versions   = make([]int64, n)
	)
	for i, id := range ids {
		o := f.orders[id]
		customers[i], createdAt[i], shipped[i], shippedAt[i] = o.customerID, o.createdAt, o.shipped, o.shippedAt
		if o.shipped {
			addresses[i] = &o.address
		}
		itemCounts[i], totals[i], versions[i] = o.itemCount, o.total.numeric(), o.version
	}
	return []any{ids, customers, createdAt, shipped, addresses, shippedAt, itemCounts, totals, versions}
}

// itemColumns returns SummaryUpsertItems' arguments, rows in key order.
func (f *summaryFold) itemColumns() []any {
	keys := make([][2]string, 0, len(f.items))
	for k := range f.items {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	n := len(keys)
	orderIDs, itemIDs, currencies := make([]string, n), make([]string, n), make([]string, n)
	quantities, prices := make([]int64, n), make([]pgtype.Numeric, n)
	for i, k := range keys {
		it := f.items[k]
		orderIDs[i], itemIDs[i], currencies[i] = it.orderID, it.itemID, it.currency
		quantities[i], prices[i] = it.quantity, numeric(it.price.Unscaled(), it.price.Scale())
	}
	return []any{orderIDs, itemIDs, quantities, prices, currencies}
}

// exactSum is an exact running sum of decimals, unscaled × 10^-scale,
// kept at the largest scale added. The zero value is 0.
type exactSum struct {
	unscaled big.Int
	scale    int
}

// addProduct adds quantity × price.
func (s *exactSum) addProduct(quantity int64, price projection.Decimal) {
	v := price.Unscaled()
	v.Mul(v, big.NewInt(quantity))
	switch scale := price.Scale(); {
	case scale > s.scale:
		s.unscaled.Mul(&s.unscaled, pow10(scale-s.scale))
		s.scale = scale
	case scale < s.scale:
		v.Mul(v, pow10(s.scale-scale))
	}
	s.unscaled.Add(&s.unscaled, v)
}

func (s *exactSum) numeric() pgtype.Numeric {
	return numeric(new(big.Int).Set(&s.unscaled), s.scale)
}

func numeric(unscaled *big.Int, scale int) pgtype.Numeric {
	return pgtype.Numeric{Int: unscaled, Exp: int32(-scale), Valid: true}
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}
