// Package runner is the projector's engine: it applies the events of a
// projection's Kafka topics to its read model in PostgreSQL, exactly once,
// and rebuilds read models blue/green.
//
// Exactly once: the records of a poll are applied in one PostgreSQL
// transaction that also moves each of their partitions' stored offsets,
// and only if those offsets are still where this worker last left them (a
// compare-and-set, claimSQL). Offsets live in the read-model database, not
// in Kafka: on assignment a worker resumes from them, and a worker that
// lost its partitions without noticing (a zombie) can commit nothing
// more. A per-stream version guard also drops records seen before, such as
// records published twice by hand, and halts the projection on a gap.
//
// The runner reads Kafka through the Consumers it is given (the kafka
// package's adapter) and decodes through a Decoder (the registry's
// Catalog), resolving every event to its type's latest schema.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/tracing"
	"github.com/strata-events/strata/projection"
)

// Record is a Kafka record as the runner sees it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	// Control marks a transaction marker: it only moves the offset on.
	Control bool
	// Event is the stored event the record carries; its Data is the
	// Avro binary, written with the schema of SchemaID.
	Event    eventstore.RecordedEvent
	SchemaID int
	// Value is the record's value as published, kept when it is parked.
	Value []byte
	// Err says why the record could not be read as an event.
	Err error
}

// Batch is the records of one partition from one poll, in offset order.
type Batch struct {
	Topic     string
	Partition int32
	Records   []Record
	// End is the partition's last stable offset when fetched, or -1.
	End int64
}

// Consumer delivers the records of the partitions a worker reads.
type Consumer interface {
	// Poll waits for records. After it returns some, the partitions
	// stay this worker's until Release: rebalances happen only between
	// batches. It returns ctx's error when ctx ends.
	Poll(ctx context.Context) ([]Batch, error)
	// Release lets a rebalance happen.
	Release()
	// Close leaves the group, if any, and closes the client.
	Close()
}

// GroupHooks are called as partitions come and go. Assigned returns the
// next offset to read of each assigned partition, -1 for the start.
type GroupHooks struct {
	Assigned func(ctx context.Context, partitions map[string][]int32) (map[string]map[int32]int64, error)
	Revoked  func(partitions map[string][]int32)
}

// Consumers opens consumers.
type Consumers interface {
	// Group joins the consumer group on topics (read_committed,
	// cooperative-sticky), creating the topics when missing.
	Group(ctx context.Context, group string, topics []string, hooks GroupHooks) (Consumer, error)
	// Partitions reads every partition of topics, without a group, from
	// the given next offsets (-1 or absent: the start).
	Partitions(ctx context.Context, topics []string, from map[string]map[int32]int64) (Consumer, error)
	// EndOffsets returns the last stable offset of every partition of
	// topics, creating the topics when missing.
	EndOffsets(ctx context.Context, topics []string) (map[string]map[int32]int64, error)
}

// Decoder decodes Confluent wire data, written with registry id, into the
// shape of readerType's latest schema (a map for a record).
type Decoder interface {
	DecodeWire(ctx context.Context, id int, data []byte, readerType string) (any, error)
}

// Defaults for Options.
const (
	DefaultSchema      = "readmodel"
	DefaultGroupPrefix = "strata.projection."
	DefaultAttempts    = 5
	DefaultBackoff     = 200 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultHaltPoll    = 2 * time.Second
)

