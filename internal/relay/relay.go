// Package relay is the transactional outbox relay: it reads the store's
// committed events in order and publishes each exactly once to Kafka.
//
// One relay of a store is active at a time: it holds the store's relay
// lease, and others stand by until the lease is free. The active relay
// reads a batch after its checkpoint, and publishes the batch and the
// checkpoint after it in one Kafka transaction, so that records and
// checkpoint commit together. It trusts nothing it has not seen committed:
// after any failure it initialises its publisher again, which fences older
// relays and reads the last committed checkpoint back from Kafka.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata/internal/eventstore"
)

// Checkpoint is the relay's progress: the store's cursor after the last
// published event. It commits with the records it covers.
type Checkpoint struct {
	Cursor eventstore.Cursor `json:"cursor"`
	// Position is the last published event's global position and
	// Published the number of events published so far: for people.
	Position  int64 `json:"position"`
	Published int64 `json:"published"`
	// Store is the identity of the store the cursor belongs to.
	Store string    `json:"store"`
	Relay string    `json:"relay"`
	At    time.Time `json:"at"`
	// Partitions is the partition count each topic's records were
	// published with, by topic: the publisher keeps it, so that a stream
	// never moves to another partition (a topic whose count changed
	// halts it). Checkpoints from before it have none.
	Partitions map[string]int `json:"partitions,omitempty"`
}

// Event is a stored event with the registry id of its schema.
type Event struct {
	eventstore.RecordedEvent
	SchemaID int
}

// Source is the store, read in position order. ID identifies it, so that a
// checkpoint is only ever resumed in the store it was made in.
type Source interface {
	ReadAll(ctx context.Context, after eventstore.Cursor, limit int) (eventstore.Page, error)
	ID() eventstore.UUID
}

// Schemas gives the registry id of a stored event's schema.
type Schemas interface {
	SchemaID(ctx context.Context, fp eventstore.Fingerprint) (int, error)
}

// Lease is the store's relay lease, held while Check returns nil.
type Lease interface {
	Check(ctx context.Context) error
	Release()
}

// Leases hands out the lease: Acquire waits until it is free.
type Leases interface {
	Acquire(ctx context.Context) (Lease, error)
}

// LeasesFunc is a function that acquires the lease, as Leases.
type LeasesFunc func(ctx context.Context) (Lease, error)

// Acquire calls f.
func (f LeasesFunc) Acquire(ctx context.Context) (Lease, error) { return f(ctx) }

// Publisher writes to Kafka. Init fences older publishers and returns the
// last committed checkpoint; Publish commits events and a checkpoint in
// one transaction, after beforeCommit, and returns an error wrapping
// ErrFenced when another publisher has taken over. Committed returns the
// checkpoint last committed, as Kafka holds it: with the relay's name, the
// time and the partition counts the publisher adds to it.
type Publisher interface {
	Init(ctx context.Context) (Checkpoint, error)
	Publish(ctx context.Context, events []Event, cp Checkpoint, beforeCommit func(context.Context) error) error
	Committed() Checkpoint
	Close()
}

// ErrFenced means a newer relay took over.
var ErrFenced = errors.New("fenced: another relay of this store has taken over")

// Defaults for Options.
const (
	DefaultBatchSize = 1000
	// DefaultMaxBatchBytes bounds a batch's events by size: far below
	// franz-go's 100 MiB limit on one produce request
	// (BrokerMaxWriteBytes), and small enough to produce well within
	// half the transaction timeout.
	DefaultMaxBatchBytes = 16 << 20
	DefaultPollInterval  = 50 * time.Millisecond
	// DefaultMaxBackoff is short because it is also how late the relay
	// may notice that Kafka is back after an outage: a relay that waits
	// at most 2s between attempts publishes again within about 2s of the
	// broker's return.
	DefaultMaxBackoff = 2 * time.Second
)

