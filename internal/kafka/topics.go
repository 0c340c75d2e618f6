package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-events/strata/internal/relay"
)

// Topics creates the topic of a category on first use — with the configured
// partitions, and a configuration that keeps every event for ever — and
// checks the topics the relay publishes to (Check). It is safe for
// concurrent use.
type Topics struct {
	cl  *kgo.Client
	adm *kadm.Client
	cfg Config

	mu         sync.Mutex
	partitions map[string]int
	checked    map[string]checkedTopic
}

// checkedTopic is what Check last found of a topic, and when.
type checkedTopic struct {
	partitions int
	at         time.Time
}

// categoryConfigs are the settings of a category topic Strata creates:
// records are deleted neither by age (their timestamp is the event's time,
// possibly long past) nor by size, and never compacted away, so that a
// projection rebuilt from the topic's start sees every event.
var categoryConfigs = map[string]*string{
	"cleanup.policy":  ptr("delete"),
	"retention.ms":    ptr("-1"),
	"retention.bytes": ptr("-1"),
}

// NewTopics returns Topics that ask Kafka through cl.
func NewTopics(cl *kgo.Client, cfg Config) *Topics {
	return &Topics{cl: cl, adm: kadm.NewClient(cl), cfg: cfg, partitions: map[string]int{}, checked: map[string]checkedTopic{}}
}

// Partitions returns the partition count of topic, creating the topic
// first if it does not exist. It asks Kafka once per topic.
func (t *Topics) Partitions(ctx context.Context, topic string) (int, error) {
	t.mu.Lock()
	n, ok := t.partitions[topic]
	t.mu.Unlock()
	if ok {
		return n, nil
	}
	n, err := t.ensure(ctx, topic, int32(t.cfg.Partitions), categoryConfigs)
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	t.partitions[topic] = n
	t.mu.Unlock()
	return n, nil
}

// Check returns the partition count of each of topics (category topics)
// as Kafka has it now, creating the topics that do not exist. It refuses a
// topic whose configuration lets Kafka delete events with a
// *relay.HaltError (reason "topic_config"). It asks Kafka only about the
// topics it has not checked within maxAge — a metadata request and a
// DescribeConfigs for all of them — so most calls cost nothing.
func (t *Topics) Check(ctx context.Context, topics []string, maxAge time.Duration) (map[string]int, error) {
	now := time.Now()
	counts := make(map[string]int, len(topics))
	var fresh, stale []string // never checked; checked too long ago
	t.mu.Lock()
	for _, topic := range topics {
		c, ok := t.checked[topic]
		switch {
		case !ok:
			fresh = append(fresh, topic)
		case now.Sub(c.at) >= maxAge:
			stale = append(stale, topic)
		default:
			counts[topic] = c.partitions
		}
	}
	t.mu.Unlock()
	if len(fresh) == 0 && len(stale) == 0 {
		return counts, nil
	}
	for _, topic := range fresh {
		n, err := t.ensure(ctx, topic, int32(t.cfg.Partitions), categoryConfigs)
		if err != nil {
			return nil, err
		}
		counts[topic] = n
	}
	if len(stale) > 0 {
		// Not kadm's Metadata: it answers from the client's cache, which
		// may be minutes old.
		req := kmsg.NewPtrMetadataRequest()
		for _, topic := range stale {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, t.cl)
		if err != nil {
			return nil, fmt.Errorf("metadata of topics %s: %w", strings.Join(stale, ", "), err)
		}
		for _, topic := range stale {
			i := slices.IndexFunc(resp.Topics, func(rt kmsg.MetadataResponseTopic) bool { return rt.Topic != nil && *rt.Topic == topic })
			if i < 0 {
				return nil, fmt.Errorf("metadata of topic %s: not in the answer", topic)
			}
			if err := kerr.ErrorForCode(resp.Topics[i].ErrorCode); err != nil {
				return nil, fmt.Errorf("metadata of topic %s: %w", topic, err)
			}
			counts[topic] = len(resp.Topics[i].Partitions)
		}
	}
	asked := append(fresh, stale...)
	if err := t.checkConfigs(ctx, asked, categoryProblem); err != nil {
		return nil, err
	}
	t.mu.Lock()
	for _, topic := range asked {
		t.checked[topic] = checkedTopic{partitions: counts[topic], at: now}
	}
	t.mu.Unlock()
	return counts, nil
}