// Options configures a Runner; the zero value gives the defaults.
type Options struct {
	// Schema is the read-model schema, DefaultSchema by default. The
	// pool given to New must have it as its search_path.
	Schema string
	// GroupPrefix is put before the projection's name to name its
	// consumer group.
	GroupPrefix string
	// Topic names the topic of a category; "events."+category by default.
	Topic func(category string) string
	// Attempts is how many times a failing batch, and then each of its
	// events alone, is tried before the event is poison. Failures that
	// are the database's or the network's (the connection was lost, the
	// server is shutting down, a serialization failure) are retried
	// without limit and never make an event poison.
	Attempts int
	// Backoff is the wait before the first retry, doubled after each
	// failure up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// HaltPoll is how often a halted projection checks whether it was
	// resumed.
	HaltPoll time.Duration
	Metrics  prometheus.Registerer
	Logger   *slog.Logger
	// Fault, when set, is called at named points ("commit": before a
	// batch commits) and makes the batch fail with its error: for tests.
	Fault func(point string) error
}

func (o Options) withDefaults() Options {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.GroupPrefix == "" {
		o.GroupPrefix = DefaultGroupPrefix
	}
	if o.Topic == nil {
		o.Topic = func(c string) string { return "events." + c }
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.HaltPoll <= 0 {
		o.HaltPoll = DefaultHaltPoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Fault == nil {
		o.Fault = func(string) error { return nil }
	}
	return o
}

// Runner runs one projection: it keeps its read model up to date as one
// member of the projection's consumer group.
type Runner struct {
	p         *projection.Projection
	db        *pgxpool.Pool
	consumers Consumers
	decoder   Decoder
	opts      Options
	book      book
	m         *metrics
	log       *slog.Logger
	setUp     atomic.Bool // Setup has succeeded
}

// New returns a runner of p, writing through db, whose search_path must be
// opts.Schema. It panics if p is invalid (see projection.Validate).
func New(p *projection.Projection, db *pgxpool.Pool, consumers Consumers, decoder Decoder, opts Options) *Runner {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	opts = opts.withDefaults()
	return &Runner{
		p: p, db: db, consumers: consumers, decoder: decoder, opts: opts,
		book: newBook(opts.Schema),
		m:    newMetrics(opts.Metrics, p.Name),
		log:  opts.Logger.With("projection", p.Name),
	}
}

// Projection returns the runner's projection.
func (r *Runner) Projection() *projection.Projection { return r.p }

// Topics returns the topics of the projection's categories.
func (r *Runner) Topics() []string {
	out := make([]string, len(r.p.Categories))
	for i, c := range r.p.Categories {
		out[i] = r.opts.Topic(c)
	}
	return out
}

// Setup creates the bookkeeping tables and the projection's own, if
// missing, and registers the projection. Run sets up a runner not set up
// before.
func (r *Runner) Setup(ctx context.Context) error {
	if err := r.book.ensure(ctx, r.db); err != nil {
		return fmt.Errorf("read-model schema %s: %w", r.opts.Schema, err)
	}
	if _, err := r.book.setup(ctx, r.db, r.p); err != nil {
		return err
	}
	r.setUp.Store(true)
	return nil
}

// Run keeps the read model up to date until ctx ends, and returns nil
// then. While the projection is halted it waits to be resumed. It returns
// an error only for what retrying cannot mend: a Setup that fails.
func (r *Runner) Run(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil && !r.setUp.Load() {
		err := r.Setup(ctx)
		if err == nil {
			break
		}
		if !transient(err) {
			return err
		}
		failures++
		r.log.Warn("cannot set up the read model; retrying", "error", err)
		r.sleep(ctx, failures)
	}
	haltLogged := false
	for failures = 0; ctx.Err() == nil; {
		row, err := r.book.load(ctx, r.db, r.p.Name)
		if err != nil {
			failures++
			r.log.Warn("cannot read the projection's state; retrying", "error", err)
			r.sleep(ctx, failures)
			continue
		}
		if row.State == StateHalted {
			r.m.halted.Set(1)
			if !haltLogged {
				r.log.Error("the projection is halted; run `projector resume "+r.p.Name+"` after fixing the cause",
					"error", deref(row.HaltedError))
				haltLogged = true
			}
			sleepCtx(ctx, r.opts.HaltPoll)
			continue
		}
		r.m.halted.Set(0)
		haltLogged = false
		err = r.session(ctx, target{projection: r.p.Name, generation: row.Generation})
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errConflict), errors.Is(err, errHalted):
			r.log.Info("re-reading the projection's state", "reason", err)
			failures = 0
		default:
			failures++
			r.log.Warn("consuming failed; retrying", "error", err)
			r.sleep(ctx, failures)
		}
	}
	return nil
}

