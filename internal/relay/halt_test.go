package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/storetest"
)

// gauge returns the value of the metric name (with the label value, if
// any) in reg, and whether it is there.
func gauge(t *testing.T, reg *prometheus.Registry, name, label string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue(), true
			}
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

// runUntilHalted runs a relay, with short waits and publishers of
// pubOpts, until it halts for reason or has failed three times, and checks
// that it halted at once: with its first publisher, no failure counted, its
// lease kept (a standby would meet the same wall). It returns the status.
func (e *env) runUntilHalted(reason string, pubOpts kafka.PublisherOptions, opts relay.Options) relay.Status {
	e.t.Helper()
	t := e.t
	var publishers atomic.Int32
	reg := prometheus.NewRegistry()
	pubOpts.TransactionTimeout, pubOpts.Instance = 5*time.Second, t.Name()
	opts.PollInterval, opts.MaxBackoff, opts.Metrics = 20*time.Millisecond, 100*time.Millisecond, reg
	if os.Getenv("RELAY_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		pubOpts.Logger = opts.Logger
	}
	r := relay.New(e.store, schemaIDs{}, e, func() (relay.Publisher, error) {
		publishers.Add(1)
		return kafka.NewPublisher(e.kafka, pubOpts)
	}, opts)
	e.start(r)
	waitUntil(t, 60*time.Second, "the relay halts, or retries three times", func() bool {
		failures, _ := gauge(t, reg, "strata_relay_failures_total", "")
		return r.Status().Halted != nil || failures >= 3
	})
	if halted, _ := gauge(t, reg, "strata_relay_halted", reason); halted != 1 {
		t.Errorf("strata_relay_halted{reason=%q} = %v, want 1", reason, halted)
	}
	if failures, _ := gauge(t, reg, "strata_relay_failures_total", ""); failures != 0 || publishers.Load() != 1 {
		t.Errorf("the relay failed %v times and made %d publishers; want it halted at once, with its first publisher", failures, publishers.Load())
	}
	st := r.Status()
	if st.Halted == nil || st.Halted.Reason != reason {
		t.Fatalf("Status() = %+v, want halted for %s", st, reason)
	}
	if !st.Active {
		t.Errorf("a halted relay gave up its lease: a standby would meet the same wall")
	}
	e.mu.Lock()
	lease := e.leases[len(e.leases)-1]
	e.mu.Unlock()
	if held, err := lease.Held(context.Background()); err != nil || !held {
		t.Errorf("the halted relay's lease: held = %v, %v; want held", held, err)
	}
	return st
}

// An event too large for Kafka stops the relay at it, once and loudly: it
// is named in the relay's status and in strata_relay_halted, the relay
// keeps its lease (a standby would hit the same wall) and makes no new
// attempt, instead of retrying the same batch for ever.
func TestAnEventTooLargeForKafkaHaltsTheRelayLoudlyOnce(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t))
	appendEvents(t, e.store, 3, 1, "before")
	big := storetest.Events(1, "big")
	big[0].Data = []byte(strings.Repeat("x", 1500_000)) // over the producer's 1,000,012-byte batch limit
	storetest.MustAppend(t, e.store, "Order-big", eventstore.Any, big...)
	appendEvents(t, e.store, 3, 1, "after")

	st := e.runUntilHalted("event_too_large", kafka.PublisherOptions{}, relay.Options{BatchSize: 2})
	if st.Halted.Stream != "Order-big" || st.Halted.Version != 1 || st.Halted.Size < 1500_000 {
		t.Fatalf("Status() = %+v, want halted at Order-big@1 with its size", st)
	}
	// Everything before the batch with the large event was published once;
	// nothing from it or after it.
	stored := e.stored()
	published := e.published()
	for _, m := range published {
		if m.StreamID.String() == "Order-big" || strings.Contains(m.StreamID.String(), "after") {
			t.Errorf("%s@%d was published past the halt", m.StreamID, m.Version)
		}
		if _, ok := stored[m.ID]; !ok {
			t.Errorf("published %s is not stored", m.ID)
		}
	}
	if len(published) != 2 {
		t.Errorf("published %d events, want the 2 of the batch before the large event's", len(published))
	}
}

