package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
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
// persistence. Its methods are not safe for concurrent use, except
// Blackhole.
type KafkaCluster struct {
	opts    KafkaOptions
	cluster *kfake.Cluster
	addr    string
	gate    *gate
}

// StartKafka starts an embedded broker.
func StartKafka(opts KafkaOptions) (*KafkaCluster, error) {
	k := &KafkaCluster{opts: opts, gate: newGate()}
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
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.ListenFn(k.listen)}
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

// Blackhole cuts the network between the broker and its clients, or with
// false restores it: while it is cut the broker accepts connections, and
// every byte either way is held back, as a partition that TCP retransmits
// across would. Requests sent meanwhile reach the broker when the cut
// ends, and their answers the clients. It is safe to call at any time,
// from any goroutine, and lasts across Stop and Start.
func (k *KafkaCluster) Blackhole(cut bool) { k.gate.set(cut) }

func (k *KafkaCluster) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &gatedListener{Listener: ln, gate: k.gate}, nil
}

// gate holds traffic back while a blackhole is on.
type gate struct {
	mu   sync.Mutex
	flow chan struct{} // closed while traffic flows
}

func newGate() *gate {
	g := &gate{flow: make(chan struct{})}
	close(g.flow)
	return g
}

func (g *gate) set(cut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.flow: // flowing
		if cut {
			g.flow = make(chan struct{})
		}
	default:
		if !cut {
			close(g.flow)
		}
	}
}

// wait returns true when traffic may flow, false when done is closed first.
func (g *gate) wait(done <-chan struct{}) bool {
	g.mu.Lock()
	flow := g.flow
	g.mu.Unlock()
	select {
	case <-flow:
		return true
	case <-done:
		return false
	}
}

type gatedListener struct {
	net.Listener
	gate *gate
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, gate: l.gate, done: make(chan struct{})}, nil
}

// gatedConn is the broker's end of a connection, held back by its gate.
type gatedConn struct {
	net.Conn
	gate *gate
	done chan struct{}
	once sync.Once
}

func (c *gatedConn) Read(b []byte) (int, error) {
	if !c.gate.wait(c.done) {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(b)
	if n > 0 && !c.gate.wait(c.done) { // arrived while cut: held until the cut ends
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *gatedConn) Write(b []byte) (int, error) {
	if !c.gate.wait(c.done) {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
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