// session consumes as a member of the group, writing generation t, until
// a conflict, a halt or an error.
func (r *Runner) session(ctx context.Context, t target) error {
	a := r.newApplier(r.db, t)
	c, err := r.consumers.Group(ctx, r.opts.GroupPrefix+r.p.Name, r.Topics(), GroupHooks{Assigned: a.assigned, Revoked: a.revoked})
	if err != nil {
		return err
	}
	defer c.Close()
	r.log.Info("consuming", "group", r.opts.GroupPrefix+r.p.Name, "generation", t.generation)
	return a.consume(ctx, c, func() bool { return false })
}

// releaseEvery bounds how long consume keeps rebalances waiting while it
// polls ahead.
const releaseEvery = time.Second

// consume polls c and applies each poll's records (applyAll) until done,
// asked after each poll's commit, says so, or a poll or a commit fails.
//
// While a poll's records commit, it already polls and decodes the next
// ones, so that reading and decoding overlap with the database's work —
// but only when the partitions in hand have more records to give (see
// more), so that the poll ahead returns soon. Rebalances still happen
// only between batches: c is released only when nothing is in hand,
// after a commit with no poll ahead, which consume makes at least every
// releaseEvery. (Were a rebalance to slip in anyway, the claims keep the
// commits exactly once: a partition taken away is dropped from what is
// in hand, or its claim fails.)
func (a *applier) consume(ctx context.Context, c Consumer, done func() bool) error {
	ctx, cancel := context.WithCancel(ctx)
	var ahead chan polled
	defer func() {
		cancel()
		if ahead != nil {
			<-ahead // what it read goes with c, which the caller closes
		}
	}()
	released := time.Now()
	for {
		var next polled
		if ahead != nil {
			next, ahead = <-ahead, nil
		} else {
			next = a.poll(ctx, c)
		}
		if next.err != nil {
			return next.err
		}
		if !next.failed && more(next.batches) && time.Since(released) < releaseEvery {
			ch := make(chan polled, 1)
			go func() { ch <- a.poll(ctx, c) }()
			ahead = ch
		}
		err := a.applyAll(ctx, next)
		if ahead == nil {
			c.Release()
			released = time.Now()
		}
		if err != nil || done() {
			return err
		}
	}
}

// more reports whether a partition of batches had records past the last
// it gave: then a poll returns soon.
func more(batches []Batch) bool {
	for _, b := range batches {
		if n := len(b.Records); n > 0 && b.End > b.Records[n-1].Offset+1 {
			return true
		}
	}
	return false
}

// polled is what one poll gave: its batches, the records of each decoded
// as far as they could be ahead of their commit, or the poll's error.
type polled struct {
	batches []Batch
	dec     [][]decoded // per batch, per record
	// failed is whether a record failed to decode: the commit decodes
	// those after it, and no poll ahead may decode later records first.
	failed bool
	err    error
}

// poll polls c and decodes the records, in order, up to the first that
// fails: commit decodes the rest, and reports the failure. In order,
// because decoding a subject's erasure makes the decoder forget its key.
func (a *applier) poll(ctx context.Context, c Consumer) polled {
	batches, err := c.Poll(ctx)
	if err != nil {
		return polled{err: err}
	}
	p := polled{batches: batches, dec: make([][]decoded, len(batches))}
	for i, b := range batches {
		p.dec[i] = make([]decoded, len(b.Records))
		for j, rec := range b.Records {
			if p.failed || rec.Control {
				continue
			}
			e, err := a.decode(ctx, rec)
			if err != nil {
				p.failed = true
				continue
			}
			p.dec[i][j] = decoded{ok: true, event: e}
		}
	}
	return p
}

