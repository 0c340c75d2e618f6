package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/runner"
	"github.com/strata-events/strata/projection"
)

// projectorEvents is how many Order events are stored and published before
// the projector's rounds; each throughput round applies them all to an
// empty read model.
const projectorEvents = 100_000

// eventsPerOrder: each order of the fill is created, gets three items and
// ships (see orderEvents).
const eventsPerOrder = 5

// rawBatch is the baseline's events per transaction: the most records one
// poll hands the runner.
const rawBatch = kafka.DefaultMaxPollRecords

// The fill's orders: three items at these quantities and unit prices (in
// cents), so an order counts 6 items and totals 99.94.
var (
	orderItems = [3]struct{ quantity, cents int64 }{{1, 999}, {2, 1499}, {3, 1999}}
	createdAt  = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	shippedAt  = time.Date(2026, 1, 3, 9, 0, 0, 0, time.UTC)
)

const (
	orderItemCount  = 6
	orderTotalCents = 9994
	shippingAddress = "1 Main Street"
)

// projectorBench is what the projector group's parts share: a store of
// Order events whose embedded registry holds the example schemas, and one
// relay that publishes it to an embedded broker for the whole group, as
// `writer serve` would.
type projectorBench struct {
	url      string
	cfg      benchConfig
	log      io.Writer
	store    *postgres.Store
	catalog  *registry.Catalog
	kafka    kafka.Config
	relay    *relay.Relay
	relayReg *prometheus.Registry
	appended atomic.Int64 // events appended to the store, all of category Order
	keyFile  string       // the master key file
}

// benchProjector measures the projector: how fast one worker applies a
// backlog to order_summary beside raw upserts of the same rows, how long an
// event takes from its append to its read model beside the time it takes to
// reach Kafka, and the peak memory of a `projector run` process.
func benchProjector(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	b, rl, stop, err := startProjectorBench(ctx, url, "bench_projector", "prj", cfg, log)
	if err != nil {
		return err
	}
	defer stop()
	if err := b.fill(ctx, rl); err != nil {
		return err
	}
	if err := b.throughput(ctx, t); err != nil {
		return err
	}
	if err := b.latency(ctx, t, rl); err != nil {
		return err
	}
	return b.workerRSS(ctx, t, rl)
}

// fill stores projectorEvents events, an order per append from 16
// goroutines, and waits for the relay to publish them.
func (b *projectorBench) fill(ctx context.Context, rl *running) error {
	return b.fillOrders(ctx, rl, projectorEvents, 1)
}