// Options configures a Relay; the zero value gives the defaults.
type Options struct {
	// BatchSize bounds the events of one transaction; default 1000.
	BatchSize int
	// MaxBatchBytes bounds the size of one transaction's events (their
	// data, ids and metadata, as EventBytes counts them); default 16 MiB.
	// A batch holds at least one event, whatever its size: the
	// publisher refuses one too large for Kafka with a HaltError.
	MaxBatchBytes int
	// PollInterval is how often the relay looks for events appended by
	// other writers; those of this process wake it at once (Notify).
	// Default 50ms.
	PollInterval time.Duration
	// LeaseCheckInterval is how often an idle relay checks that it still
	// holds its lease; a busy one checks before every commit. Default 2s.
	LeaseCheckInterval time.Duration
	// MaxBackoff bounds the wait between attempts after failures;
	// default 2s (DefaultMaxBackoff).
	MaxBackoff time.Duration
	// Fault, when set, is called at named points of the relay's work;
	// an error from it stops this relay there, as a crash would. For
	// tests: "init", "read", "publish", "commit", "published".
	Fault func(point string) error
	// Report, when set, is given the relay's state while it is the
	// active relay: when a term begins (after the checkpoint is loaded),
	// after commits at most once per ReportInterval, and when it halts
	// (postgres.Store.SaveRelayReport keeps it for every writer to
	// tell). It is called from a goroutine of its own, one call at a time,
	// with the latest state only, so that it never holds publishing up;
	// its ctx ends after 5s, and when the relay gives its lease up, and it
	// must return soon after. A failed report is logged
	// (at most once a minute) and tried again with the latest state after
	// the interval.
	Report func(ctx context.Context, r eventstore.RelayReport) error
	// Instance names this relay in its reports (as
	// kafka.PublisherOptions.Instance does in checkpoints).
	Instance string
	Logger   *slog.Logger
	Metrics  prometheus.Registerer
}

// Relay publishes the store's events. Run it; it is safe to call Notify
// from any goroutine.
type Relay struct {
	src          Source
	schemas      Schemas
	leases       Leases
	newPublisher func() (Publisher, error)
	opts         Options
	log          *slog.Logger
	wake         chan struct{}
	metrics      *metrics
	reports      *reporter    // nil: no Options.Report
	lastCommit   atomic.Int64 // UnixNano of the last committed checkpoint
	committed    atomic.Int64 // batches committed
	events       atomic.Int64 // events published in committed batches
	failedSince  atomic.Int64 // UnixNano of the first failure since the last commit, or 0
	active       atomic.Bool
	halted       atomic.Pointer[Halt]
	avgBytes     atomic.Int64 // the average size of the events read lately, for the read limit
}

// New returns a relay. newPublisher makes a publisher for each term as the
// active relay (and after failures).
func New(src Source, schemas Schemas, leases Leases, newPublisher func() (Publisher, error), opts Options) *Relay {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.LeaseCheckInterval <= 0 {
		opts.LeaseCheckInterval = 2 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = prometheus.NewRegistry()
	}
	r := &Relay{src: src, schemas: schemas, leases: leases, newPublisher: newPublisher, opts: opts,
		log: opts.Logger.With("component", "relay"), wake: make(chan struct{}, 1)}
	r.metrics = newMetrics(opts.Metrics, r)
	r.reports = newReporter(opts, r.log)
	return r
}

// Notify tells the relay that events were appended, so that it reads at
// once instead of at its next poll. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// crashError stops the relay where a Fault said so; Run returns it.
type crashError struct{ point string }

func (e *crashError) Error() string { return "relay stopped at " + e.point }

// Run stands by until it holds the lease, publishes while it holds it, and
// stands by again when it loses it. It returns nil when ctx ends, and the
// error of a Fault.
func (r *Relay) Run(ctx context.Context) error {
	for attempt := 0; ctx.Err() == nil; {
		r.log.Info("standing by for the relay lease")
		lease, err := r.leases.Acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Warn("could not acquire the relay lease", "error", err)
			attempt++
			r.sleep(ctx, attempt)
			continue
		}
		r.log.Info("holding the relay lease: publishing")
		r.metrics.active.Set(1)
		r.active.Store(true)
		stopReports := r.reports.run(ctx)
		err = r.lead(ctx, lease, time.Now())
		stopReports()
		r.active.Store(false)
		r.metrics.active.Set(0)
		lease.Release()
		var crash *crashError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &crash):
			return err
		default: // fenced, or the lease lost: another relay may lead now
			r.log.Warn("stopped publishing; standing by", "error", err)
			attempt = 0
		}
	}
	return nil
}

