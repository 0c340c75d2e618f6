package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/memstore"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/storetest"
)

// These tests need neither PostgreSQL nor Kafka: the relay's reports
// depend only on its loop.

// memSource is a memstore as the relay's source.
type memSource struct{ *memstore.Store }

func (memSource) ID() eventstore.UUID { return eventstore.UUID{1} }

// heldLease is a lease that is never lost.
type heldLease struct{}

func (heldLease) Check(context.Context) error { return nil }
func (heldLease) Release()                    {}

// memKafka is what the publishers of a relay commit to, in memory.
type memKafka struct {
	mu        sync.Mutex
	cp        relay.Checkpoint
	published int
	halt      *relay.HaltError // Publish returns it, when set
}

func (k *memKafka) newPublisher() (relay.Publisher, error) { return &memPublisher{k: k}, nil }

func (k *memKafka) publishedCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.published
}

type memPublisher struct {
	k         *memKafka
	committed relay.Checkpoint
}

func (p *memPublisher) Init(context.Context) (relay.Checkpoint, error) {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	p.committed = p.k.cp
	return p.committed, nil
}

func (p *memPublisher) Publish(ctx context.Context, events []relay.Event, cp relay.Checkpoint, beforeCommit func(context.Context) error) error {
	if p.k.halt != nil {
		return p.k.halt
	}
	if err := beforeCommit(ctx); err != nil {
		return err
	}
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	cp.Relay, cp.At, cp.Partitions = "mem", time.Now(), map[string]int{"events.Order": 3}
	p.k.cp, p.committed = cp, cp
	p.k.published += len(events)
	return nil
}

func (p *memPublisher) Committed() relay.Checkpoint { return p.committed }
func (p *memPublisher) Close()                      {}

// reports records the reports a relay makes, and answers them with err.
type reports struct {
	mu   sync.Mutex
	got  []eventstore.RelayReport
	at   []time.Time
	err  error
	hang bool // wait for the call's context to end
}

func (r *reports) report(ctx context.Context, rep eventstore.RelayReport) error {
	r.mu.Lock()
	r.got, r.at = append(r.got, rep), append(r.at, time.Now())
	hang, err := r.hang, r.err
	r.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (r *reports) all() ([]eventstore.RelayReport, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventstore.RelayReport(nil), r.got...), append([]time.Time(nil), r.at...)
}

// memRelay runs a relay over store and k, reporting to rep, until the test
// ends or stop is called; stop returns Run's error.
func memRelay(t *testing.T, store *memstore.Store, k *memKafka, rep *reports, opts relay.Options) (r *relay.Relay, stop func() error) {
	t.Helper()
	opts.PollInterval, opts.Report, opts.Instance = 5*time.Millisecond, rep.report, "host/42"
	if opts.BatchSize == 0 {
		opts.BatchSize = 1
	}
	leases := relay.LeasesFunc(func(context.Context) (relay.Lease, error) { return heldLease{}, nil })
	r = relay.New(memSource{store}, schemaIDs{}, leases, k.newPublisher, opts)
	return r, run(t, r)
}

// appendFor appends one event every few milliseconds for d, and returns
// how many.
func appendFor(t *testing.T, s eventstore.Store, d time.Duration) int {
	t.Helper()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		storetest.MustAppend(t, s, fmt.Sprint("Order-", n%5), eventstore.Any, storetest.Events(1, "r")...)
		time.Sleep(3 * time.Millisecond)
	}
	return n
}