func (r *Runner) sleep(ctx context.Context, failures int) {
	sleepCtx(ctx, r.backoff(failures))
}

func (r *Runner) backoff(failures int) time.Duration {
	d := r.opts.Backoff
	for i := 1; i < failures && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxBackoff)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// errHalted means the projection was halted, by a poison event or a gap.
var errHalted = errors.New("the projection halted")

// poisonError is the failure that made a record poison.
type poisonError struct {
	err      error
	attempts int
}

func (e *poisonError) Error() string {
	return fmt.Sprintf("failed %d times: %v", e.attempts, e.err)
}

func (e *poisonError) Unwrap() error { return e.err }

// transient tells failures of the database or the network, which are
// retried without limit, from failures of an event, which can make it
// poison.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "40", "53", "57", "58": // connection, rollback, resources, operator, system
			return true
		}
		switch pgErr.Code {
		case "25006": // read_only_sql_transaction: a standby or a demoted primary answered, as during a failover
			return true
		case "55P03", "55006": // lock_not_available (lock_timeout, NOWAIT), object_in_use: DDL or a swap holds the table
			return true
		case "0A000":
			// feature_not_supported is a property of the SQL, so
			// deterministic, except "cached plan must not change result
			// type": a prepared statement outlived a change of the table
			// (a rebuild's swap, a migration); pgx drops its cached
			// statements on this error, so the retry succeeds. The other
			// codes of classes 25 and 55 are mistakes of the projection's
			// SQL that a retry repeats, so they stay poison.
			return strings.Contains(pgErr.Message, "cached plan must not change result type")
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	return eventstore.ErrorCode(err) == eventstore.CodeUnavailable
}

// applier applies batches to one target through db, and tracks the
// partitions it owns.
type applier struct {
	r  *Runner
	db *pgxpool.Pool
	t  target

	mu    sync.Mutex
	parts map[partitionKey]*partitionState
}

type partitionKey struct {
	topic     string
	partition int32
}

// partitionState is what a worker knows of a partition it owns: the
// stored next offset (-1: none stored), and the last applied versions of
// streams seen, valid while its claims succeed.
type partitionState struct {
	next     int64
	versions map[string]int64
}

// maxCachedStreams bounds the version cache of a partition; past it the
// cache starts again empty (the table has them all).
const maxCachedStreams = 100_000

func (r *Runner) newApplier(db *pgxpool.Pool, t target) *applier {
	return &applier{r: r, db: db, t: t, parts: map[partitionKey]*partitionState{}}
}

// assigned loads the stored offsets of newly assigned partitions.
func (a *applier) assigned(ctx context.Context, partitions map[string][]int32) (map[string]map[int32]int64, error) {
	var topics []string
	for t := range partitions {
		topics = append(topics, t)
	}
	stored, err := a.r.book.offsets(ctx, a.db, a.t, topics)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	a.mu.Lock()
	defer a.mu.Unlock()
	for topic, ps := range partitions {
		out[topic] = map[int32]int64{}
		for _, p := range ps {
			next, ok := stored[topic][p]
			if !ok {
				next = -1
			}
			a.parts[partitionKey{topic, p}] = &partitionState{next: next, versions: map[string]int64{}}
			out[topic][p] = next
		}
	}
	a.r.log.Info("partitions assigned", "partitions", partitions)
	return out, nil
}

// revoked forgets partitions taken away.
func (a *applier) revoked(partitions map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for topic, ps := range partitions {
		for _, p := range ps {
			delete(a.parts, partitionKey{topic, p})
			a.r.m.lag.DeleteLabelValues(a.r.p.Name, topic, fmt.Sprint(p))
		}
	}
	a.r.log.Info("partitions revoked", "partitions", partitions)
}