// lead publishes while the relay holds lease, which it took at since.
// Each term starts from the committed checkpoint of a new publisher; a
// failure ends the term. The backoff grows with failures in a row: a term
// that committed something starts the count again, or an outage late in a
// long run would be met with the longest waits at once.
func (r *Relay) lead(ctx context.Context, lease Lease, since time.Time) error {
	for failures := 0; ctx.Err() == nil; failures++ {
		before := r.committed.Load()
		err := r.term(ctx, lease, since)
		if r.committed.Load() > before {
			failures = 0
		}
		var crash *crashError
		var halt *HaltError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &crash), errors.Is(err, ErrFenced), errors.Is(err, errLeaseLost):
			return err
		case errors.As(err, &halt):
			return r.halt(ctx, lease, halt)
		}
		// Whatever the last transaction became, the committed
		// checkpoint says; a new publisher reads it again.
		r.metrics.failures.Inc()
		r.failedSince.CompareAndSwap(0, time.Now().UnixNano())
		r.log.Warn("publishing failed; will start again from the committed checkpoint", "error", err, "attempt", failures+1)
		r.sleep(ctx, failures+1)
	}
	return nil
}

var errLeaseLost = errors.New("lost the relay lease")

// errForeignCheckpoint stops a relay from resuming another store's cursor.
var errForeignCheckpoint = errors.New("refusing to publish")

// page is a batch read ahead of publishing.
type page struct {
	events []Event
	next   eventstore.Cursor
	full   bool // the read returned all it could: more may be waiting
}

// term publishes from the committed checkpoint until something fails. A
// reader reads and prepares the next pages while the current one is being
// published: pages commit one transaction each, in order.
func (r *Relay) term(ctx context.Context, lease Lease, since time.Time) error {
	pub, err := r.newPublisher()
	if err != nil {
		return err
	}
	defer pub.Close()
	if err := r.fault("init"); err != nil {
		return err
	}
	cp, err := pub.Init(ctx)
	if err != nil {
		return err
	}
	store := r.src.ID().String()
	if cp.Cursor != "" && cp.Store != store {
		return fmt.Errorf("%w: the committed checkpoint belongs to store %q, and this is store %s: "+
			"the topics hold another store's events; give this store its own STRATA_STORE_NAME and topic prefix", errForeignCheckpoint, cp.Store, store)
	}
	r.lastCommit.Store(time.Now().UnixNano())
	r.log.Info("resuming from the committed checkpoint", "position", cp.Position, "published", cp.Published, "by", cp.Relay)
	r.reports.started(since, cp)

	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	pages := make(chan page, 2)
	readErr := make(chan error, 1)
	go func() { readErr <- r.readAhead(rctx, cp.Cursor, pages) }()

	leaseCheck := time.NewTicker(r.opts.LeaseCheckInterval)
	defer leaseCheck.Stop()
	for {
		var p page
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case <-leaseCheck.C: // idle: make sure the lease is still ours
			if err := lease.Check(ctx); err != nil {
				return fmt.Errorf("%w: %v", errLeaseLost, err)
			}
			continue
		case p = <-pages:
		}
		last := p.events[len(p.events)-1]
		next := Checkpoint{Cursor: p.next, Position: last.GlobalPosition, Published: cp.Published + int64(len(p.events)), Store: store}
		if err := r.fault("publish"); err != nil {
			return err
		}
		start := time.Now()
		// The lease is checked while the records are produced: it must
		// be known to be held before the commit, not checked after them.
		// The check has the lease's session to itself: it is waited for
		// before anything else uses the session, or the lease is released.
		leaseErr := make(chan error, 1)
		go func() { leaseErr <- lease.Check(ctx) }()
		leaseHeld := sync.OnceValue(func() error { return <-leaseErr })
		err := pub.Publish(ctx, p.events, next, func(ctx context.Context) error {
			if err := r.fault("commit"); err != nil {
				return err
			}
			return leaseHeld()
		})
		lost := leaseHeld()
		var crash *crashError
		switch {
		case errors.As(err, &crash), errors.Is(err, ErrFenced):
			return err
		case err != nil && (lost != nil || lease.Check(ctx) != nil):
			return fmt.Errorf("%w: %v", errLeaseLost, err)
		case err != nil:
			return err
		}
		leaseCheck.Reset(r.opts.LeaseCheckInterval)
		r.published(p.events, start)
		cp = next
		if err := r.fault("published"); err != nil {
			return err
		}
		lag := 0.0
		if p.full {
			lag = time.Since(last.RecordedAt).Seconds()
		}
		r.metrics.lagSeconds.Set(lag)
		r.reports.committed(pub.Committed(), lag)
	}
}

