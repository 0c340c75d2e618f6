package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/storetest"
)

// load appends from a few writers until stop is closed.
func load(t *testing.T, s eventstore.Store, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				stream := eventstore.MustParseStreamID(fmt.Sprintf("%s-l%d", []string{"Order", "Customer"}[i%2], w*10+i%10))
				if _, err := s.Append(ctx, stream, eventstore.Any, storetest.Events(1+i%4, "load")); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return &wg
}

// TestRelaysCrashingAtRandomPointsPublishExactlyOnce stops relays, one
// after another, at random points of their work — before initialising,
// after reading, before publishing, just before and just after the commit —
// while events keep being appended. Whatever each one left behind, the
// topics end with every event exactly once.
func TestRelaysCrashingAtRandomPointsPublishExactlyOnce(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t))
	stop := make(chan struct{})
	wg := load(t, e.store, stop)
	points := []string{"init", "read", "publish", "commit", "published"}
	crashes := map[string]int{}
	for i := 0; i < 24; i++ {
		point := points[i%len(points)]
		skip := rand.IntN(4) // let it get through a few passes first
		if point == "init" {
			skip = 0 // a relay initialises once, unless publishing fails
		}
		var passes atomic.Int32
		r := e.relay(relay.Options{BatchSize: 1 + rand.IntN(40), Fault: func(p string) error {
			if p == point && passes.Add(1) > int32(skip) {
				return errors.New("crash")
			}
			return nil
		}})
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.Run(rctx)
		cancel()
		if err == nil || err.Error() != "relay stopped at "+point {
			t.Fatalf("relay %d: Run = %v, want a stop at %s", i, err, point)
		}
		crashes[point]++
	}
	close(stop)
	wg.Wait()

	e.start(e.relay(relay.Options{}))
	stored := e.stored()
	checkExactlyOnce(t, stored, e.waitPublished(len(stored), 60*time.Second))
	t.Logf("%d crashes %v; %d events published exactly once", 24, crashes, len(stored))
}

// A zombie relay — paused just before its commit while its lease is cut and
// another relay takes over — must not publish anything twice.
func TestAZombieRelayPublishesNothingTwice(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t))
	appendEvents(t, e.store, 6, 3, "z")
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	zombie := e.relay(relay.Options{BatchSize: 5, Fault: func(p string) error {
		if p == "commit" {
			once.Do(func() { close(paused); <-resume })
		}
		return nil
	}})
	zctx, zcancel := context.WithCancel(ctx)
	defer zcancel()
	zdone := make(chan error, 1)
	go func() { zdone <- zombie.Run(zctx) }()
	<-paused

	// The zombie's lease session is cut, as a network failure would; the
	// successor gets the lease and fences the zombie's producer.
	e.mu.Lock()
	zombieLease := e.leases[len(e.leases)-1]
	e.mu.Unlock()
	if _, err := e.store.Pool().Exec(ctx, "SELECT pg_terminate_backend($1)", int64(zombieLease.PID())); err != nil {
		t.Fatal(err)
	}
	e.start(e.relay(relay.Options{}))
	stored := e.stored()
	if published := e.waitPublished(len(stored), 30*time.Second); len(published) != len(stored) {
		t.Fatalf("the successor published %d of %d events", len(published), len(stored))
	}
	close(resume) // the zombie wakes and tries to commit
	time.Sleep(2 * time.Second)
	zcancel()
	<-zdone
	appendEvents(t, e.store, 6, 1, "after")
	stored = e.stored()
	checkExactlyOnce(t, stored, e.waitPublished(len(stored), 30*time.Second))
}

// fill appends n events in appends of 500 over streams of its own.
func fill(t *testing.T, s eventstore.Store, n int, prefix string) {
	t.Helper()
	for i := 0; i < n; i += 500 {
		stream := fmt.Sprintf("%s-%s%d", []string{"Order", "Customer"}[i/500%2], prefix, i/500%40)
		storetest.MustAppend(t, s, stream, eventstore.Any, storetest.Events(min(500, n-i), fmt.Sprint(prefix, i))...)
	}
}