func (a *applier) state(topic string, partition int32) *partitionState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.parts[partitionKey{topic, partition}]
}

// part is the records of one partition to apply, with their decodings
// (kept between attempts).
type part struct {
	b    Batch
	st   *partitionState
	recs []Record
	dec  []decoded
}

// applyAll applies the batches of one poll: all in one transaction,
// which claims every partition's offsets, while that works; else each
// partition's batch on its own (apply). One transaction a poll, not one a
// partition, is what keeps a worker quick when many partitions each bring
// a few events.
func (a *applier) applyAll(ctx context.Context, in polled) error {
	var parts []part
	for i, b := range in.batches {
		if p, ok := a.part(b, in.dec[i]); ok {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	if len(parts) > 1 {
		// Only transient failures are retried together: any other
		// failure is looked into partition by partition.
		err := a.retry(ctx, 1, func() error { return a.commit(ctx, parts) })
		if err == nil {
			for _, p := range parts {
				a.observeLag(p)
			}
			return nil
		}
		var poison *poisonError
		if !errors.As(err, &poison) && !errors.As(err, new(*gapError)) {
			return err
		}
		a.r.log.Warn("a poll's batches failed together; applying them partition by partition", "error", err)
	}
	for _, p := range parts {
		if err := a.apply(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// part returns what is left to apply of b, whose records dec decodes:
// nothing when the partition is not this worker's any more, or was
// applied up to its end.
func (a *applier) part(b Batch, dec []decoded) (part, bool) {
	st := a.state(b.Topic, b.Partition)
	if st == nil {
		return part{}, false // not ours (any more)
	}
	recs := b.Records
	for len(recs) > 0 && recs[0].Offset < st.next {
		recs, dec = recs[1:], dec[1:] // applied before
	}
	return part{b: b, st: st, recs: recs, dec: dec}, len(recs) > 0
}

// apply applies one partition's batch: as a whole while that works, then,
// when it keeps failing, record by record, handing a poison record to the
// projection's policy.
func (a *applier) apply(ctx context.Context, p part) error {
	err := a.retry(ctx, a.r.opts.Attempts, func() error { return a.commit(ctx, []part{p}) })
	if err == nil {
		a.observeLag(p)
		return nil
	}
	var gap *gapError
	if errors.As(err, &gap) {
		// What comes before the gap is applied; the projection halts on it.
		i := 0
		for i < len(p.recs) && p.recs[i].Offset < gap.event.Offset {
			i++
		}
		if i > 0 {
			if err := a.apply(ctx, part{b: p.b, st: p.st, recs: p.recs[:i], dec: p.dec[:i]}); err != nil {
				return err
			}
		}
		return a.haltOnGap(ctx, gap)
	}
	var poison *poisonError
	if !errors.As(err, &poison) {
		return err
	}
	a.r.log.Warn("a batch keeps failing; applying its records one by one to find the poison", "topic", p.b.Topic,
		"partition", p.b.Partition, "from", p.recs[0].Offset, "to", p.recs[len(p.recs)-1].Offset, "error", err)
	for i := range p.recs {
		if p.recs[i].Offset < p.st.next {
			continue
		}
		one := part{b: p.b, st: p.st, recs: p.recs[i : i+1], dec: p.dec[i : i+1]}
		err := a.retry(ctx, a.r.opts.Attempts, func() error { return a.commit(ctx, []part{one}) })
		switch {
		case errors.As(err, &gap):
			err = a.haltOnGap(ctx, gap)
		case errors.As(err, &poison):
			err = a.poison(ctx, p.st, p.recs[i], p.dec[i], poison)
		}
		if err != nil {
			return err
		}
	}
	a.observeLag(p)
	return nil
}

func (a *applier) observeLag(p part) {
	if p.b.End >= 0 {
		a.r.m.lag.WithLabelValues(a.r.p.Name, p.b.Topic, fmt.Sprint(p.b.Partition)).Set(float64(max(0, p.b.End-p.st.next)))
	}
}

// retry calls fn until it succeeds, retrying transient failures without
// limit and others until it has failed attempts times, after which it
// returns a *poisonError. Conflicts and the end of ctx return at once.
func (a *applier) retry(ctx context.Context, attempts int, fn func() error) error {
	failures, transients := 0, 0
	for {
		err := fn()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errConflict):
			a.r.m.conflicts.Inc()
			return err
		case errors.As(err, new(*gapError)):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case transient(err):
			transients++
			a.r.m.retries.WithLabelValues("transient").Inc()
			a.r.log.Warn("the read-model database failed; retrying", "error", err, "retries", transients)
			a.r.sleep(ctx, transients)
		default:
			failures++
			a.r.m.retries.WithLabelValues("failure").Inc()
			if failures >= attempts {
				return &poisonError{err: err, attempts: failures}
			}
			a.r.log.Warn("applying failed; retrying", "error", err, "attempt", failures)
			a.r.sleep(ctx, failures)
		}
	}
}

// decoded caches a record's decoding between attempts.
type decoded struct {
	ok    bool
	event projection.Event
}

// commit applies the records of parts, each of one partition, in one
// transaction that claims their offsets (see claimSQL), with one call of
// the projection's Apply: the partitions' events one partition after the
// other, so each stream's events stay in order.
func (a *applier) commit(ctx context.Context, parts []part) error {
	for _, p := range parts {
		for i, rec := range p.recs {
			if rec.Control || p.dec[i].ok {
				continue
			}
			e, err := a.decode(ctx, rec)
			if err != nil {
				return err
			}
			p.dec[i] = decoded{ok: true, event: e}
		}
	}
	for round := 1; ; round++ {
		g := a.guard(parts)
		start := time.Now()
		var stale map[string]int64
		err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) (err error) {
			stale, err = a.r.book.claimAll(ctx, tx, a.t, g.claims, g.streams, g.expected, g.versions)
			if err != nil {
				return err
			}
			if len(stale) > 0 {
				return errStale // and roll back
			}
			if len(g.gaps) > 0 {
				return g.gaps[0] // the stored versions confirm it; roll back
			}
			if len(g.events) > 0 {
				if err := a.r.p.Apply(ctx, tx, g.events); err != nil {
					return err
				}
			}
			return a.r.opts.Fault("commit")
		})
		if err != nil && !errors.Is(err, errStale) {
			return err
		}
		if err != nil {
			// A stream was not at the version assumed: a record seen
			// before, or a gap. Again, with the versions stored (which
			// only this partition's claims change).
			if round == 3 {
				return fmt.Errorf("the stored versions of %d streams keep changing under the partitions' claims", len(stale))
			}
			for j, p := range parts {
				for s := range g.changed[j] {
					if v, ok := stale[s]; ok {
						p.st.versions[s] = v
					}
				}
			}
			continue
		}
		for j, p := range parts {
			p.st.next = g.claims[j].to
			if len(p.st.versions) > maxCachedStreams {
				p.st.versions = map[string]int64{} // the table has them all
			}
			for s, v := range g.changed[j] {
				p.st.versions[s] = v
			}
		}
		a.r.m.committed(g.events, g.duplicates, time.Since(start))
		if tracing.Enabled() {
			a.traceApplied(ctx, parts, start)
		}
		return nil
	}
}

// traceApplied records, for each record of a commit that carries a trace
// context, an apply span that is the record's child, from the commit's
// start to now: the records were applied together, in one transaction.
func (a *applier) traceApplied(ctx context.Context, parts []part, start time.Time) {
	now := time.Now()
	name := "apply " + a.r.p.Name
	for _, p := range parts {
		for _, rec := range p.recs {
			m := rec.Event.Metadata
			if rec.Control || m.TraceParent == "" {
				continue
			}
			_, span, _ := tracing.Start(ctx, tracing.Context{Parent: m.TraceParent, State: m.TraceState}, name,
				trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(start),
				trace.WithAttributes(attribute.String("strata.stream_id", rec.Event.StreamID.String()), attribute.Int64("strata.version", rec.Event.Version),
					attribute.String("messaging.destination.name", rec.Topic), attribute.Int64("messaging.kafka.offset", rec.Offset)))
			span.End(trace.WithTimestamp(now))
		}
	}
}

// errStale rolls back a commit that found streams not at the versions
// the guard assumed.
var errStale = errors.New("streams not at the versions assumed")

// guarded is what the version guard makes of a commit's records.
type guarded struct {
	events     []projection.Event // to apply
	duplicates int                // dropped
	gaps       []*gapError        // events after a gap in their stream, in order
	claims     []claim            // one per part
	// Per stream changed: the version stored before and the one after.
	streams            []string
	expected, versions []int64
	changed            []map[string]int64 // per part: stream → last version applied
}

// guard drops the records applied before, by the last version applied of
// their streams. A partition's cache holds the versions of the streams it
// has seen; a stream not in it is taken to be at the version before its
// first record here, which claimAll checks in the transaction.
func (a *applier) guard(parts []part) guarded {
	var g guarded
	g.changed = make([]map[string]int64, len(parts))
	n := 0
	for _, p := range parts {
		n += len(p.recs)
	}
	g.events = make([]projection.Event, 0, n)
	for j, p := range parts {
		changed := make(map[string]int64, len(p.recs))
		before := make(map[string]int64, len(p.recs))
		n := len(g.events)
		for i := range p.recs {
			if !p.dec[i].ok {
				continue
			}
			e := p.dec[i].event
			last, ok := changed[e.StreamID]
			if !ok {
				if last, ok = p.st.versions[e.StreamID]; !ok {
					last = e.Version - 1
				}
				before[e.StreamID] = last
			}
			switch {
			case e.Version <= last:
				g.duplicates++
				continue
			case e.Version > last+1:
				g.gaps = append(g.gaps, &gapError{event: e, after: last})
			}
			changed[e.StreamID] = e.Version
			g.events = append(g.events, e)
		}
		for s, v := range changed {
			g.streams, g.expected, g.versions = append(g.streams, s), append(g.expected, before[s]), append(g.versions, v)
		}
		g.changed[j] = changed
		g.claims = append(g.claims, claim{topic: p.b.Topic, partition: p.b.Partition, from: p.st.next,
			to: p.recs[len(p.recs)-1].Offset + 1, applied: int64(len(g.events) - n)})
	}
	return g
}

// decode turns a record into the event a projection sees.
func (a *applier) decode(ctx context.Context, rec Record) (projection.Event, error) {
	where := fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset)
	if rec.Err != nil {
		return projection.Event{}, fmt.Errorf("record %s: %w", where, rec.Err)
	}
	e := rec.Event
	v, err := a.r.decoder.DecodeWire(ctx, rec.SchemaID, e.Data, e.Type)
	if err != nil {
		return projection.Event{}, fmt.Errorf("record %s (%s %s@%d): %w", where, e.Type, e.StreamID, e.Version, err)
	}
	data, ok := v.(map[string]any)
	if !ok {
		return projection.Event{}, fmt.Errorf("record %s (%s %s@%d): the data is not a record", where, e.Type, e.StreamID, e.Version)
	}
	return projection.Event{
		ID: e.ID.String(), StreamID: e.StreamID.String(), Category: e.StreamID.Category(), Version: e.Version,
		Type: e.Type, GlobalPosition: e.GlobalPosition, RecordedAt: e.RecordedAt, Data: data, SchemaID: rec.SchemaID,
		Metadata: projection.Metadata{
			CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
			UserID: e.Metadata.UserID, TenantID: e.Metadata.TenantID, DataSubject: e.Metadata.DataSubject, Custom: e.Metadata.Custom,
		},
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
	}, nil
}

