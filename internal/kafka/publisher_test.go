package kafka

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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
	cp, err = newPublisher(t, cfg, "second").Init(ctx)
	if err != nil || cp.Cursor != "after-2" || cp.Position != 6 || cp.Relay != "first" {
		t.Errorf("Init after three batches = %+v, %v; want the third checkpoint", cp, err)
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

// A transaction left open on the checkpoint partition (by a broker that did
// not abort it, say) holds a new publisher back until it ends: the
// publisher does not count on the broker aborting it at the fence.
func TestInitWaitsOutAnOpenTransactionOnTheCheckpointPartition(t *testing.T) {
	cfg := testConfig(t)
	if _, err := newPublisher(t, cfg, "first").Init(ctx); err != nil { // creates the checkpoint topic
		t.Fatal(err)
	}
	opts, _ := cfg.ClientOptions()
	dangling, err := kgo.NewClient(append(opts, kgo.TransactionalID("someone-else"), kgo.TransactionTimeout(2*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer dangling.Close()
	if err := dangling.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: cfg.CheckpointTopic(), Partition: 0, Key: []byte(cfg.StoreName), Value: []byte(`{"cursor":"dangling"}`)}
	if err := dangling.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cp, err := newPublisher(t, cfg, "second").Init(ctx)
	waited := time.Since(start)
	if err != nil {
		t.Fatalf("Init = %v", err)
	}
	if waited < 1500*time.Millisecond {
		t.Errorf("Init returned after %s, before the open transaction could have ended", waited)
	}
	if cp.Cursor == "dangling" {
		t.Errorf("Init returned the uncommitted checkpoint of the open transaction")
	}
	t.Logf("Init waited %s for the open transaction to be aborted", waited.Round(time.Millisecond))
}
