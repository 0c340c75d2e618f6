package kafka

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// movingStream returns a stream of category whose partition among from
// partitions is not its partition among to, where it falls on a partition
// that did not exist before.
func movingStream(category string, from, to int) string {
	for i := 0; ; i++ {
		s := fmt.Sprintf("%s-m%d", category, i)
		if p := Partition([]byte(s), to); int(p) >= from {
			return s
		}
	}
}

// A topic whose partition count changed since the relay published to it
// would send a stream's next events to another partition than its earlier
// ones, where consumers can read them first. The publisher halts instead,
// naming the topic and both counts, whether the count changed before its
// term began or during it, and no record ever goes to a new partition.
func TestAPartitionCountChangeHaltsThePublisher(t *testing.T) {
	for _, during := range []bool{false, true} {
		name := "before a new publisher's term"
		if during {
			name = "during a publisher's term"
		}
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t) // 3 partitions
			stream := movingStream("Order", 3, 5)
			opts := PublisherOptions{Instance: "first", TransactionTimeout: 5 * time.Second, TopicCheckInterval: 50 * time.Millisecond}
			p, err := NewPublisher(cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			if _, err := p.Init(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.Publish(ctx, events(stream, 1, 2), Checkpoint{Cursor: "after-2"}, nil); err != nil {
				t.Fatal(err)
			}
			topic := cfg.Topic("Order")
			if resp, err := admin(t, cfg).CreatePartitions(ctx, 2, topic); err != nil || resp.Error() != nil {
				t.Fatalf("CreatePartitions(2, %s) = %v, %v", topic, err, resp.Error())
			}
			if !during {
				p.Close()
				opts.Instance = "second"
				if p, err = NewPublisher(cfg, opts); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(p.Close)
				if cp, err := p.Init(ctx); err != nil || cp.Cursor != "after-2" {
					t.Fatalf("Init = %+v, %v; want the first checkpoint", cp, err)
				}
			} else {
				time.Sleep(100 * time.Millisecond) // past the check interval
			}
			h := halt(t, p.Publish(ctx, events(stream, 3, 2), Checkpoint{Cursor: "after-4"}, nil), "partitions_changed")
			if h.Topic != topic || !strings.Contains(h.Message, "3 partitions") || !strings.Contains(h.Message, "5") || h.Remedy == "" {
				t.Errorf("halt = %+v, want the topic, the recorded count (3), the current one (5) and a remedy", h)
			}
			records := consume(t, cfg, topic)
			if len(records) != 2 {
				t.Errorf("%s holds %d records, want the 2 from before the change", topic, len(records))
			}
			for _, r := range records {
				if r.Partition >= 3 {
					t.Errorf("record %s@%d went to the new partition %d", r.Key, r.Offset, r.Partition)
				}
			}
		})
	}
}

// Between two checks of a topic, a record goes to its stream's partition
// among the partitions recorded in the checkpoint, never among the
// partitions the topic may have just gained: a stream is never split.
func TestRecordsGoToThePartitionOfTheRecordedCount(t *testing.T) {
	cfg := testConfig(t) // 3 partitions
	stream := movingStream("Order", 3, 5)
	p, err := NewPublisher(cfg, PublisherOptions{Instance: "first", TransactionTimeout: 5 * time.Second, TopicCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, events(stream, 1, 1), Checkpoint{Cursor: "after-1"}, nil); err != nil {
		t.Fatal(err)
	}
	topic := cfg.Topic("Order")
	if resp, err := admin(t, cfg).CreatePartitions(ctx, 2, topic); err != nil || resp.Error() != nil {
		t.Fatalf("CreatePartitions(2, %s) = %v, %v", topic, err, resp.Error())
	}
	// The producer's metadata may know the new partitions by now.
	if err := p.Publish(ctx, events(stream, 2, 1), Checkpoint{Cursor: "after-2"}, nil); err != nil {
		t.Fatal(err)
	}
	want := Partition([]byte(stream), 3)
	for _, r := range consume(t, cfg, topic) {
		if r.Partition != want {
			t.Errorf("record %s@%d is on partition %d, want %d: the stream's partition among the recorded 3", r.Key, r.Offset, r.Partition, want)
		}
	}
	cp, err := newPublisher(t, cfg, "second").Init(ctx)
	if err != nil || cp.Partitions[topic] != 3 {
		t.Errorf("checkpoint = %+v, %v; want %s recorded with 3 partitions", cp, err, topic)
	}
}

// A checkpoint from before the relay recorded partition counts is read as
// before; the publisher records the counts from its next transaction on.
func TestACheckpointWithoutPartitionCountsIsResumed(t *testing.T) {
	cfg := testConfig(t)
	if _, err := newPublisher(t, cfg, "first").Init(ctx); err != nil { // creates the checkpoint topic
		t.Fatal(err)
	}
	opts, _ := cfg.ClientOptions()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	old := &kgo.Record{Topic: cfg.CheckpointTopic(), Partition: 0, Key: []byte(cfg.StoreName),
		Value: []byte(`{"cursor":"old","position":4,"published":4,"store":"s","relay":"before","at":"2026-11-01T00:00:00Z"}`)}
	if err := cl.ProduceSync(ctx, old).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, cfg, "second")
	cp, err := p.Init(ctx)
	if err != nil || cp.Cursor != "old" || cp.Published != 4 || cp.Partitions != nil {
		t.Fatalf("Init = %+v, %v; want the old checkpoint", cp, err)
	}
	if err := p.Publish(ctx, events("Order-1", 5, 1), Checkpoint{Cursor: "new"}, nil); err != nil {
		t.Fatal(err)
	}
	cp, err = newPublisher(t, cfg, "third").Init(ctx)
	if err != nil || cp.Cursor != "new" || cp.Partitions[cfg.Topic("Order")] != 3 {
		t.Errorf("Init = %+v, %v; want the new checkpoint, with Order's 3 partitions", cp, err)
	}
}

// A topic's configuration changed while a publisher publishes to it is
// found at the topic's next check, and halts the publisher there.
func TestATopicConfigurationChangedDuringATermHaltsThePublisher(t *testing.T) {
	cfg := testConfig(t)
	p, err := NewPublisher(cfg, PublisherOptions{Instance: "first", TransactionTimeout: 5 * time.Second, TopicCheckInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, events("Order-1", 1, 1), Checkpoint{Cursor: "after-1"}, nil); err != nil {
		t.Fatal(err)
	}
	topic := cfg.Topic("Order")
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("3600000")}}
	if resp, err := admin(t, cfg).AlterTopicConfigs(ctx, alter, topic); err != nil || resp[0].Err != nil {
		t.Fatalf("AlterTopicConfigs(%s) = %v, %v", topic, err, resp)
	}
	time.Sleep(100 * time.Millisecond) // past the check interval
	h := halt(t, p.Publish(ctx, events("Order-1", 2, 1), Checkpoint{Cursor: "after-2"}, nil), "topic_config")
	if h.Topic != topic || !strings.Contains(h.Message, "retention.ms=3600000") {
		t.Errorf("halt = %+v, want topic %s and retention.ms=3600000", h, topic)
	}
}