func TestTheRelayReportsItsTermAndThenCommitsAtMostOnceASecond(t *testing.T) {
	store, k, rep := memstore.New(), &memKafka{}, &reports{}
	before := time.Now()
	memRelay(t, store, k, rep, relay.Options{})
	n := appendFor(t, store, 2500*time.Millisecond)
	waitUntil(t, 5*time.Second, "every event published and the last commit reported", func() bool {
		got, _ := rep.all()
		return k.publishedCount() == n && len(got) > 0 && got[len(got)-1].Checkpoint.Published == int64(n)
	})

	got, at := rep.all()
	// The start is reported at once, with the latest state: a commit that
	// came before the report went out may be in it already.
	if first := got[0]; first.Instance != "host/42" || first.ActiveSince.Before(before) || first.Halted != nil {
		t.Errorf("first report = %+v, want the term's start by host/42", first)
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < relay.ReportInterval-10*time.Millisecond {
			t.Errorf("reports %d and %d came %s apart, want at least %s", i-1, i, gap, relay.ReportInterval)
		}
	}
	if len(got) > 5 || n < 50 {
		t.Errorf("%d events in commits of one made %d reports over about 3s; want at most 5", n, len(got))
	}
	last := got[len(got)-1]
	if last.Checkpoint.At.IsZero() || last.Checkpoint.Partitions["events.Order"] != 3 || last.Checkpoint.Position != int64(n) ||
		!last.ActiveSince.Equal(got[0].ActiveSince) {
		t.Errorf("last report = %+v, want the committed checkpoint as the publisher has it, in the same term", last)
	}
}

func TestAFailingReporterNeitherStopsNorSlowsTheRelay(t *testing.T) {
	t.Run("one that fails at once is tried again, and logged once", func(t *testing.T) {
		store, k, rep := memstore.New(), &memKafka{}, &reports{err: errors.New("database down")}
		warned := &warnings{}
		memRelay(t, store, k, rep, relay.Options{Logger: slog.New(warned)})
		n := appendFor(t, store, 2500*time.Millisecond)
		waitUntil(t, 2*time.Second, "every event published", func() bool { return k.publishedCount() == n })
		got, _ := rep.all()
		if len(got) < 2 || len(got) > 5 {
			t.Errorf("the failing reporter was called %d times in about 2.5s, want a few tries, at most one a second", len(got))
		}
		warned.mu.Lock()
		defer warned.mu.Unlock()
		if len(warned.times) != 1 {
			t.Errorf("%d warnings for %d failed reports, want 1 a minute", len(warned.times), len(got))
		}
	})
	t.Run("one that hangs holds up neither publishing nor stopping", func(t *testing.T) {
		store, k, rep := memstore.New(), &memKafka{}, &reports{hang: true}
		for i := range 300 {
			storetest.MustAppend(t, store, fmt.Sprint("Order-", i%5), eventstore.Any, storetest.Events(1, "h")...)
		}
		_, stop := memRelay(t, store, k, rep, relay.Options{})
		waitUntil(t, 3*time.Second, "300 events published in commits of one", func() bool { return k.publishedCount() == 300 })
		start := time.Now()
		if err := stop(); err != nil || time.Since(start) > time.Second {
			t.Errorf("Run = %v after %s with a report hanging; want nil at once", err, time.Since(start))
		}
	})
}

func TestAHaltIsReportedAtOnce(t *testing.T) {
	store := memstore.New()
	storetest.MustAppend(t, store, "Order-1", eventstore.Any, storetest.Events(1, "big")...)
	k := &memKafka{halt: &relay.HaltError{Reason: "event_too_large", Message: "too large", Remedy: "raise the limit"}}
	rep := &reports{}
	r, _ := memRelay(t, store, k, rep, relay.Options{})
	waitUntil(t, 3*time.Second, "the halt reported", func() bool {
		got, _ := rep.all()
		return len(got) > 0 && got[len(got)-1].Halted != nil
	})
	got, _ := rep.all()
	h := got[len(got)-1].Halted
	if st := r.Status(); h.Reason != "event_too_large" || h.Message != "too large" || h.Remedy != "raise the limit" ||
		st.Halted == nil || !h.Since.Equal(st.Halted.Since) {
		t.Errorf("reported halt = %+v, want the relay's (%+v)", h, st.Halted)
	}
}
