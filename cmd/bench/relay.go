package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/relay"
)

// relayEvents is how many events each relay round publishes.
const relayEvents = 200_000

// relayBacklog is the size of the backlog the catch-up round publishes.
const relayBacklog = 5_000_000

type oneSchemaID struct{}

func (oneSchemaID) SchemaID(context.Context, eventstore.Fingerprint) (int, error) { return 1, nil }

type benchLeases struct{ s *postgres.Store }

func (l benchLeases) Acquire(ctx context.Context) (relay.Lease, error) {
	return l.s.AcquireLease(ctx, "bench-relay", 50*time.Millisecond)
}

// benchRelay compares the relay's publishing with a bare franz-go
// transactional producer sending the same records in transactions of the
// same size, to the same embedded broker.
func benchRelay(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	s, err := openBenchStore(ctx, url, "bench_relay", 16)
	if err != nil {
		return err
	}
	defer s.Close()
	broker, err := harness.StartKafka(harness.KafkaOptions{})
	if err != nil {
		return err
	}
	defer broker.Stop()

	fmt.Fprintf(log, "  storing %s events ...\n", thousands(relayEvents))
	streams := newStreams("relay", 500)
	for stored := 0; stored < relayEvents; stored += 100 {
		w := (stored / 100) % len(streams.ids)
		if _, err := appendOp(s, streams, 100)(ctx, w); err != nil {
			return err
		}
	}
	all, err := readEverything(ctx, s)
	if err != nil {
		return err
	}

	name := fmt.Sprintf("relay publish, %s events in transactions of %d (events/s)", thousands(relayEvents), relay.DefaultBatchSize)
	fmt.Fprintf(log, "  %s ...\n", name)
	var ours, base []float64
	for r := 0; r < cfg.rounds; r++ {
		kcfg := kafka.Config{Brokers: broker.Brokers(), TopicPrefix: harness.UniqueName("b") + ".", Partitions: 12, StoreName: harness.UniqueName("bench")}
		rate, err := relayRound(ctx, s, kcfg, len(all))
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		ours = append(ours, rate)
		kcfg.TopicPrefix, kcfg.StoreName = harness.UniqueName("p")+".", harness.UniqueName("bare")
		rate, err = bareProducerRound(ctx, kcfg, all)
		if err != nil {
			return fmt.Errorf("bare producer: %w", err)
		}
		base = append(base, rate)
	}
	t.add(ratioRow(name, &pair{ours: ours, base: base}, "bare transactional producer", 0.7))

	// For reference: the naive outbox loop, which pages by "position >
	// last" (and so skips events that commit late) and then produces the
	// same records the same way: the floor of reading and publishing.
	var naive []float64
	for r := 0; r < cfg.rounds; r++ {
		kcfg := kafka.Config{Brokers: broker.Brokers(), TopicPrefix: harness.UniqueName("n") + ".", Partitions: 12, StoreName: harness.UniqueName("naive")}
		rate, err := naiveRelayRound(ctx, s, kcfg, len(all))
		if err != nil {
			return fmt.Errorf("naive relay: %w", err)
		}
		naive = append(naive, rate)
	}
	p := &pair{ours: ours, base: naive}
	t.add(ratioRow("relay publish beside a naive outbox loop (events/s)", p, "position > last, same producer", 1.2))

	// Catch-up: a relay starting from an empty checkpoint on a store
	// holding a backlog, as after an outage, beside the time the bare
	// producer's median rate would take for it.
	if _, err := fillLarge(ctx, s, relayBacklog, log); err != nil {
		return err
	}
	total := len(all) + relayBacklog
	name = fmt.Sprintf("relay catch-up: a backlog of %s events", thousands(float64(total)))
	fmt.Fprintf(log, "  %s ...\n", name)
	kcfg := kafka.Config{Brokers: broker.Brokers(), TopicPrefix: harness.UniqueName("c") + ".", Partitions: 12, StoreName: harness.UniqueName("catchup")}
	rate, err := relayRound(ctx, s, kcfg, total)
	if err != nil {
		return fmt.Errorf("relay catch-up: %w", err)
	}
	bare := median(base)
	t.add(row{name: name, ours: fmt.Sprintf("%.1f s (%s)", float64(total)/rate, perSecond(rate)),
		base:  fmt.Sprintf("%.1f s (%s, bare transactional producer)", float64(total)/bare, perSecond(bare)),
		ratio: fmt.Sprintf("%.2f", rate/bare), target: "(for reference)"})
	return nil
}

