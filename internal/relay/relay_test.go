package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/storetest"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// env is a store and a Kafka namespace of a test's own.
type env struct {
	t     *testing.T
	store *postgres.Store
	kafka kafka.Config

	mu     sync.Mutex
	leases []*postgres.Lease // every lease handed out, the last one active
}

func newEnv(t *testing.T, brokers []string) *env {
	t.Helper()
	url, schema := harness.NewSchema(t)
	store, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if _, err := store.Migrate(ctx, postgres.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, kafka: kafka.Config{
		Brokers:     brokers,
		TopicPrefix: harness.UniqueName("r") + ".",
		Partitions:  4,
		StoreName:   harness.UniqueName("store"),
	}}
}

// schemaIDs maps every fingerprint to one registry id: the mapping itself
// is the catalog's, tested there.
type schemaIDs struct{}

func (schemaIDs) SchemaID(context.Context, eventstore.Fingerprint) (int, error) { return 7, nil }

func (e *env) Acquire(ctx context.Context) (relay.Lease, error) {
	l, err := e.store.AcquireLease(ctx, "relay", 50*time.Millisecond)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.leases = append(e.leases, l)
	e.mu.Unlock()
	return l, nil
}

func (e *env) relay(opts relay.Options) *relay.Relay {
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	opts.MaxBackoff = 500 * time.Millisecond
	if os.Getenv("RELAY_TEST_LOG") != "" && opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return relay.New(e.store, schemaIDs{}, e, func() (relay.Publisher, error) {
		return kafka.NewPublisher(e.kafka, kafka.PublisherOptions{TransactionTimeout: 5 * time.Second, Instance: e.t.Name(), Logger: opts.Logger})
	}, opts)
}

// start runs a relay until the test ends or the returned stop is called.
func (e *env) start(r *relay.Relay) (stop func() error) { return run(e.t, r) }

// run runs r until t ends or the returned stop is called; stop returns
// Run's error.
func run(t *testing.T, r *relay.Relay) (stop func() error) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// stored returns every event of the store, by id.
func (e *env) stored() map[eventstore.UUID]eventstore.RecordedEvent {
	all, _ := storetest.ReadAllEvents(e.t, e.store, "", "", eventstore.MaxReadLimit)
	out := make(map[eventstore.UUID]eventstore.RecordedEvent, len(all))
	for _, ev := range all {
		out[ev.ID] = ev
	}
	return out
}