// A transaction holds about MaxBatchBytes of events, not BatchSize events
// whatever their size: 60 events of 2.5 kB under a budget of 10 kB go out
// in transactions of a few events each (a batch passes the budget by at
// most one page), every one published once.
func TestBatchesAreBoundedByBytes(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t))
	for i := range 60 {
		ev := storetest.Events(1, "big")
		ev[0].Data = []byte(strings.Repeat("x", 2500))
		storetest.MustAppend(t, e.store, fmt.Sprint("Order-b", i%6), eventstore.Any, ev...)
	}
	reg := prometheus.NewRegistry()
	e.start(e.relay(relay.Options{MaxBatchBytes: 10_000, Metrics: reg}))
	stored := e.stored()
	checkExactlyOnce(t, stored, e.waitPublished(len(stored), 30*time.Second))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "strata_relay_batch_events" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == 16 && b.GetCumulativeCount() != h.GetSampleCount() {
				t.Errorf("%d of %d transactions held more than 16 events of 2.5 kB under a 10 kB budget",
					h.GetSampleCount()-b.GetCumulativeCount(), h.GetSampleCount())
			}
		}
		if h.GetSampleCount() < 60*2500/(10_000+4*2800) {
			t.Errorf("60 events of 2.5 kB went out in %d transactions under a 10 kB budget", h.GetSampleCount())
		}
		return
	}
	t.Fatal("no strata_relay_batch_events")
}

// A checkpoint whose cursor the store refuses — one from before `writer
// migrate --rebaseline` moved the store to a new epoch — halts the relay
// at once and loudly, instead of reading the same refused cursor again
// and again: the topics may already hold the restored events, and only an
// operator can say what they should get.
func TestACheckpointTheStoreRefusesHaltsTheRelay(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t))
	appendEvents(t, e.store, 3, 1, "before")
	stop := e.start(e.relay(relay.Options{}))
	if got := e.waitPublished(3, 30*time.Second); len(got) != 3 {
		t.Fatalf("published %d events before the re-baseline, want 3", len(got))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// What `writer migrate --rebaseline` does to the epoch; Check loads it.
	if _, err := e.store.Pool().Exec(ctx, "UPDATE store_meta SET epoch = epoch + 1"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Check(ctx); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, e.store, 3, 1, "after")

	st := e.runUntilHalted("checkpoint_refused", kafka.PublisherOptions{}, relay.Options{})
	if !strings.Contains(st.Halted.Message, "re-baselined") || st.Halted.Remedy == "" {
		t.Errorf("Status() = %+v, want the store's refusal and a remedy", st)
	}
	if got := e.published(); len(got) != 3 {
		t.Errorf("the topics hold %d events, want the 3 from before the re-baseline only", len(got))
	}
}

// A category topic given more partitions (kafka-topics --alter) while the
// relay was stopped halts it when it starts again: a stream's next events
// would go to another partition than its earlier ones. Nothing goes to a
// new partition, and nothing of that topic after the change is published.
func TestATopicWithMorePartitionsHaltsTheRelay(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t)) // 4 partitions
	stream := ""
	for i := 0; stream == ""; i++ { // a stream that the change would move to a new partition
		if s := fmt.Sprint("Order-m", i); kafka.Partition([]byte(s), 6) >= 4 {
			stream = s
		}
	}
	storetest.MustAppend(t, e.store, stream, eventstore.Any, storetest.Events(2, "before")...)
	stop := e.start(e.relay(relay.Options{}))
	if got := e.waitPublished(2, 30*time.Second); len(got) != 2 {
		t.Fatalf("published %d events before the change, want 2", len(got))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	opts, _ := e.kafka.ClientOptions()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := e.kafka.Topic("Order")
	if resp, err := kadm.NewClient(cl).CreatePartitions(ctx, 2, topic); err != nil || resp.Error() != nil {
		t.Fatalf("CreatePartitions(2, %s) = %v, %v", topic, err, resp.Error())
	}
	storetest.MustAppend(t, e.store, stream, eventstore.Any, storetest.Events(2, "after")...)

	st := e.runUntilHalted("partitions_changed", kafka.PublisherOptions{}, relay.Options{})
	if st.Halted.Topic != topic || st.Halted.Stream != stream || st.Halted.Version != 3 {
		t.Errorf("Status() = %+v, want halted at %s@3 for topic %s", st, stream, topic)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	records, err := harness.ReadCommitted(rctx, opts, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Errorf("%s holds %d records, want the 2 from before the change", topic, len(records))
	}
	for _, r := range records {
		if r.Partition >= 4 {
			t.Errorf("record %s@%d is on the new partition %d", r.Key, r.Offset, r.Partition)
		}
	}
}