// EnsureCheckpointTopic creates the compacted, one-partition topic of the
// relay's checkpoints if it does not exist, and refuses one that exists
// with a configuration that could delete the last checkpoint (a
// *relay.HaltError, reason "topic_config").
func (t *Topics) EnsureCheckpointTopic(ctx context.Context) error {
	topic := t.cfg.CheckpointTopic()
	if _, err := t.ensure(ctx, topic, 1, map[string]*string{"cleanup.policy": ptr("compact")}); err != nil {
		return err
	}
	return t.checkConfigs(ctx, []string{topic}, checkpointProblem)
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

// configProblem says what is wrong with a topic's configuration: the
// setting, its value, the value required and why; ok when nothing is.
type configProblem func(get func(key string) string) (key, value, want, why string, ok bool)

// categoryProblem: a category topic must keep every record for ever.
func categoryProblem(get func(string) string) (key, value, want, why string, ok bool) {
	if p := get("cleanup.policy"); !slices.Equal(policies(p), []string{"delete"}) {
		return "cleanup.policy", p, "delete", "a compacted topic keeps only the last record of each key, one event of each stream", false
	}
	for _, k := range []string{"retention.ms", "retention.bytes"} {
		if v := get(k); v != "-1" {
			return k, v, "-1", "Kafka deletes the oldest records past it, and a projection rebuilt from the topic's start misses them", false
		}
	}
	return "", "", "", "", true
}

// checkpointProblem: the checkpoint topic must keep each store's last
// checkpoint, or a relay starts again from the store's first event.
func checkpointProblem(get func(string) string) (key, value, want, why string, ok bool) {
	p := get("cleanup.policy")
	if !slices.Contains(policies(p), "compact") {
		return "cleanup.policy", p, "compact", "without compaction the topic only grows, and a relay reads it for ever longer", false
	}
	if slices.Contains(policies(p), "delete") {
		for _, k := range []string{"retention.ms", "retention.bytes"} {
			if v := get(k); v != "-1" {
				return k, v, "-1 (or cleanup.policy=compact alone)", "Kafka may delete a store's last checkpoint, and its relay would publish the store again from its first event", false
			}
		}
	}
	return "", "", "", "", true
}

// policies splits a cleanup.policy list, sorted.
func policies(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// checkConfigs describes the configuration of topics, in one request, and
// returns a *relay.HaltError for the first that problem finds wrong.
func (t *Topics) checkConfigs(ctx context.Context, topics []string, problem configProblem) error {
	described, err := t.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return fmt.Errorf("describe the configuration of %s: %w", strings.Join(topics, ", "), err)
	}
	for _, topic := range topics {
		rc, err := described.On(topic, nil)
		if err == nil {
			err = rc.Err
		}
		if errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) {
			return &relay.HaltError{Reason: "topic_config", Topic: topic,
				Message: fmt.Sprintf("the relay may not read the configuration of topic %s: %v", topic, err),
				Remedy:  "the relay checks that a topic keeps every event before it publishes to it: grant its principal DescribeConfigs on the topic, then restart it"}
		}
		if err != nil {
			return fmt.Errorf("the configuration of %s: %w", topic, err)
		}
		values := map[string]string{}
		for _, c := range rc.Configs {
			values[c.Key] = c.MaybeValue()
		}
		get := func(key string) string {
			if v, ok := values[key]; ok {
				return v
			}
			return "(not reported)"
		}
		if key, value, want, why, ok := problem(get); !ok {
			return &relay.HaltError{Reason: "topic_config", Topic: topic,
				Message: fmt.Sprintf("topic %s has %s=%s, and the relay requires %s=%s: %s", topic, key, value, key, want, why),
				Remedy: fmt.Sprintf("set it (kafka-configs --alter --entity-type topics --entity-name %s --add-config %s=%s) and restart the relay; "+
					"if Kafka has already deleted records of the topic, it no longer holds every event: publish the store afresh into new topics "+
					"(a new STRATA_TOPIC_PREFIX) and rebuild the projections from them", topic, key, strings.Fields(want)[0])}
		}
	}
	return nil
}

func ptr(s string) *string { return &s }