// published reads every committed record of the store's topics.
func (e *env) published() []kafka.Message {
	e.t.Helper()
	opts, _ := e.kafka.ClientOptions()
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer adm.Close()
	topics, err := kadm.NewClient(adm).ListTopics(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, e.kafka.TopicPrefix) && name != e.kafka.CheckpointTopic() {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	records, err := harness.ReadCommitted(rctx, opts, names...)
	if err != nil {
		e.t.Fatalf("read the topics: %v", err)
	}
	out := make([]kafka.Message, 0, len(records))
	for _, r := range records {
		m, err := kafka.ParseRecord(r)
		if err != nil {
			e.t.Errorf("record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			continue
		}
		out = append(out, m)
	}
	return out
}

// waitPublished waits until n events are published, then checks them.
func (e *env) waitPublished(n int, within time.Duration) []kafka.Message {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := e.published()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkExactlyOnce checks that the topics hold every stored event exactly
// once, nothing else, and each stream in version order.
func checkExactlyOnce(t *testing.T, stored map[eventstore.UUID]eventstore.RecordedEvent, published []kafka.Message) {
	t.Helper()
	seen := map[eventstore.UUID]int{}
	last := map[string]int64{}
	for _, m := range published {
		seen[m.ID]++
		s, ok := stored[m.ID]
		switch {
		case !ok:
			t.Errorf("published event %s (%s@%d) is not in the store", m.ID, m.StreamID, m.Version)
		case s.StreamID != m.StreamID || s.Version != m.Version || s.Type != m.Type || string(s.Data) != string(m.Data):
			t.Errorf("published event %s differs from the stored one", m.ID)
		}
		if m.Version != last[m.StreamID.String()]+1 {
			t.Errorf("%s@%d published after version %d", m.StreamID, m.Version, last[m.StreamID.String()])
		}
		last[m.StreamID.String()] = m.Version
	}
	missing := 0
	for id, s := range stored {
		switch seen[id] {
		case 0:
			missing++
			if missing <= 5 {
				t.Errorf("stored event %s (%s@%d) was never published", id, s.StreamID, s.Version)
			}
		case 1:
		default:
			t.Errorf("stored event %s (%s@%d) was published %d times", id, s.StreamID, s.Version, seen[id])
		}
	}
	if missing > 5 {
		t.Errorf("... %d stored events in all were never published", missing)
	}
}

func appendEvents(t *testing.T, s eventstore.Store, streams, each int, prefix string) {
	t.Helper()
	for i := 0; i < each; i++ {
		for j := 0; j < streams; j++ {
			category := []string{"Order", "Customer", "Cart"}[j%3]
			storetest.MustAppend(t, s, fmt.Sprintf("%s-%s%d", category, prefix, j), eventstore.Any, storetest.Events(1+i%3, prefix)...)
		}
	}
}

func TestTheRelayPublishesEveryEventOnceInStreamOrder(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t))
	appendEvents(t, e.store, 9, 5, "a")
	e.start(e.relay(relay.Options{BatchSize: 7}))
	appendEvents(t, e.store, 9, 3, "b") // while it runs
	stored := e.stored()
	published := e.waitPublished(len(stored), 30*time.Second)
	checkExactlyOnce(t, stored, published)
	topics := map[string]bool{}
	for _, m := range published {
		topics[m.StreamID.Category()] = true
	}
	if len(topics) != 3 {
		t.Errorf("published to categories %v, want Order, Customer and Cart", topics)
	}
}

// TestTheGapHunterThroughKafka races appenders that sleep inside their
// transactions and sometimes abort, and a long-open transaction, against the
// relay: Kafka must end up with every committed event exactly once, each
// stream in order, and nothing from an aborted transaction.
func TestTheGapHunterThroughKafka(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t))
	e.start(e.relay(relay.Options{BatchSize: 50}))
	aborted := huntGaps(t, e.store, 4*time.Second)
	stored := e.stored()
	published := e.waitPublished(len(stored), 30*time.Second)
	checkExactlyOnce(t, stored, published)
	for _, m := range published {
		if aborted[m.ID] {
			t.Errorf("event %s of an aborted transaction was published", m.ID)
		}
	}
	if len(stored) < 200 || len(aborted) == 0 {
		t.Fatalf("%d stored and %d aborted: the hunt was too small", len(stored), len(aborted))
	}
	t.Logf("%d events published exactly once; %d aborted never published", len(published), len(aborted))
}

// huntGaps appends for d from writers in explicit transactions that sleep
// and sometimes roll back, with one transaction open for most of d. It
// returns the ids of the events rolled back.
func huntGaps(t *testing.T, s *postgres.Store, d time.Duration) map[eventstore.UUID]bool {
	t.Helper()
	var mu sync.Mutex
	aborted := map[eventstore.UUID]bool{}
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the long transaction
		defer wg.Done()
		if err := s.AppendInTx(ctx, eventstore.MustParseStreamID("Order-long"), eventstore.Any, storetest.Events(3, "long"),
			func() error { time.Sleep(d * 3 / 4); return nil }); err != nil {
			t.Errorf("long transaction: %v", err)
		}
	}()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				stream := eventstore.MustParseStreamID(fmt.Sprintf("%s-h%d", []string{"Order", "Customer"}[i%2], (w*7+i)%12))
				events := eventstore.AssignIDs(storetest.Events(1+i%3, fmt.Sprintf("w%d", w)))
				abort := i%5 == 3
				err := s.AppendInTx(ctx, stream, eventstore.Any, events, func() error {
					time.Sleep(time.Duration(i%7) * 2 * time.Millisecond)
					if abort {
						return errRollback
					}
					return nil
				})
				switch {
				case err == errRollback:
					mu.Lock()
					for _, ev := range events {
						aborted[ev.ID] = true
					}
					mu.Unlock()
				case err != nil && !strings.Contains(err.Error(), "wrong expected version"):
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return aborted
}

var errRollback = fmt.Errorf("rolled back on purpose")
