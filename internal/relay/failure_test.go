package relay_test

import (
	"context"
	"errors"
	"fmt"
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

// TestTheBrokerStoppedDuringLoad stops the broker for ten seconds while
// events are appended: appends go on, the relay retries and catches up,
// and nothing is lost or doubled.
func TestTheBrokerStoppedDuringLoad(t *testing.T) {
	broker, err := harness.StartKafka(harness.KafkaOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Stop()
	e := newEnv(t, broker.Brokers())
	e.start(e.relay(relay.Options{BatchSize: 100}))
	stop := make(chan struct{})
	wg := load(t, e.store, stop)
	time.Sleep(1500 * time.Millisecond)
	broker.Stop()
	appendedDuring := len(e.stored())
	time.Sleep(10 * time.Second)
	if during := len(e.stored()) - appendedDuring; during < 100 {
		t.Errorf("only %d events appended while the broker was down: appends must not depend on Kafka", during)
	}
	if err := broker.Start(); err != nil {
		t.Fatalf("restart the broker: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	stored := e.stored()
	checkExactlyOnce(t, stored, e.waitPublished(len(stored), 90*time.Second))
	t.Logf("%d events published exactly once across a 10s broker outage", len(stored))
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