// naiveRelayRound reads the events table by position, a page at a time,
// and publishes each page as the bare producer does, with a checkpoint.
func naiveRelayRound(ctx context.Context, s *postgres.Store, kcfg kafka.Config, n int) (float64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(kcfg.Brokers...), kgo.TransactionalID(kcfg.TransactionalID()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tp := range []string{kcfg.CheckpointTopic(), kcfg.Topic("Bench")} {
		if _, err := adm.CreateTopic(ctx, int32(kcfg.Partitions), -1, nil, tp); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	var last int64
	for published := 0; published < n; {
		rows, err := s.Pool().Query(ctx, `SELECT position, event_id, stream_id, version, type, data, correlation_id, causation_id, recorded_at
			FROM events WHERE position > $1 ORDER BY position LIMIT $2`, last, relay.DefaultBatchSize)
		if err != nil {
			return 0, err
		}
		var records []*kgo.Record
		var e eventstore.RecordedEvent
		var stream string
		var corr, caus *string
		_, err = pgx.ForEachRow(rows, []any{&e.GlobalPosition, &e.ID, &stream, &e.Version, &e.Type, &e.Data, &corr, &caus, &e.RecordedAt}, func() error {
			e.StreamID = eventstore.MustParseStreamID(stream)
			if corr != nil {
				e.Metadata.CorrelationID = *corr
			}
			if caus != nil {
				e.Metadata.CausationID = *caus
			}
			records = append(records, kcfg.Record(e, 1, kcfg.Partitions))
			last = e.GlobalPosition
			return nil
		})
		if err != nil {
			return 0, err
		}
		if err := cl.BeginTransaction(); err != nil {
			return 0, err
		}
		cp := &kgo.Record{Topic: kcfg.CheckpointTopic(), Key: []byte(kcfg.StoreName), Value: []byte(fmt.Sprint(last))}
		if err := cl.ProduceSync(ctx, cp).FirstErr(); err != nil {
			return 0, err
		}
		if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
			return 0, err
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return 0, err
		}
		published += len(records)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func readEverything(ctx context.Context, s *postgres.Store) ([]eventstore.RecordedEvent, error) {
	var all []eventstore.RecordedEvent
	var cursor eventstore.Cursor
	for {
		page, err := s.ReadAll(ctx, cursor, eventstore.MaxReadLimit)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Events...)
		cursor = page.Next
		if len(page.Events) == 0 {
			return all, nil
		}
	}
}

// relayRound runs a relay from an empty checkpoint until it has published
// n events, and returns events per second.
func relayRound(ctx context.Context, s *postgres.Store, kcfg kafka.Config, n int) (float64, error) {
	metrics := prometheusRegistry()
	r := relay.New(s, oneSchemaID{}, benchLeases{s}, func() (relay.Publisher, error) {
		return kafka.NewPublisher(kcfg, kafka.PublisherOptions{})
	}, relay.Options{Metrics: metrics})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for {
		published, err := counterValue(metrics, "strata_relay_events_total")
		if err != nil {
			return 0, err
		}
		if published >= float64(n) {
			return float64(n) / time.Since(start).Seconds(), nil
		}
		select {
		case err := <-done:
			return 0, fmt.Errorf("the relay stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// bareProducerRound sends the same records as the relay would, in
// transactions of the relay's batch size, with a checkpoint record each,
// and returns events per second. Creating the topics is not timed.
func bareProducerRound(ctx context.Context, kcfg kafka.Config, events []eventstore.RecordedEvent) (float64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(kcfg.Brokers...), kgo.TransactionalID(kcfg.TransactionalID()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := []string{kcfg.CheckpointTopic()}
	for _, e := range events[:1] {
		topics = append(topics, kcfg.Topic(e.StreamID.Category()))
	}
	for _, tp := range topics {
		if _, err := adm.CreateTopic(ctx, int32(kcfg.Partitions), -1, nil, tp); err != nil {
			return 0, err
		}
	}
	records := make([]*kgo.Record, len(events))
	for i, e := range events {
		records[i] = kcfg.Record(e, 1, kcfg.Partitions)
	}
	checkpoint := []byte(strings.Repeat("c", 200))
	start := time.Now()
	for i := 0; i < len(records); i += relay.DefaultBatchSize {
		batch := records[i:min(i+relay.DefaultBatchSize, len(records))]
		if err := cl.BeginTransaction(); err != nil {
			return 0, err
		}
		cp := &kgo.Record{Topic: kcfg.CheckpointTopic(), Key: []byte(kcfg.StoreName), Value: checkpoint}
		if err := cl.ProduceSync(ctx, cp).FirstErr(); err != nil {
			return 0, err
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return 0, err
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return 0, err
		}
	}
	return float64(len(events)) / time.Since(start).Seconds(), nil
}

// benchRelayLatency appends through the real writer at a steady rate and
// measures how long each event takes to become visible to a read_committed
// consumer.
func benchRelayLatency(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	s, err := openBenchStore(ctx, url, "bench_latency", 8)
	if err != nil {
		return err
	}
	s.Close()
	broker, err := harness.StartKafka(harness.KafkaOptions{})
	if err != nil {
		return err
	}
	defer broker.Stop()
	prefix := harness.UniqueName("lat") + "."
	writer, err := startWriter(ctx, url, "bench_latency", log,
		"STRATA_KAFKA_BROKERS="+broker.Brokers()[0], "STRATA_TOPIC_PREFIX="+prefix, "STRATA_STORE_NAME="+harness.UniqueName("lat"))
	if err != nil {
		return err
	}
	defer writer.stop()

	const rate, workers = 1000, 10
	duration := 5 * cfg.duration
	name := fmt.Sprintf("append → visible in Kafka at %d events/s (latency)", rate)
	fmt.Fprintf(log, "  %s, for %s ...\n", name, duration)

	clients, closeClients, err := dialLeanClients(writer.addr, workers, "")
	if err != nil {
		return err
	}
	defer closeClients()
	st := newStreams("lat", workers)
	appendOne := httpAppendOp(clients, st)
	// Warm up: the relay creates the topic with the first event.
	if _, err := appendOne(ctx, 0); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)

	var mu sync.Mutex
	appended := map[string]time.Time{} // stream@version → when the append returned
	var latencies []time.Duration
	stopConsumer, err := watchKafka(ctx, broker.Brokers(), prefix+st.ids[0].Category(), func(key string, now time.Time) {
		mu.Lock()
		if at, ok := appended[key]; ok {
			latencies = append(latencies, now.Sub(at))
		}
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer stopConsumer()

	err = paced(ctx, rate, workers, duration, func(ctx context.Context, w int) error {
		if _, err := appendOne(ctx, w); err != nil {
			return err
		}
		mu.Lock()
		appended[fmt.Sprintf("%s@%d", st.ids[w], st.versions[w])] = time.Now()
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	stopConsumer()
	mu.Lock()
	defer mu.Unlock()
	if len(latencies) < len(appended)*9/10 {
		return fmt.Errorf("only %d of %d appended events were seen in Kafka", len(latencies), len(appended))
	}
	p99 := percentile(latencies, 0.99)
	t.add(row{name: name, ours: fmt.Sprintf("p50 %s p99 %s (%d events)", ms(percentile(latencies, 0.5)), ms(p99), len(latencies)),
		target: "p99 <= 50 ms", verdict: verdict(p99 <= 50*time.Millisecond)})
	return nil
}

// watchKafka reads topic's committed records from its end on, calling seen
// with each one's stream@version and when it was fetched, until stop,
// which waits for the last call. It returns once the consumer has had time
// to find its partitions.
func watchKafka(ctx context.Context, brokers []string, topic string, seen func(key string, at time.Time)) (stop func(), err error) {
	consumer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			f := consumer.PollFetches(cctx)
			now := time.Now()
			f.EachRecord(func(r *kgo.Record) {
				if m, err := kafka.ParseRecord(r); err == nil {
					seen(fmt.Sprintf("%s@%d", m.StreamID, m.Version), now)
				}
			})
		}
	}()
	time.Sleep(500 * time.Millisecond) // let the consumer find its partitions
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-consumed
			consumer.Close()
		})
	}, nil
}