// fillOrders stores n events, perAppend orders an append (a multi-stream
// append for more than one) from 16 goroutines, and waits for the relay
// to publish them.
func (b *projectorBench) fillOrders(ctx context.Context, rl *running, n, perAppend int) error {
	fmt.Fprintf(b.log, "  storing and publishing %s Order events ...\n", thousands(float64(n)))
	const workers = 16
	first := int(b.appended.Load()) / eventsPerOrder // orders stored before
	appends := n / eventsPerOrder / perAppend
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for i := int(next.Add(1)) - 1; i < appends; i = int(next.Add(1)) - 1 {
				batch := make([]eventstore.StreamAppend, perAppend)
				for k := range batch {
					o := first + i*perAppend + k
					id := fillOrderID(o)
					events, err := orderEvents(gctx, b.catalog, id, fmt.Sprintf("c-%d", o%2000))
					if err != nil {
						return err
					}
					batch[k] = eventstore.StreamAppend{Stream: orderStream(id), Expected: eventstore.NoStream, Events: events}
				}
				var err error
				if perAppend == 1 {
					_, err = b.store.Append(gctx, batch[0].Stream, batch[0].Expected, batch[0].Events)
				} else {
					_, err = b.store.AppendMulti(gctx, batch, nil)
				}
				if err != nil {
					return err
				}
				b.appended.Add(int64(perAppend * eventsPerOrder))
				b.relay.Notify()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return b.waitPublished(ctx, rl)
}

// waitPublished waits until the relay has published every appended event.
func (b *projectorBench) waitPublished(ctx context.Context, rl *running) error {
	return waitUntil(ctx, 2*time.Minute, "the relay to publish every event", func() (bool, error) {
		if rl.exited() {
			return false, fmt.Errorf("the relay stopped: %v", rl.stop())
		}
		n, err := counterValue(b.relayReg, "strata_relay_events_total")
		return n >= float64(b.appended.Load()), err
	})
}

func fillOrderID(i int) string { return fmt.Sprintf("f%06d", i) }

func orderStream(id string) eventstore.StreamID { return eventstore.MustParseStreamID("Order-" + id) }

// orderEvents returns an order's events, encoded as the writer would:
// OrderCreated, the three orderItems, OrderShipped.
func orderEvents(ctx context.Context, c *registry.Catalog, orderID, customerID string) ([]eventstore.EventData, error) {
	type doc struct{ typ, data string }
	docs := []doc{{orders.TypeOrderCreated, fmt.Sprintf(`{"orderId":%q,"customerId":%q,"timestamp":%q}`,
		orderID, customerID, createdAt.Format(time.RFC3339))}}
	for k, it := range orderItems {
		docs = append(docs, doc{orders.TypeOrderItemAdded, fmt.Sprintf(
			`{"orderId":%q,"itemId":"item-%d","quantity":%d,"price":"%d.%02d","timestamp":%q,"currency":"EUR"}`,
			orderID, k, it.quantity, it.cents/100, it.cents%100, createdAt.Format(time.RFC3339))})
	}
	docs = append(docs, doc{orders.TypeOrderShipped, fmt.Sprintf(`{"orderId":%q,"shippingAddress":%q,"timestamp":%q}`,
		orderID, shippingAddress, shippedAt.Format(time.RFC3339))})
	events := make([]eventstore.EventData, len(docs))
	for i, d := range docs {
		meta := benchEvent.Metadata
		meta.DataSubject = customerID // the order's personal data (the shipping address) is its customer's
		fp, data, err := c.Encode(ctx, d.typ, []byte(d.data), &meta)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", d.typ, err)
		}
		events[i] = eventstore.EventData{Type: d.typ, Schema: fp, Data: data, Metadata: meta}
	}
	return events, nil
}

// throughput compares one runner applying the whole fill to an empty
// order_summary, from its start in a fresh consumer group to its last
// commit (setup, joining the group, fetching, decoding, the version guard
// and the offsets included), with raw upserts of the rows those events
// make, already folded, in transactions of rawBatch events.
func (b *projectorBench) throughput(ctx context.Context, t *table) error {
	name := fmt.Sprintf("projector apply %s Order events to order_summary, one worker (events/s)", thousands(projectorEvents))
	fmt.Fprintf(b.log, "  %s ...\n", name)
	batches := fillRows()
	var ours, base, perTx []float64
	for r := 0; r < b.cfg.rounds; r++ {
		st, err := b.runnerRound(ctx)
		if err != nil {
			return fmt.Errorf("runner: %w", err)
		}
		raw, err := b.rawRound(ctx, batches)
		if err != nil {
			return fmt.Errorf("raw upserts: %w", err)
		}
		// The share of time in transactions says where a shortfall is:
		// in the database, or in reading, decoding and the version guard.
		fmt.Fprintf(b.log, "    round %d: runner %s after a start of %s (%.0f events a transaction, %.0f%% of the time in them), raw %s\n",
			r+1, perSecond(st.rate), st.startup.Round(time.Millisecond), st.perTx, 100*st.inTx, perSecond(raw))
		ours, base, perTx = append(ours, st.rate), append(base, raw), append(perTx, st.perTx)
	}
	p := &pair{ours: ours, base: base}
	ratio := p.ratio()
	t.add(row{
		name:    name,
		ours:    fmt.Sprintf("%s (%.0f events a transaction)", perSecond(median(ours)), median(perTx)),
		base:    fmt.Sprintf("%s (raw upserts, %s events a transaction)", perSecond(median(base)), thousands(rawBatch)),
		ratio:   fmt.Sprintf("%.2f", ratio),
		target:  ">= 0.60 and >= 20,000/s",
		verdict: verdict(ratio >= 0.6 && median(ours) >= 20_000),
	})
	return nil
}

