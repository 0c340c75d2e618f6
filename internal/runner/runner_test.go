package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/runner"
	"github.com/strata-events/strata/projection"
)

func TestARunnerAppliesEveryEventExactlyOnce(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	r := e.runner(ledger("ledger", nil), runner.Options{})
	e.run(r.Run)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				e.order(fmt.Sprintf("w%d-%d", w, i), i%4, i%2 == 0)
			}
		}()
	}
	wg.Wait()
	e.waitForLedger(e.schema, 30*time.Second)
}

func TestARunnerResumesFromTheOffsetsInTheReadModel(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	for i := range 20 {
		e.order(fmt.Sprint("a", i), 2, true)
	}
	stop := e.run(e.runner(ledger("ledger", nil), runner.Options{}).Run)
	e.waitForLedger(e.schema, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	for i := range 20 {
		e.order(fmt.Sprint("b", i), 1, false)
	}
	// A new worker in the same group: Kafka holds no committed offsets
	// for it (the runner never commits to Kafka), so only the offsets in
	// the read model keep it from applying the first orders again — which
	// the ledger's primary key would refuse, halting the projection.
	e.run(e.runner(ledger("ledger", nil), runner.Options{}).Run)
	e.waitForLedger(e.schema, 30*time.Second)
	e.assertState("ledger", runner.StateRunning)
}

func TestTheVersionGuardDropsRecordsPublishedTwice(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	for i := range 10 {
		e.order(fmt.Sprint("d", i), 3, true)
	}
	stop := e.run(e.runner(ledger("ledger", nil), runner.Options{}).Run)
	e.waitForLedger(e.schema, 30*time.Second)
	// A new worker, whose cache of stream versions is empty: the
	// versions stored in the read model must catch the copies.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	e.run(e.runner(ledger("ledger", nil), runner.Options{Metrics: metrics}).Run)

	// Publish every record again, by hand, with a plain producer.
	records := e.readTopic("Order")
	opts, _ := e.kafka.ClientOptions()
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range records {
		r.Offset = 0
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.order("after", 1, false)
	e.waitFor("the copies to be dropped", 30*time.Second, func() bool {
		return metricValue(t, metrics, "strata_projection_events_total", "duplicate", "ledger") >= float64(len(records))
	})
	e.waitForLedger(e.schema, 30*time.Second)
	if dup := metricValue(t, metrics, "strata_projection_events_total", "duplicate", "ledger"); int(dup) != len(records) {
		t.Errorf("duplicates dropped = %v, want %d (every record published twice)", dup, len(records))
	}
	e.assertState("ledger", runner.StateRunning)
}

func TestAGapInAStreamHaltsTheProjectionUntilResumed(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	e.order("g", 2, true) // versions 1 to 4
	stop := e.run(e.runner(ledger("ledger", nil), runner.Options{}).Run)
	e.waitForLedger(e.schema, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// As if versions 3 and 4 had never been applied: the next event
	// follows a gap, which a new worker (no cached versions) must find
	// in the stored ones. The policy parks poison events, but a gap is
	// not one: parking it would hide the versions missing.
	if _, err := e.db.Exec(ctx, "UPDATE projection_streams SET version = 2 WHERE stream_id = 'Order-g'"); err != nil {
		t.Fatal(err)
	}
	p := ledger("ledger", nil)
	p.OnPoison = projection.Park
	metrics := prometheus.NewRegistry()
	e.run(e.runner(p, runner.Options{Metrics: metrics, HaltPoll: 50 * time.Millisecond}).Run)
	e.order("before", 1, false)
	e.waitForLedger(e.schema, 30*time.Second) // the worker has its partitions
	shipped := e.event("OrderShipped", `{"orderId":"g","shippingAddress":"2 Quay","timestamp":"2026-01-04T00:00:00Z"}`)
	if _, err := e.store.Append(ctx, eventstore.MustParseStreamID("Order-g"), eventstore.Any, []eventstore.EventData{shipped}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the projection to halt", 30*time.Second, func() bool { return e.state("ledger").State == runner.StateHalted })
	h := e.state("ledger").Halted
	if h == nil || h.StreamID != "Order-g" || h.Version != 5 || h.GapAfter == nil || *h.GapAfter != 2 ||
		!strings.Contains(h.Error, "follows version 2") || !strings.Contains(h.Error, "versions 3 to 4 are missing") {
		t.Fatalf("halted = %+v, want version 5 of Order-g after stored version 2, with versions 3 to 4 named missing", h)
	}
	if gaps := metricValue(t, metrics, "strata_projection_gaps_total", "ledger"); gaps != 1 {
		t.Errorf("gaps = %v, want 1", gaps)
	}
	if got := storedVersion(t, e, "Order-g"); got != 2 {
		t.Errorf("stored version while halted = %d, want 2 (nothing applied past the gap)", got)
	}

	m := runner.NewMonitor(e.db, []*runner.Runner{e.runner(p, runner.Options{})}, nil)
	if h, err := m.Resume(ctx, "ledger"); err != nil || h == nil || h.GapAfter == nil {
		t.Fatalf("Resume = %+v, %v; want the gap's halt cleared", h, err)
	}
	e.waitFor("version 5 to be applied", 30*time.Second, func() bool { return storedVersion(t, e, "Order-g") == 5 })
	e.waitForLedger(e.schema, 30*time.Second) // the ledger's rows of Order-g come from every version
	e.assertState("ledger", runner.StateRunning)
	if n := metricValue(t, metrics, "strata_projection_events_total", "parked", "ledger"); n != 0 {
		t.Errorf("parked = %v, want 0", n)
	}
	if h, err := m.Resume(ctx, "ledger"); err != nil || h != nil {
		t.Errorf("a second Resume = %+v, %v; want nil, nil (not halted)", h, err)
	}
}

func storedVersion(t *testing.T, e *env, stream string) int64 {
	t.Helper()
	var version int64
	err := e.db.QueryRow(ctx, "SELECT version FROM projection_streams WHERE stream_id = $1", stream).Scan(&version)
	if err != nil {
		t.Fatal(err)
	}
	return version
}

func TestAPoisonEventHaltsTheProjectionUntilResumed(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	var broken atomic.Bool
	broken.Store(true)
	p := ledger("ledger", func(ev projection.Event) error {
		if broken.Load() && ev.StreamID == "Order-poison" && ev.Type == "OrderShipped" {
			return errors.New("cannot ship a poisoned order")
		}
		return nil
	})
	metrics := prometheus.NewRegistry()
	e.run(e.runner(p, runner.Options{Attempts: 2, HaltPoll: 50 * time.Millisecond, Metrics: metrics}).Run)
	e.order("before", 1, true)
	e.order("poison", 1, true)
	e.waitFor("the projection to halt", 30*time.Second, func() bool { return e.state("ledger").State == runner.StateHalted })
	st := e.state("ledger")
	if st.Halted == nil || st.Halted.StreamID != "Order-poison" || st.Halted.Type != "OrderShipped" ||
		!strings.Contains(st.Halted.Error, "cannot ship a poisoned order") {
		t.Fatalf("halted = %+v, want the OrderShipped of Order-poison and its error", st.Halted)
	}
	if got := metricValue(t, metrics, "strata_projection_halted", "ledger"); got != 1 {
		t.Errorf("strata_projection_halted = %v, want 1", got)
	}
	e.order("while-halted", 1, false)
	time.Sleep(300 * time.Millisecond)
	if rows := e.ledgerRows(e.schema); strings.Contains(fmt.Sprint(rows), "Order-while-halted") {
		t.Fatalf("a halted projection applied an event: %v", rows)
	}

	broken.Store(false) // the fix is deployed
	if h, err := runner.NewMonitor(e.db, []*runner.Runner{e.runner(p, runner.Options{})}, nil).Resume(ctx, "ledger"); err != nil || h == nil || h.GapAfter != nil {
		t.Fatalf("Resume = %+v, %v; want the poison halt cleared", h, err)
	}
	e.waitForLedger(e.schema, 30*time.Second) // nothing skipped
	e.assertState("ledger", runner.StateRunning)
}

func TestAPoisonEventIsParkedAndTheProjectionGoesOn(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	p := ledger("ledger", func(ev projection.Event) error {
		if ev.StreamID == "Order-poison" && ev.Version == 2 {
			return errors.New("this item is poison")
		}
		return nil
	})
	p.OnPoison = projection.Park
	e.run(e.runner(p, runner.Options{Attempts: 2}).Run)
	e.order("before", 2, true)
	e.order("poison", 2, true) // versions 1..4; 2 is poison
	e.order("after", 2, true)
	want := e.storedRows()
	var parkedID string
	for id, row := range want {
		if row == "Order-poison@2 OrderItemAdded" {
			parkedID = id
			delete(want, id)
		}
	}
	e.waitFor("everything but the poison event", 30*time.Second, func() bool {
		m, x := diff(want, e.ledgerRows(e.schema))
		return len(m) == 0 && len(x) == 0
	})
	var id, stream, errText string
	var version int64
	err := e.db.QueryRow(ctx, "SELECT event_id, stream_id, version, error FROM parked_events").Scan(&id, &stream, &version, &errText)
	if err != nil || id != parkedID || stream != "Order-poison" || version != 2 || !strings.Contains(errText, "this item is poison") {
		t.Fatalf("parked = %s %s@%d %q, %v; want %s Order-poison@2 with the error", id, stream, version, errText, err, parkedID)
	}
	st := e.state("ledger")
	if st.State != runner.StateRunning || st.Parked != 1 {
		t.Errorf("status = %s with %d parked, want running with 1", st.State, st.Parked)
	}
}

func TestWorkersJoiningAndLeavingKeepTheReadModelExact(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			e.order(fmt.Sprint("r", i), i%3, i%2 == 0)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	worker := func() func() error { return e.run(e.runner(ledger("ledger", nil), runner.Options{}).Run) }
	first := worker()
	time.Sleep(time.Second)
	second, third := worker(), worker() // 1 → 3
	time.Sleep(3 * time.Second)
	second()
	third() // 3 → 1
	time.Sleep(2 * time.Second)
	fourth := worker() // and a new one, before the first leaves
	time.Sleep(time.Second)
	first()
	time.Sleep(time.Second)
	close(stopLoad)
	<-loadDone
	e.waitForLedger(e.schema, 60*time.Second)
	fourth()
	e.assertState("ledger", runner.StateRunning)
}

// assertState fails unless projection name is in state.
func (e *env) assertState(name, state string) {
	e.t.Helper()
	if st := e.state(name); st.State != state {
		e.t.Errorf("projection %s is %s (halted: %+v), want %s", name, st.State, st.Halted, state)
	}
}

func (e *env) state(name string) runner.Status {
	e.t.Helper()
	all, err := runner.NewMonitor(e.db, []*runner.Runner{e.runner(ledger(name, nil), runner.Options{})}, nil).Statuses(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	e.t.Fatalf("no status of %s in %+v", name, all)
	return runner.Status{}
}

// readTopic returns every committed record of a category's topic.
func (e *env) readTopic(category string) []*kgo.Record {
	e.t.Helper()
	topic := e.kafka.Topic(category)
	ends, err := e.consumers.EndOffsets(ctx, []string{topic})
	if err != nil {
		e.t.Fatal(err)
	}
	opts, _ := e.kafka.ClientOptions()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // the commit markers take offsets too: they show the end is reached
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	seen := map[int32]int64{}
	for {
		done := true
		for p, end := range ends[topic] {
			if seen[p] < end-1 {
				done = false
			}
		}
		if done {
			return out
		}
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			seen[r.Partition] = r.Offset
		})
	}
}

// metricValue returns the value of the counter or gauge name with labels,
// 0 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var vals []string
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			if strings.Join(vals, ",") == strings.Join(labels, ",") {
				if m.Counter != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0 // a counter of these labels not counted yet
}

// A read-model database that refuses writes for a while (25006, as a
// standby or a demoted primary does during a failover) is a failure of the
// database, not of the events: with the park policy, none is parked and
// every event is applied once the database takes writes again.
func TestAReadOnlyReadModelDatabaseParksNothing(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	// A failover that sends the read-model URL to a read-only node for a
	// while: every session it hands out refuses writes (25006).
	var readOnly atomic.Bool
	cfg, err := pgxpool.ParseConfig(e.url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{e.schema}.Sanitize()
	cfg.PrepareConn = func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		_, err := conn.Exec(ctx, fmt.Sprintf("SET default_transaction_read_only = %t", readOnly.Load()))
		return err == nil, err
	}
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	p := ledger("ledger", nil)
	p.OnPoison = projection.Park
	metrics := prometheus.NewRegistry()
	e.run(e.runnerOn(db, p, runner.Options{Attempts: 2, Metrics: metrics}).Run)
	e.order("before", 2, true)
	e.waitForLedger(e.schema, 30*time.Second)

	readOnly.Store(true)
	for i := range 5 {
		e.order(fmt.Sprint("during", i), 2, true)
	}
	// Wait until the runner has met the read-only node more often than
	// Attempts allows for one event.
	e.waitFor("the read-only node to refuse the runner", 30*time.Second, func() bool {
		return metricValue(t, metrics, "strata_projection_retries_total", "transient", "ledger")+
			metricValue(t, metrics, "strata_projection_retries_total", "failure", "ledger") >= 10
	})
	readOnly.Store(false)
	e.order("after", 2, true)
	e.waitForLedger(e.schema, 30*time.Second) // every event applied once
	var parked int
	if err := e.db.QueryRow(ctx, "SELECT count(*) FROM parked_events").Scan(&parked); err != nil || parked != 0 {
		t.Errorf("parked events = %d, %v; want 0 (a read-only database is no fault of an event)", parked, err)
	}
	e.assertState("ledger", runner.StateRunning)
}
