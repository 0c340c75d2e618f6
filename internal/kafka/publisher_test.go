package kafka

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

func testConfig(t *testing.T) Config {
	return Config{
		Brokers:     harness.KafkaBrokers(t),
		TopicPrefix: harness.UniqueName("t") + ".",
		Partitions:  3,
		StoreName:   harness.UniqueName("store"),
	}
}

func newPublisher(t *testing.T, cfg Config, instance string) *Publisher {
	t.Helper()
	p, err := NewPublisher(cfg, PublisherOptions{Instance: instance, TransactionTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func events(stream string, from, n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{SchemaID: 1, RecordedEvent: eventstore.RecordedEvent{
			ID: eventstore.NewUUIDv7(), StreamID: eventstore.MustParseStreamID(stream), Type: "E",
			Version: int64(from + i), GlobalPosition: int64(from + i), RecordedAt: time.Now(), Data: []byte{byte(i)},
		}}
	}
	return out
}

// consume reads every committed record of topic, read_committed.
func consume(t *testing.T, cfg Config, topic string) []*kgo.Record {
	t.Helper()
	opts, _ := cfg.ClientOptions()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	records, err := harness.ReadCommitted(rctx, opts, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return records
}

func TestPublishedBatchesAndTheirCheckpointCommitTogether(t *testing.T) {
	cfg := testConfig(t)
	p := newPublisher(t, cfg, "first")
	cp, err := p.Init(ctx)
	if err != nil || cp.Cursor != "" {
		t.Fatalf("Init on a new store = %+v, %v; want no checkpoint", cp, err)
	}
	for i := 0; i < 3; i++ {
		batch := events("Order-1", 1+2*i, 2)
		if err := p.Publish(ctx, batch, Checkpoint{Cursor: eventstore.Cursor(fmt.Sprint("after-", i)), Position: int64(2 * (i + 1))}, nil); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	if c := p.Committed(); c.Cursor != "after-2" || c.Relay != "first" || c.At.IsZero() || c.Partitions[cfg.Topic("Order")] != 3 {
		t.Errorf("Committed() after three batches = %+v, want the third checkpoint with its relay, time and partitions", c)
	}
	records := consume(t, cfg, cfg.Topic("Order"))
	if len(records) != 6 {
		t.Fatalf("topic holds %d records, want 6", len(records))
	}
	for i, r := range records {
		m, err := ParseRecord(r)
		if err != nil || m.Version != int64(i+1) {
			t.Errorf("record %d: version %d, %v; want %d in order", i, m.Version, err, i+1)
		}
	}
	// A new publisher resumes from the last committed checkpoint.
	second := newPublisher(t, cfg, "second")
	cp, err = second.Init(ctx)
	if err != nil || cp.Cursor != "after-2" || cp.Position != 6 || cp.Relay != "first" {
		t.Errorf("Init after three batches = %+v, %v; want the third checkpoint", cp, err)
	}
	if c := second.Committed(); c.Cursor != cp.Cursor || c.Relay != "first" {
		t.Errorf("Committed() after Init = %+v, want the checkpoint Init read", c)
	}
}

// A zombie — a publisher paused before its commit while another takes
// over — must never make its records visible.
func TestAFencedZombiesRecordsNeverBecomeVisible(t *testing.T) {
	cfg := testConfig(t)
	zombie := newPublisher(t, cfg, "zombie")
	if _, err := zombie.Init(ctx); err != nil {
		t.Fatal(err)
	}
	paused, resume := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- zombie.Publish(ctx, events("Order-z", 1, 3), Checkpoint{Cursor: "zombie"}, func(context.Context) error {
			close(paused)
			<-resume
			return nil
		})
	}()
	<-paused // the zombie's records are produced, its transaction open

	successor := newPublisher(t, cfg, "successor")
	cp, err := successor.Init(ctx)
	if err != nil || cp.Cursor != "" {
		t.Fatalf("successor Init = %+v, %v; want no checkpoint: the zombie's never committed", cp, err)
	}
	if err := successor.Publish(ctx, events("Order-s", 1, 2), Checkpoint{Cursor: "successor"}, nil); err != nil {
		t.Fatalf("successor Publish: %v", err)
	}
	close(resume)
	if err := <-done; !errors.Is(err, ErrFenced) {
		t.Errorf("the zombie's commit = %v, want ErrFenced", err)
	}
	var keys []string
	for _, r := range consume(t, cfg, cfg.Topic("Order")) {
		keys = append(keys, string(r.Key))
	}
	if len(keys) != 2 || keys[0] != "Order-s" || keys[1] != "Order-s" {
		t.Errorf("topic holds records with keys %q, want only the successor's 2", keys)
	}
	if cp, err := newPublisher(t, cfg, "third").Init(ctx); err != nil || cp.Cursor != "successor" {
		t.Errorf("checkpoint = %+v, %v; want the successor's", cp, err)
	}
}

// A transaction of this store's producer left open on the checkpoint
// partition (by a broker that did not abort it at the fence, say) holds a
// new publisher back until it ends: the publisher does not count on the
// broker aborting it. kfake always aborts it, so the broker's answers to
// DescribeProducers say it is open, three times.
func TestInitWaitsOutAnOpenTransactionOfItsOwnProducer(t *testing.T) {
	broker, err := harness.StartKafka(harness.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Stop()
	cfg := testConfig(t)
	cfg.Brokers = broker.Brokers()
	if _, err := newPublisher(t, cfg, "first").Init(ctx); err != nil { // creates the checkpoint topic
		t.Fatal(err)
	}
	p := newPublisher(t, cfg, "second")
	c := broker.Cluster()
	described := 0
	c.ControlKey(kmsg.DescribeProducers.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if described++; described > 3 {
			return nil, nil, false
		}
		id, epoch, err := p.cl.ProducerID(ctx) // known by now: Init asks for it first
		if err != nil {
			return nil, err, true
		}
		resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
		resp.SetVersion(req.GetVersion())
		topic := kmsg.NewDescribeProducersResponseTopic()
		topic.Topic = cfg.CheckpointTopic()
		partition := kmsg.NewDescribeProducersResponseTopicPartition()
		open := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
		open.ProducerID, open.ProducerEpoch, open.CurrentTxnStartOffset = id, int32(epoch)-1, 0
		partition.ActiveProducers = append(partition.ActiveProducers, open)
		topic.Partitions = append(topic.Partitions, partition)
		resp.Topics = append(resp.Topics, topic)
		return resp, nil, true
	})
	if _, err := p.Init(ctx); err != nil {
		t.Fatalf("Init = %v", err)
	}
	if described < 4 {
		t.Errorf("Init asked for the producers %d times; want it to wait out the open transaction (4 asks)", described)
	}
}

// A slow answer while Init reads the checkpoint topic must not make it
// resume from an older checkpoint, or from none: Init reads to the topic's
// end, or fails.
func TestInitReadsTheCheckpointTopicToItsEndThroughASlowFetch(t *testing.T) {
	broker, err := harness.StartKafka(harness.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Stop()
	cfg := testConfig(t)
	cfg.Brokers = broker.Brokers()
	first := newPublisher(t, cfg, "first")
	cp, err := first.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Three checkpoints, published as the relay does: after a failed
	// Publish (kfake has answered one OUT_OF_ORDER_SEQUENCE_NUMBER under
	// load), Init again and go on from the checkpoint it finds.
	for failures := 0; cp.Position < 3; {
		i := cp.Position + 1
		next := Checkpoint{Cursor: eventstore.Cursor(fmt.Sprint("after-", i)), Position: i}
		if err := first.Publish(ctx, events("Order-1", int(i), 1), next, nil); err != nil {
			if failures++; failures > 3 {
				t.Fatalf("publishing the checkpoints failed %d times, the last: %v", failures, err)
			}
			t.Logf("publish %d: %v; Init again, as the relay does", i, err)
			if cp, err = first.Init(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		cp = next
	}
	// The next fetch is answered after 3.5s: longer than a consumer's
	// poll waited before, shorter than Init's bound with a 10s
	// transaction timeout.
	c := broker.Cluster()
	slowed := false
	c.ControlKey(kmsg.Fetch.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		if !slowed {
			slowed = true
			c.SleepControl(func() { time.Sleep(3500 * time.Millisecond) })
		}
		return nil, nil, false
	})
	p, err := NewPublisher(cfg, PublisherOptions{Instance: "second", TransactionTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cp, err = p.Init(ctx)
	if err != nil || cp.Cursor != "after-3" {
		t.Errorf("Init through a slow fetch = %+v, %v; want the last checkpoint, after-3", cp, err)
	}
}

// Stores that share a topic prefix share the checkpoint topic. A busy
// relay of one, whose transactions are open on the checkpoint partition
// nearly all the time, must not keep another's from starting.
func TestAnotherStoresOpenTransactionDoesNotHoldInitBack(t *testing.T) {
	mine := testConfig(t)
	theirs := mine
	theirs.StoreName = harness.UniqueName("other")
	if _, err := newPublisher(t, mine, "first").Init(ctx); err != nil { // creates the checkpoint topic
		t.Fatal(err)
	}
	opts, _ := theirs.ClientOptions()
	busy, err := kgo.NewClient(append(opts, kgo.TransactionalID(theirs.TransactionalID()), kgo.TransactionTimeout(time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := busy.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: theirs.CheckpointTopic(), Partition: 0, Key: []byte(theirs.StoreName), Value: []byte(`{"cursor":"theirs"}`)}
	if err := busy.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Their transaction stays open for the rest of the test.
	cp, err := newPublisher(t, mine, "mine").Init(ctx)
	if err != nil || cp.Cursor != "" {
		t.Errorf("Init beside another store's open transaction = %+v, %v; want no checkpoint, no error", cp, err)
	}
}