// runnerStats are the figures of one runner round.
type runnerStats struct {
	rate    float64       // events per second, from the runner's first commit to its last
	startup time.Duration // from the runner's start to its first commit
	perTx   float64       // events per committed transaction
	inTx    float64       // share of the time spent in the runner's transactions
}

// runnerRound runs one runner of order_summary in a fresh read-model
// schema and consumer group until it has applied the fill.
func (b *projectorBench) runnerRound(ctx context.Context) (runnerStats, error) {
	return b.applyRound(ctx, projectorEvents, nil)
}

// applyRound runs one runner of order_summary in a fresh read-model schema
// and consumer group until it has applied n events, which must be all
// there are, checks the read model, and then calls then, if set, with the
// runner (stopped) and the schema before dropping it.
func (b *projectorBench) applyRound(ctx context.Context, n int64, then func(rn *runner.Runner, schema string) error) (runnerStats, error) {
	var st runnerStats
	schema := harness.UniqueName("bench_prj_rm_")
	db, err := readModelPool(ctx, b.url, schema, nil)
	if err != nil {
		return st, err
	}
	defer db.Close()
	defer dropSchema(ctx, b.store, schema)
	consumers, err := kafka.NewConsumers(b.kafka, kafka.ConsumerOptions{})
	if err != nil {
		return st, err
	}
	defer consumers.Close()
	metrics := prometheusRegistry()
	rn := runner.New(orders.SummaryProjection(), db, consumers, b.catalog, runner.Options{
		Schema: schema, GroupPrefix: harness.UniqueName("bench.") + ".", Topic: b.kafka.Topic, Metrics: metrics, Logger: b.warnings(),
	})
	start := time.Now()
	run := background(ctx, rn.Run)
	defer run.stop()
	// The rate is the steady one, from the first batch committed to the
	// last: joining the group and setting up the tables come once.
	if err := waitApplied(ctx, run, metrics, 1); err != nil {
		return st, err
	}
	first := time.Now()
	firstApplied, err := counterValue(metrics, "strata_projection_events_total")
	if err != nil {
		return st, err
	}
	if err := waitApplied(ctx, run, metrics, n); err != nil {
		return st, err
	}
	elapsed := time.Since(first)
	st.startup = first.Sub(start)
	if err := run.stop(); err != nil {
		return st, err
	}
	batches, err := counterValue(metrics, "strata_projection_batches_total")
	if err != nil {
		return st, err
	}
	inTx, err := histogramSum(metrics, "strata_projection_commit_seconds")
	if err != nil {
		return st, err
	}
	st.rate, st.perTx, st.inTx = (float64(n)-firstApplied)/elapsed.Seconds(), float64(n)/batches, inTx/(elapsed+st.startup).Seconds()
	if err := checkSummary(ctx, b.store, schema, int(n/eventsPerOrder)); err != nil || then == nil {
		return st, err
	}
	return st, then(rn, schema)
}

