package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Topics creates the topic of a category on first use — with the configured
// partitions and retention.ms=-1 (events are kept forever) — and remembers
// each topic's partition count. It is safe for concurrent use.
type Topics struct {
	adm *kadm.Client
	cfg Config

	mu         sync.Mutex
	partitions map[string]int
}

// NewTopics returns Topics that create through adm.
func NewTopics(adm *kadm.Client, cfg Config) *Topics {
	return &Topics{adm: adm, cfg: cfg, partitions: map[string]int{}}
}

// Partitions returns the partition count of topic, creating the topic
// first if it does not exist.
func (t *Topics) Partitions(ctx context.Context, topic string) (int, error) {
	t.mu.Lock()
	n, ok := t.partitions[topic]
	t.mu.Unlock()
	if ok {
		return n, nil
	}
	n, err := t.ensure(ctx, topic, int32(t.cfg.Partitions), map[string]*string{"retention.ms": ptr("-1")})
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	t.partitions[topic] = n
	t.mu.Unlock()
	return n, nil
}

// EnsureCheckpointTopic creates the compacted, one-partition topic of the
// relay's checkpoints if it does not exist.
func (t *Topics) EnsureCheckpointTopic(ctx context.Context) error {
	_, err := t.ensure(ctx, t.cfg.CheckpointTopic(), 1, map[string]*string{"cleanup.policy": ptr("compact")})
	return err
}

func (t *Topics) ensure(ctx context.Context, topic string, partitions int32, configs map[string]*string) (int, error) {
	resp, err := t.adm.CreateTopic(ctx, partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %s: %w", topic, err)
	}
	// A new topic may take a moment to show in the metadata.
	for wait := 20 * time.Millisecond; ; wait *= 2 {
		m, err := t.adm.Metadata(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("metadata of topic %s: %w", topic, err)
		}
		if d, ok := m.Topics[topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
			return len(d.Partitions), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(min(wait, time.Second)):
		}
	}
}

func ptr(s string) *string { return &s }
