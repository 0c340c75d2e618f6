package kafka

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/relay"
)

// admin returns an admin client of cfg's brokers, closed with the test.
func admin(t *testing.T, cfg Config) *kadm.Client {
	t.Helper()
	opts, _ := cfg.ClientOptions()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// halt returns err's *relay.HaltError, failing the test without one.
func halt(t *testing.T, err error, reason string) *relay.HaltError {
	t.Helper()
	var h *relay.HaltError
	if !errors.As(err, &h) || h.Reason != reason {
		t.Fatalf("Publish = %v, want a halt for %s", err, reason)
	}
	return h
}

// An existing category topic whose configuration lets Kafka delete events
// — by age (records carry the event's time, possibly long past), by size,
// or by compaction — halts the publisher before it publishes anything to
// it, naming the topic, the setting, its value and the value required.
func TestAnExistingTopicThatWouldLoseEventsHaltsThePublisher(t *testing.T) {
	for _, c := range []struct {
		name          string
		configs       map[string]*string
		setting, want string
	}{
		{"kept for the broker's default time", map[string]*string{}, "retention.ms=604800000", "retention.ms=-1"},
		{"kept for a day", map[string]*string{"retention.ms": ptr("86400000")}, "retention.ms=86400000", "retention.ms=-1"},
		{"kept up to a size", map[string]*string{"retention.ms": ptr("-1"), "retention.bytes": ptr("1000000")}, "retention.bytes=1000000", "retention.bytes=-1"},
		{"compacted", map[string]*string{"retention.ms": ptr("-1"), "cleanup.policy": ptr("compact")}, "cleanup.policy=compact", "cleanup.policy=delete"},
		{"compacted and deleted", map[string]*string{"retention.ms": ptr("-1"), "cleanup.policy": ptr("compact,delete")}, "cleanup.policy=compact,delete", "cleanup.policy=delete"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			topic := cfg.Topic("Order")
			if resp, err := admin(t, cfg).CreateTopic(ctx, 3, -1, c.configs, topic); err != nil || resp.Err != nil {
				t.Fatalf("CreateTopic(%s) = %v, %v", topic, err, resp.Err)
			}
			p := newPublisher(t, cfg, "first")
			if _, err := p.Init(ctx); err != nil {
				t.Fatal(err)
			}
			h := halt(t, p.Publish(ctx, events("Order-1", 1, 2), Checkpoint{Cursor: "after-2"}, nil), "topic_config")
			if h.Topic != topic || !strings.Contains(h.Message, c.setting) || !strings.Contains(h.Message, c.want) || h.Remedy == "" {
				t.Errorf("halt = %+v, want topic %s, %s, %s required, and a remedy", h, topic, c.setting, c.want)
			}
			if records := consume(t, cfg, topic); len(records) != 0 {
				t.Errorf("%s holds %d records, want none", topic, len(records))
			}
		})
	}
}

// An existing topic that keeps every event is published to, whatever else
// it sets.
func TestAnExistingTopicThatKeepsEverythingIsPublishedTo(t *testing.T) {
	cfg := testConfig(t)
	topic := cfg.Topic("Order")
	configs := map[string]*string{"retention.ms": ptr("-1"), "max.message.bytes": ptr("2000000")}
	if resp, err := admin(t, cfg).CreateTopic(ctx, 3, -1, configs, topic); err != nil || resp.Err != nil {
		t.Fatalf("CreateTopic(%s) = %v, %v", topic, err, resp.Err)
	}
	p := newPublisher(t, cfg, "first")
	if _, err := p.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, events("Order-1", 1, 2), Checkpoint{Cursor: "after-2"}, nil); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	if records := consume(t, cfg, topic); len(records) != 2 {
		t.Errorf("%s holds %d records, want 2", topic, len(records))
	}
}

// An existing checkpoint topic that could delete a store's last checkpoint
// — and make its relay publish the store again from its first event — halts
// the publisher at Init.
func TestACheckpointTopicThatCouldLoseTheCheckpointHaltsInit(t *testing.T) {
	for _, c := range []struct {
		name          string
		configs       map[string]*string
		setting, want string
	}{
		{"not compacted", map[string]*string{}, "cleanup.policy=delete", "cleanup.policy=compact"},
		{"compacted and deleted by time", map[string]*string{"cleanup.policy": ptr("compact,delete")}, "retention.ms=604800000", "retention.ms=-1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			topic := cfg.CheckpointTopic()
			if resp, err := admin(t, cfg).CreateTopic(ctx, 1, -1, c.configs, topic); err != nil || resp.Err != nil {
				t.Fatalf("CreateTopic(%s) = %v, %v", topic, err, resp.Err)
			}
			cp, err := newPublisher(t, cfg, "first").Init(ctx)
			var h *relay.HaltError
			if !errors.As(err, &h) || h.Reason != "topic_config" {
				t.Fatalf("Init = %+v, %v; want a halt for topic_config", cp, err)
			}
			if h.Topic != topic || !strings.Contains(h.Message, c.setting) || !strings.Contains(h.Message, c.want) {
				t.Errorf("halt = %+v, want topic %s, %s, %s required", h, topic, c.setting, c.want)
			}
		})
	}
	t.Run("compacted, and deleted neither by time nor by size", func(t *testing.T) {
		cfg := testConfig(t)
		configs := map[string]*string{"cleanup.policy": ptr("compact,delete"), "retention.ms": ptr("-1")}
		if resp, err := admin(t, cfg).CreateTopic(ctx, 1, -1, configs, cfg.CheckpointTopic()); err != nil || resp.Err != nil {
			t.Fatalf("CreateTopic = %v, %v", err, resp.Err)
		}
		if _, err := newPublisher(t, cfg, "first").Init(ctx); err != nil {
			t.Errorf("Init = %v, want it accepted", err)
		}
	})
}