// poison handles a record whose application keeps failing, by policy.
func (a *applier) poison(ctx context.Context, st *partitionState, rec Record, dec decoded, cause *poisonError) error {
	h := Halt{Error: cause.Error(), At: time.Now().UTC(), Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	if rec.Err == nil {
		h.StreamID, h.Version, h.Type = rec.Event.StreamID.String(), rec.Event.Version, rec.Event.Type
	}
	if a.r.p.Policy() == projection.Halt {
		a.r.log.Error("poison event: halting the projection", "event", h)
		return a.halt(ctx, h)
	}
	a.r.log.Error("poison event: parking it and going on", "event", h)
	next := rec.Offset + 1
	err := a.retry(ctx, a.r.opts.Attempts, func() error {
		return pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
			if err := a.r.book.claim(ctx, tx, a.t, rec.Topic, rec.Partition, st.next, next, 0); err != nil {
				return err
			}
			if dec.ok {
				if err := a.r.book.saveVersions(ctx, tx, a.t, []string{dec.event.StreamID}, []int64{dec.event.Version}); err != nil {
					return err
				}
			}
			return a.r.book.park(ctx, tx, a.t, rec, cause.err, cause.attempts)
		})
	})
	if err != nil {
		return err
	}
	st.next = next
	if dec.ok {
		st.versions[dec.event.StreamID] = dec.event.Version
	}
	a.r.m.events.WithLabelValues(a.r.p.Name, "parked").Inc()
	return nil
}