// readAhead reads the store from cursor and sends batches of events with
// their schema ids — up to BatchSize events and about MaxBatchBytes, read
// in pages of at most the store's read limit — waiting for wake-ups when it
// has read everything. A page is asked for as many events as the average
// size of those read lately says fit in what is left of MaxBatchBytes, so
// a batch of large events stays near the budget: it passes it by at most
// one page that held larger events than the average.
func (r *Relay) readAhead(ctx context.Context, cursor eventstore.Cursor, pages chan<- page) error {
	from := cursor
	for ctx.Err() == nil {
		var batch []Event
		bytes := 0
		for len(batch) < r.opts.BatchSize && bytes < r.opts.MaxBatchBytes {
			if err := r.fault("read"); err != nil {
				return err
			}
			limit := min(r.opts.BatchSize-len(batch), eventstore.MaxReadLimit, r.fitting(r.opts.MaxBatchBytes-bytes))
			got, err := r.src.ReadAll(ctx, cursor, limit)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, eventstore.ErrInvalidRequest) {
					// The store refuses the cursor itself: reading it
					// again would be refused again.
					return refusedCursor(cursor == from, err)
				}
				return fmt.Errorf("read the store: %w", err)
			}
			cursor = got.Next
			if batch == nil {
				batch = make([]Event, 0, min(r.opts.BatchSize, limit*2))
			}
			if batch, err = r.withSchemaIDs(ctx, batch, got.Events); err != nil {
				return err
			}
			read := 0
			for _, e := range got.Events {
				read += EventBytes(e)
			}
			if len(got.Events) > 0 {
				r.learnSize(read / len(got.Events))
			}
			bytes += read
			if len(got.Events) < limit {
				break // caught up
			}
		}
		if len(batch) == 0 {
			r.idle(ctx)
			continue
		}
		full := len(batch) == r.opts.BatchSize || bytes >= r.opts.MaxBatchBytes
		select {
		case pages <- page{events: batch, next: cursor, full: full}:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// refusedCursor is the halt for a cursor the store refuses: one from
// before the store was re-baselined (`writer migrate --rebaseline`, after a
// logical restore), one that saw an event the store no longer holds (a
// failover or a restore to an earlier point), or one it cannot read. checkpoint says whether it is
// the committed checkpoint's.
func refusedCursor(checkpoint bool, err error) *HaltError {
	which := "the cursor the relay reached"
	if checkpoint {
		which = "the committed checkpoint's cursor"
	}
	return &HaltError{Reason: "checkpoint_refused",
		Message: fmt.Sprintf("the store refuses %s: %v", which, err),
		Remedy: "the topics may hold events the store no longer has, or has under other positions now (after writer migrate " +
			"--rebaseline, a failover to a replica that lacked the last events, or a restore from a backup): Strata does not guess " +
			"what the topics should get. " +
			"Publish the store afresh into new topics (a new STRATA_TOPIC_PREFIX, which has a checkpoint topic of its own), " +
			"rebuild the projections from them (projector rebuild NAME), then restart the relay"}
}

// initialEventBytes is the size assumed of events before any was read: a
// large one, so that the first read of a store of large events does not
// bring a thousand of them at once.
const initialEventBytes = 1 << 20

// fitting returns how many events of the average size fit in budget; at
// least one.
func (r *Relay) fitting(budget int) int {
	avg := int(r.avgBytes.Load())
	if avg <= 0 {
		avg = initialEventBytes
	}
	return max(1, budget/avg)
}

// learnSize moves the average event size a quarter of the way to that of
// the last page.
func (r *Relay) learnSize(pageAvg int) {
	avg := r.avgBytes.Load()
	if avg <= 0 {
		r.avgBytes.Store(int64(pageAvg))
		return
	}
	r.avgBytes.Store(avg + (int64(pageAvg)-avg)/4)
}

// EventBytes is about the size of an event's Kafka record: its data, its
// stream id (the key and a header), type, metadata and the fixed headers.
func EventBytes(e eventstore.RecordedEvent) int {
	m := e.Metadata
	n := 256 + len(e.Data) + 2*len(e.StreamID.String()) + len(e.Type) +
		len(m.CorrelationID) + len(m.CausationID) + len(m.UserID) + len(m.TenantID) + len(m.DataSubject) +
		len(m.TraceParent) + len(m.TraceState)
	for k, v := range m.Custom {
		n += len(k) + len(v) + 6
	}
	return n
}

// withSchemaIDs appends stored to batch with their schemas' registry ids,
// looked up once for each run of events of one schema.
func (r *Relay) withSchemaIDs(ctx context.Context, batch []Event, stored []eventstore.RecordedEvent) ([]Event, error) {
	var fp eventstore.Fingerprint
	id := 0
	for i, e := range stored {
		if i == 0 || e.Schema != fp {
			var err error
			if id, err = r.schemas.SchemaID(ctx, e.Schema); err != nil {
				return nil, fmt.Errorf("the registry id of event %s (%s@%d): %w", e.ID, e.StreamID, e.Version, err)
			}
			fp = e.Schema
		}
		batch = append(batch, Event{RecordedEvent: e, SchemaID: id})
	}
	return batch, nil
}

func (r *Relay) published(events []Event, start time.Time) {
	now := time.Now()
	r.lastCommit.Store(now.UnixNano())
	r.committed.Add(1)
	r.events.Add(int64(len(events)))
	if failed := r.failedSince.Swap(0); failed != 0 {
		r.log.Info("publishing again", "failing_for", now.Sub(time.Unix(0, failed)).Round(time.Millisecond))
	}
	r.log.Debug("published", "events", len(events), "position", events[len(events)-1].GlobalPosition, "took", now.Sub(start))
	r.metrics.batches.Inc()
	r.metrics.events.Add(float64(len(events)))
	r.metrics.batchSize.Observe(float64(len(events)))
	r.metrics.publish.Observe(now.Sub(start).Seconds())
	for _, e := range events {
		r.metrics.delay.Observe(now.Sub(e.RecordedAt).Seconds())
	}
	r.metrics.lastPosition.Set(float64(events[len(events)-1].GlobalPosition))
}

// Published returns how many events this relay has published in committed
// transactions since it was made.
func (r *Relay) Published() int64 { return r.events.Load() }

// idle waits for a wake-up or the poll interval.
func (r *Relay) idle(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-time.After(r.opts.PollInterval):
	}
}

func (r *Relay) fault(point string) error {
	if r.opts.Fault == nil {
		return nil
	}
	if err := r.opts.Fault(point); err != nil {
		return &crashError{point: point}
	}
	return nil
}

// sleep backs off exponentially, with jitter, up to MaxBackoff.
func (r *Relay) sleep(ctx context.Context, attempt int) {
	d := min(r.opts.MaxBackoff, 100*time.Millisecond<<min(attempt, 10))
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