// waitUntil polls ok every 20ms and returns how long it took to hold; it
// fails the test when ok does not hold within limit.
func waitUntil(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// stopAndCheck stops the load, waits until the relay has published every
// stored event and checks that it did so exactly once; it returns how many.
func (e *env) stopAndCheck(stop chan struct{}, load *sync.WaitGroup) int {
	e.t.Helper()
	close(stop)
	load.Wait()
	stored := e.stored()
	checkExactlyOnce(e.t, stored, e.waitPublished(len(stored), 120*time.Second))
	return len(stored)
}

// resumeLimit is how soon after Kafka answers again the relay must
// publish again. The publisher gives up on any call at half its
// transaction timeout (5s here), and the relay waits at most MaxBackoff
// (500ms here) before it tries again: 5s leaves room for a new
// publisher's Init on a loaded machine.
const resumeLimit = 5 * time.Second

// TestTheBrokerStoppedDuringLoad stops the broker while events are
// appended, until the relay has a backlog of 200,000 events: appends go on,
// the relay publishes again within seconds of the broker's return, and
// catches up with nothing lost or doubled.
func TestTheBrokerStoppedDuringLoad(t *testing.T) {
	broker, err := harness.StartKafka(harness.KafkaOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Stop()
	e := newEnv(t, broker.Brokers())
	r := e.relay(relay.Options{})
	e.start(r)
	stop := make(chan struct{})
	wg := load(t, e.store, stop)
	waitUntil(t, 30*time.Second, "the relay publishes before the outage", func() bool { return r.Published() > 0 })

	broker.Stop()
	fill(t, e.store, 200_000, "backlog") // appends do not depend on Kafka
	before := r.Published()
	if err := broker.Start(); err != nil {
		t.Fatalf("restart the broker: %v", err)
	}
	resumed := waitUntil(t, 60*time.Second, "publishing after the broker's return", func() bool { return r.Published() > before })
	if resumed > resumeLimit {
		t.Errorf("the relay published again %s after the broker's return, want within %s", resumed, resumeLimit)
	}
	n := e.stopAndCheck(stop, wg)
	t.Logf("%d events published exactly once across a broker restart with a backlog of %d; publishing again %s after the restart",
		n, int64(n)-before, resumed.Round(time.Millisecond))
}

// warnings records when the relay logged each warning.
type warnings struct {
	mu    sync.Mutex
	times []time.Time
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.times = append(w.times, r.Time)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// firstAfter returns the first warning at or after t, or the zero time.
func (w *warnings) firstAfter(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.times {
		if !at.Before(t) {
			return at
		}
	}
	return time.Time{}
}

// TestABrokerThatStopsAnsweringHoldsNoCallPastItsTimeout cuts the network
// to the broker without closing a connection — a partition, where TCP
// retransmits and nothing answers — during load. No call of the relay
// waits past the transaction timeout: the relay gives up, says so, and
// tries again; and it publishes again within seconds of the cut's end.
func TestABrokerThatStopsAnsweringHoldsNoCallPastItsTimeout(t *testing.T) {
	broker, err := harness.StartKafka(harness.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Stop()
	e := newEnv(t, broker.Brokers())
	warned := &warnings{}
	r := e.relay(relay.Options{Logger: slog.New(warned)})
	e.start(r)
	stop := make(chan struct{})
	wg := load(t, e.store, stop)
	waitUntil(t, 30*time.Second, "the relay publishes before the cut", func() bool { return r.Published() > 0 })

	broker.Blackhole(true)
	cut := time.Now()
	const txnTimeout = 5 * time.Second // the test publishers'
	failed := waitUntil(t, 3*txnTimeout, "the relay gives up on a broker that does not answer", func() bool {
		return !warned.firstAfter(cut).IsZero()
	})
	if failed > txnTimeout {
		t.Errorf("the relay's first failure came %s after the cut, want within the transaction timeout (%s)", failed, txnTimeout)
	}
	fill(t, e.store, 20_000, "cut")
	before := r.Published()
	broker.Blackhole(false)
	resumed := waitUntil(t, 60*time.Second, "publishing after the cut", func() bool { return r.Published() > before })
	if resumed > resumeLimit {
		t.Errorf("the relay published again %s after the cut ended, want within %s", resumed, resumeLimit)
	}
	n := e.stopAndCheck(stop, wg)
	t.Logf("%d events published exactly once across a network cut; the relay gave up after %s and published again %s after the cut ended",
		n, failed.Round(time.Millisecond), resumed.Round(time.Millisecond))
}

// TestAStandbyTakesOverWithinSeconds runs two relays; when the active one
// dies, the other publishes within seconds.
func TestAStandbyTakesOverWithinSeconds(t *testing.T) {
	e := newEnv(t, harness.KafkaBrokers(t))
	first := e.relay(relay.Options{})
	stopFirst := e.start(first)
	appendEvents(t, e.store, 3, 2, "one")
	if got := e.waitPublished(len(e.stored()), 20*time.Second); len(got) != len(e.stored()) {
		t.Fatalf("the first relay published %d of %d", len(got), len(e.stored()))
	}
	e.start(e.relay(relay.Options{})) // stands by: the first holds the lease
	stopFirst()                       // the active relay dies
	died := time.Now()
	appendEvents(t, e.store, 3, 2, "two")
	stored := e.stored()
	published := e.waitPublished(len(stored), 20*time.Second)
	if took := time.Since(died); len(published) != len(stored) || took > 10*time.Second {
		t.Errorf("after the active relay died, %d of %d events were published in %s", len(published), len(stored), took)
	}
	checkExactlyOnce(t, stored, published)
}

// A store created anew beside topics that hold another store's events (the
// same store name and prefix) must not resume from that store's checkpoint.
func TestARelayRefusesAnotherStoresCheckpoint(t *testing.T) {
	first := newEnv(t, harness.KafkaBrokers(t))
	appendEvents(t, first.store, 3, 2, "first")
	stopFirst := first.start(first.relay(relay.Options{}))
	if got := first.waitPublished(len(first.stored()), 20*time.Second); len(got) != len(first.stored()) {
		t.Fatalf("the first store's relay published %d of %d", len(got), len(first.stored()))
	}
	stopFirst()

	second := newEnv(t, harness.KafkaBrokers(t))
	second.kafka = first.kafka // the same topics and transactional id
	appendEvents(t, second.store, 3, 2, "second")
	second.start(second.relay(relay.Options{}))
	time.Sleep(3 * time.Second)
	for _, m := range second.published() {
		if _, ok := second.stored()[m.ID]; ok {
			t.Fatalf("the second store's event %s was published from the first store's checkpoint", m.ID)
		}
	}
}