// warnings logs the runner's warnings to the benchmark's log.
func (b *projectorBench) warnings() *slog.Logger {
	return slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// waitApplied waits until the runner's metrics count n events handled.
func waitApplied(ctx context.Context, run *running, metrics *prometheus.Registry, n int64) error {
	return waitUntil(ctx, 3*time.Minute, fmt.Sprintf("the runner to apply %s events", thousands(float64(n))), func() (bool, error) {
		if run.exited() {
			return false, fmt.Errorf("the runner stopped: %v", run.stop())
		}
		applied, err := counterValue(metrics, "strata_projection_events_total")
		return applied >= float64(n), err
	})
}

// summaryRows are what one transaction of the baseline writes: the
// arguments of orders.SummaryUpsertOrders and orders.SummaryUpsertItems.
type summaryRows struct {
	orders, items []any
}

// fillRows folds the fill's events, rawBatch at a time, into the rows
// order_summary and order_summary_items get: per order its customer,
// times, shipping, item count, total and version, and per item its
// quantity, price and currency. Every order is whole in one batch, as it
// mostly is in the runner's: its five events are adjacent in its partition.
func fillRows() []summaryRows {
	const perBatch = rawBatch / eventsPerOrder
	var out []summaryRows
	for lo := 0; lo < projectorEvents/eventsPerOrder; lo += perBatch {
		n := min(perBatch, projectorEvents/eventsPerOrder-lo)
		ids, customers, addresses := make([]string, n), make([]string, n), make([]string, n)
		created, shipped := make([]time.Time, n), make([]time.Time, n)
		isShipped := make([]bool, n)
		counts, versions := make([]int64, n), make([]int64, n)
		totals := make([]pgtype.Numeric, n)
		var itemOrders, itemIDs, currencies []string
		var quantities []int64
		var prices []pgtype.Numeric
		for i := range n {
			id := fillOrderID(lo + i)
			ids[i], customers[i], addresses[i] = id, fmt.Sprintf("c-%d", (lo+i)%2000), shippingAddress
			created[i], shipped[i], isShipped[i] = createdAt, shippedAt, true
			counts[i], versions[i] = orderItemCount, eventsPerOrder
			totals[i] = cents(orderTotalCents)
			for k, it := range orderItems {
				itemOrders, itemIDs, currencies = append(itemOrders, id), append(itemIDs, fmt.Sprintf("item-%d", k)), append(currencies, "EUR")
				quantities, prices = append(quantities, it.quantity), append(prices, cents(it.cents))
			}
		}
		out = append(out, summaryRows{
			orders: []any{ids, customers, created, isShipped, addresses, shipped, counts, totals, versions},
			items:  []any{itemOrders, itemIDs, quantities, prices, currencies},
		})
	}
	return out
}

func cents(n int64) pgtype.Numeric { return pgtype.Numeric{Int: big.NewInt(n), Exp: -2, Valid: true} }

// rawRound writes batches into order_summary's tables in a fresh schema,
// a transaction each with both upserts sent in one round trip, and
// returns events per second.
func (b *projectorBench) rawRound(ctx context.Context, batches []summaryRows) (float64, error) {
	schema := harness.UniqueName("bench_prj_raw_")
	db, err := readModelPool(ctx, b.url, schema, nil)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	defer dropSchema(ctx, b.store, schema)
	if _, err := db.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+";"+orders.SummarySetup); err != nil {
		return 0, err
	}
	start := time.Now()
	for _, rows := range batches {
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			batch := &pgx.Batch{}
			batch.Queue(orders.SummaryUpsertOrders, rows.orders...)
			batch.Queue(orders.SummaryUpsertItems, rows.items...)
			return tx.SendBatch(ctx, batch).Close()
		})
		if err != nil {
			return 0, err
		}
	}
	rate := projectorEvents / time.Since(start).Seconds()
	return rate, checkSummary(ctx, b.store, schema, projectorEvents/eventsPerOrder)
}

