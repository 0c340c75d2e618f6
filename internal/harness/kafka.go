package harness

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EnvKafkaBrokers names existing brokers for the tests instead of the
// embedded one.
const EnvKafkaBrokers = "STRATA_TEST_KAFKA_BROKERS"

// KafkaOptions configures an embedded broker. The zero value suits tests.
type KafkaOptions struct {
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Dir persists the broker's state, so that a broker started again on
	// it has the same topics, records and transactions; "" keeps all in
	// memory.
	Dir string
	// Partitions is the default partition count of auto-created topics.
	Partitions int
	// AutoCreateTopics lets producers create topics by writing to them,
	// as Kafka's auto.create.topics.enable does; off, topics must be
	// created first (Strata creates its own).
	AutoCreateTopics bool
	// MinSessionTimeout is the least consumer-group session timeout the
	// broker accepts; 0 keeps Kafka's 6s.
	MinSessionTimeout time.Duration
}

// KafkaCluster is an embedded Kafka-protocol broker, franz-go's kfake,
// running in this process: transactions, consumer groups and, with a Dir,
// persistence. Its methods are not safe for concurrent use.
type KafkaCluster struct {
	opts    KafkaOptions
	cluster *kfake.Cluster
	addr    string
}

// StartKafka starts an embedded broker.
func StartKafka(opts KafkaOptions) (*KafkaCluster, error) {
	k := &KafkaCluster{opts: opts}
	if err := k.Start(); err != nil {
		return nil, err
	}
	return k, nil
}

// Start starts a stopped broker again, on the same port and with the same
// state when it has a Dir.
func (k *KafkaCluster) Start() error {
	if k.cluster != nil {
		return fmt.Errorf("the broker is already running")
	}
	port := k.opts.Port
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return err
		}
		port, k.opts.Port = p, p
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port)}
	if k.opts.Dir != "" {
		opts = append(opts, kfake.DataDir(k.opts.Dir))
	}
	if k.opts.Partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(k.opts.Partitions))
	}
	if k.opts.MinSessionTimeout > 0 {
		opts = append(opts, kfake.GroupMinSessionTimeout(k.opts.MinSessionTimeout))
	}
	if k.opts.AutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start the embedded Kafka broker on port %d: %w", port, err)
	}
	k.cluster, k.addr = c, c.ListenAddrs()[0]
	return nil
}

// Stop stops the broker; with a Dir its state is saved for Start.
func (k *KafkaCluster) Stop() {
	if k.cluster != nil {
		k.cluster.Close()
		k.cluster = nil
	}
}

// Brokers returns the broker's address as a seed list.
func (k *KafkaCluster) Brokers() []string { return []string{k.addr} }

// Cluster returns the running kfake cluster, for tests that intercept its
// requests.
func (k *KafkaCluster) Cluster() *kfake.Cluster { return k.cluster }

// KafkaBrokers returns brokers for a test: $STRATA_TEST_KAFKA_BROKERS, or
// the package's embedded broker, started on first use and stopped by Main.
// Tests keep apart by topic prefix and store name (see UniqueName).
func KafkaBrokers(tb testing.TB) []string {
	tb.Helper()
	if b := os.Getenv(EnvKafkaBrokers); b != "" {
		return strings.Split(b, ",")
	}
	sharedKafka.Lock()
	defer sharedKafka.Unlock()
	if os.Getenv(EnvBackend) == "containers" {
		if sharedKafka.brokers == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			brokers, stop, err := startKafkaContainer(ctx)
			if err != nil {
				tb.Fatalf("no Kafka for the tests: %v", err)
			}
			sharedKafka.brokers = brokers
			registerStop(stop)
		}
		return sharedKafka.brokers
	}
	if sharedKafka.cluster == nil {
		// Tests of crashed workers wait out session timeouts: let them
		// be short.
		k, err := StartKafka(KafkaOptions{MinSessionTimeout: 500 * time.Millisecond})
		if err != nil {
			tb.Fatalf("no Kafka for the tests: %v", err)
		}
		sharedKafka.cluster = k
		registerStop(k.Stop)
	}
	return sharedKafka.cluster.Brokers()
}

// UniqueName returns prefix followed by random hex digits: a topic prefix,
// store name or group of a test's own.
func UniqueName(prefix string) string { return prefix + randomHex(5) }