// halt halts the projection on h: the live one until resumed, while a
// rebuild stops with a *HaltError.
func (a *applier) halt(ctx context.Context, h Halt) error {
	if a.t.build {
		return &HaltError{Projection: a.r.p.Name, Halt: h}
	}
	err := a.retry(ctx, a.r.opts.Attempts, func() error { return a.r.book.halt(ctx, a.db, a.t, h) })
	if err != nil {
		return err
	}
	a.r.m.halted.Set(1)
	return errHalted
}

// gapError is an event whose stream's stored version is lower than the
// one before it: events of the stream are missing, or come out of order.
type gapError struct {
	event projection.Event
	after int64 // the stream's version stored
}

func (e *gapError) Error() string {
	v := e.event.Version
	missing := fmt.Sprintf("version %d is", v-1)
	if v-1 > e.after+1 {
		missing = fmt.Sprintf("versions %d to %d are", e.after+1, v-1)
	}
	return fmt.Sprintf("version %d of stream %s follows version %d, the last applied: %s missing. "+
		"They were not published, or were published out of order or to another partition "+
		"(did the topic's partition count change?)", v, e.event.StreamID, e.after, missing)
}

// haltOnGap halts the projection, whatever its poison policy, on an event
// that follows a gap in its stream: applying it would hide the events
// missing, and drop them as seen before should they come later.
func (a *applier) haltOnGap(ctx context.Context, gap *gapError) error {
	e := gap.event
	a.r.m.gaps.Inc()
	after := gap.after
	h := Halt{Error: gap.Error(), At: time.Now().UTC(), Topic: e.Topic, Partition: e.Partition, Offset: e.Offset,
		StreamID: e.StreamID, Version: e.Version, Type: e.Type, GapAfter: &after}
	a.r.log.Error("a gap in a stream: halting the projection", "event", h)
	return a.halt(ctx, h)
}

// HaltError is a rebuild stopped by a poison event under the halt policy,
// or by a gap in a stream.
type HaltError struct {
	Projection string
	Halt       Halt
}

func (e *HaltError) Error() string {
	h := e.Halt
	return fmt.Sprintf("projection %s halted on %s %s@%d (%s/%d@%d): %s", e.Projection, h.Type, h.StreamID, h.Version,
		h.Topic, h.Partition, h.Offset, h.Error)
}