// checkSummary checks that schema's order_summary holds the fill's n
// orders, all shipped, with their items and exact totals.
func checkSummary(ctx context.Context, s *postgres.Store, schema string, n int) error {
	var count, shipped, items, itemRows, totalCents int64
	err := s.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'shipped'), coalesce(sum(item_count), 0),
		(SELECT count(*) FROM `+pgx.Identifier{schema, "order_summary_items"}.Sanitize()+`), coalesce(sum(total) * 100, 0)::bigint
		FROM `+pgx.Identifier{schema, "order_summary"}.Sanitize()).Scan(&count, &shipped, &items, &itemRows, &totalCents)
	if err != nil {
		return err
	}
	want := int64(n)
	if count != want || shipped != want || items != want*orderItemCount || itemRows != want*int64(len(orderItems)) || totalCents != want*orderTotalCents {
		return fmt.Errorf("%s.order_summary: %d orders, %d shipped, %d items in %d rows, total %d cents; want %d, %d, %d in %d, %d",
			schema, count, shipped, items, itemRows, totalCents, want, want, want*orderItemCount, want*int64(len(orderItems)), want*orderTotalCents)
	}
	return nil
}

// commitClock tells when the runner's transactions commit. The runner's
// Apply is wrapped to hand it the events a connection's open transaction
// applies, and the read-model pool's tracer sees that connection's COMMIT
// return: by then every reader of the read model sees the events (they
// became visible one reply earlier, so the figure errs on the slow side).
// Polling the read model instead would add its interval to every figure
// and load the two cores it measures on; the runner's own
// strata_projection_delay_seconds starts at the store's commit, not before
// the append call, and has power-of-two buckets.
type commitClock struct {
	mu        sync.Mutex
	open      map[*pgx.Conn][]string // stream@version of each event applied
	committed func(keys []string, at time.Time)
}

var _ pgx.QueryTracer = (*commitClock)(nil)

// wrap returns p with its Apply reporting to c.
func (c *commitClock) wrap(p *projection.Projection) *projection.Projection {
	apply := p.Apply
	p.Apply = func(ctx context.Context, tx pgx.Tx, events []projection.Event) error {
		keys := make([]string, len(events))
		for i, e := range events {
			keys[i] = fmt.Sprintf("%s@%d", e.StreamID, e.Version)
		}
		c.mu.Lock()
		c.open[tx.Conn()] = keys
		c.mu.Unlock()
		return apply(ctx, tx, events)
	}
	return p
}

func (c *commitClock) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd ends a connection's transaction at its COMMIT or
// ROLLBACK, or at a failed statement (the transaction rolls back).
func (c *commitClock) TraceQueryEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	at := time.Now()
	tag := data.CommandTag.String()
	if data.Err == nil && tag != "COMMIT" && tag != "ROLLBACK" {
		return
	}
	c.mu.Lock()
	keys, ok := c.open[conn]
	delete(c.open, conn)
	c.mu.Unlock()
	if ok && data.Err == nil && tag == "COMMIT" {
		c.committed(keys, at)
	}
}

// latency appends at a steady 1,000 events/s while the relay and one
// runner run, and measures for each event the time from before its append
// call to the commit of the read-model transaction that applied it (see
// commitClock), beside the time to its arrival at a read_committed
// consumer of the topic: both for the same events, so the difference is
// what the projector adds to the relay.
func (b *projectorBench) latency(ctx context.Context, t *table, rl *running) error {
	const rate, workers = 1000, 10
	duration := 5 * b.cfg.duration
	name := fmt.Sprintf("append → applied to order_summary at %s events/s (latency)", thousands(rate))

	var mu sync.Mutex
	appended := map[string]time.Time{} // stream@version → before its append
	var applied, inKafka []time.Duration
	clock := &commitClock{open: map[*pgx.Conn][]string{}, committed: func(keys []string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range keys {
			if t0, ok := appended[k]; ok {
				applied = append(applied, at.Sub(t0))
			}
		}
	}}
	schema := harness.UniqueName("bench_prj_lat_")
	db, err := readModelPool(ctx, b.url, schema, clock)
	if err != nil {
		return err
	}
	defer db.Close()
	defer dropSchema(ctx, b.store, schema)
	consumers, err := kafka.NewConsumers(b.kafka, kafka.ConsumerOptions{})
	if err != nil {
		return err
	}
	defer consumers.Close()
	metrics := prometheusRegistry()
	rn := runner.New(clock.wrap(orders.SummaryProjection()), db, consumers, b.catalog, runner.Options{
		Schema: schema, GroupPrefix: harness.UniqueName("bench.") + ".", Topic: b.kafka.Topic, Metrics: metrics, Logger: b.warnings(),
	})
	run := background(ctx, rn.Run)
	defer run.stop()
	fmt.Fprintf(b.log, "  %s: the runner catches up ...\n", name)
	if err := waitApplied(ctx, run, metrics, b.appended.Load()); err != nil {
		return err
	}

	stopConsumer, err := watchKafka(ctx, b.kafka.Brokers, b.kafka.Topic("Order"), func(key string, now time.Time) {
		mu.Lock()
		if t0, ok := appended[key]; ok {
			inKafka = append(inKafka, now.Sub(t0))
		}
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer stopConsumer()

	fmt.Fprintf(b.log, "  %s, for %s ...\n", name, duration)
	n, err := b.pacedOrders(ctx, "lat", rate, workers, duration, func(key string) {
		mu.Lock()
		appended[key] = time.Now()
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	if err := b.waitPublished(ctx, rl); err != nil {
		return err
	}
	if err := waitApplied(ctx, run, metrics, b.appended.Load()); err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond) // the consumer's last fetch
	stopConsumer()
	mu.Lock()
	defer mu.Unlock()
	if len(applied) < n || len(inKafka) < n*9/10 {
		return fmt.Errorf("of %d appended events, %d were applied and %d seen in Kafka", n, len(applied), len(inKafka))
	}
	t.add(latencyRow(name, applied, thousands(float64(len(applied)))+" events",
		inKafka, "append → visible in Kafka, the same events", 50*time.Millisecond))
	return nil
}

// pacedOrders appends single events at rate events per second for d, from
// workers goroutines, each going through orders of its own (tag-w{n}-{i}):
// created, three items, shipped. It calls before with each event's
// stream@version just before its append, wakes the relay after it, as the
// writer does, and returns how many events it appended.
func (b *projectorBench) pacedOrders(ctx context.Context, tag string, rate, workers int, d time.Duration, before func(key string)) (int, error) {
	var count atomic.Int64
	// Each worker's order in progress: its stream, events and the next to append.
	type order struct {
		n      int
		stream eventstore.StreamID
		events []eventstore.EventData
		v      int
	}
	orders := make([]order, workers)
	err := paced(ctx, rate, workers, d, func(ctx context.Context, w int) error {
		o := &orders[w]
		if o.v == len(o.events) {
			id := fmt.Sprintf("%s-w%d-%d", tag, w, o.n)
			events, err := orderEvents(ctx, b.catalog, id, "c-"+tag)
			if err != nil {
				return err
			}
			*o = order{n: o.n + 1, stream: orderStream(id), events: events}
		}
		if before != nil {
			before(fmt.Sprintf("%s@%d", o.stream, o.v+1))
		}
		if _, err := b.store.Append(ctx, o.stream, eventstore.ExpectedVersion(o.v), o.events[o.v:o.v+1]); err != nil {
			return fmt.Errorf("append: %w", err)
		}
		o.v++
		b.appended.Add(1)
		count.Add(1)
		b.relay.Notify()
		return nil
	})
	return int(count.Load()), err
}

// workerRSS runs `projector run --projections order_summary` against the
// same database and broker with a fresh read model and group, lets it apply
// everything stored so far and then a steady 1,000 events/s for one round,
// and reads its peak resident memory.
// projectorCmd is `projector run --projections order_summary` of bin on
// the bench's store and broker, with its read model in schema and its
// consumer groups named from groupPrefix.
func (b *projectorBench) projectorCmd(bin, projections, schema, groupPrefix string) *exec.Cmd {
	cmd := exec.Command(bin, "run", "--projections", "order_summary")
	cmd.Env = append(os.Environ(),
		"STRATA_DATABASE_URL="+b.url, "STRATA_DATABASE_SCHEMA="+b.store.Schema(), "STRATA_MASTER_KEY_FILE="+b.keyFile,
		"STRATA_READMODEL_DATABASE_URL="+b.url, "STRATA_READMODEL_SCHEMA="+schema,
		"STRATA_KAFKA_BROKERS="+b.kafka.Brokers[0], "STRATA_TOPIC_PREFIX="+b.kafka.TopicPrefix,
		"STRATA_GROUP_PREFIX="+groupPrefix, "STRATA_HTTP_ADDR=127.0.0.1:0",
		"STRATA_PROJECTIONS_DIR="+projections, "STRATA_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = io.Discard, b.log
	return cmd
}

func (b *projectorBench) workerRSS(ctx context.Context, t *table, rl *running) error {
	const name = "projector worker peak RSS, order_summary"
	fmt.Fprintf(b.log, "  %s ...\n", name)
	bin, projections, cleanup, err := buildProjector(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	if out, err := exec.CommandContext(ctx, bin, "run", "--help").CombinedOutput(); err != nil {
		fmt.Fprintf(b.log, "  `projector run --help` failed (%v); not measured:\n%s", err, out)
		t.add(row{name: name, ours: "not measured: this build has no `projector run`", target: "<= 150 MB", verdict: "NOT RUN"})
		return nil
	}
	schema := harness.UniqueName("bench_prj_rss_")
	defer dropSchema(ctx, b.store, schema)
	cmd := b.projectorCmd(bin, projections, schema, harness.UniqueName("bench.")+".")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	caughtUp := func(n int64) error {
		return waitUntil(ctx, 3*time.Minute, fmt.Sprintf("the projector process to apply %s events", thousands(float64(n))), func() (bool, error) {
			select {
			case err := <-exited:
				exited <- err
				return false, fmt.Errorf("the projector process exited: %v", err)
			default:
			}
			applied, err := appliedIn(ctx, b.store, schema, "order_summary")
			return applied >= n, err
		})
	}
	backlog := b.appended.Load()
	if err := caughtUp(backlog); err != nil {
		return err
	}
	catchUp := time.Since(start)
	if _, err := b.pacedOrders(ctx, "rss", 1000, 10, b.cfg.duration, nil); err != nil {
		return err
	}
	if err := b.waitPublished(ctx, rl); err != nil {
		return err
	}
	if err := caughtUp(b.appended.Load()); err != nil {
		return err
	}
	rss, err := processPeakRSS(cmd.Process.Pid)
	if err != nil {
		return err
	}
	t.add(row{
		name: name,
		ours: fmt.Sprintf("%.0f MB (caught up %s events in %.1f s from its start, then %s at 1,000 events/s)",
			float64(rss)/(1<<20), thousands(float64(backlog)), catchUp.Seconds(), b.cfg.duration),
		target:  "<= 150 MB",
		verdict: verdict(rss <= 150<<20),
	})
	return nil
}

// appliedIn returns how many events a projection has applied in a
// read-model schema, by its stored offsets; 0 before its tables exist.
func appliedIn(ctx context.Context, s *postgres.Store, schema, projection string) (int64, error) {
	var n int64
	err := s.Pool().QueryRow(ctx, "SELECT coalesce(sum(applied), 0) FROM "+pgx.Identifier{schema, "projection_offsets"}.Sanitize()+
		" WHERE projection = $1", projection).Scan(&n)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return 0, nil
	}
	return n, err
}

// readModelPool opens a pool whose search_path is schema, as the
// projector's is, traced by tracer when it is not nil.
func readModelPool(ctx context.Context, url, schema string, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	if tracer != nil {
		cfg.ConnConfig.Tracer = tracer
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

func dropSchema(ctx context.Context, s *postgres.Store, schema string) {
	s.Pool().Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
}

// running is a part of the system run in the background until stopped.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func background(ctx context.Context, run func(context.Context) error) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	return r
}

// exited reports whether the part returned by itself (or was stopped).
func (r *running) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// stop stops the part and returns what it returned; it may be called
// more than once.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// waitUntil polls cond every 5 ms until it holds or fails, or timeout
// passes.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
