package kafka

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/tracing"
)

// Checkpoint and Event are the relay's; the publisher serves it.
type (
	Checkpoint = relay.Checkpoint
	Event      = relay.Event
)

// ErrFenced is relay.ErrFenced: another relay with the same transactional
// id has taken over, and this publisher must stop.
var ErrFenced = relay.ErrFenced

var _ relay.Publisher = (*Publisher)(nil)

// PublisherOptions configures a Publisher; the zero value gives defaults.
type PublisherOptions struct {
	// TransactionTimeout is how long the broker lets a transaction stay
	// open before it aborts it; default 20s. It also bounds the
	// publisher's every call to Kafka: a transaction gets half of it, and
	// each request of Init half of it (see Publisher).
	TransactionTimeout time.Duration
	// Instance names this relay in checkpoints and logs.
	Instance string
	// MaxRecordBytes is the largest record batch the producer sends
	// (franz-go's ProducerBatchMaxBytes); default 1,000,012 bytes,
	// Kafka's default max.message.bytes. An event whose record does not
	// fit alone in a batch this size halts the relay (relay.HaltError).
	MaxRecordBytes int
	// TopicCheckInterval is how often, while it publishes, the publisher
	// asks Kafka again about each topic it publishes to: its partition
	// count, and a configuration that keeps events. Every topic is
	// checked when the publisher first publishes to it; default 10s.
	TopicCheckInterval time.Duration
	// ClientOptions are added to the Kafka clients' (tests use it).
	ClientOptions []kgo.Opt
	Logger        *slog.Logger
}

// ErrStalled means Kafka did not answer a call of the publisher within its
// deadline. The publisher has given up its clients and is done for; the
// transaction it had open is left to the broker, which aborts it when the
// next publisher of the store initialises (or at its timeout).
var ErrStalled = errors.New("kafka did not answer in time")

// Publisher publishes batches of events exactly once: each batch is one
// Kafka transaction that holds the relay's checkpoint and the batch's
// records. It is not safe for concurrent use: one relay drives it.
//
// No call of a Publisher outlasts the transaction timeout. A transactional
// franz-go client waits for the answer to a request it has sent to the
// broker whatever its context says (it cannot tell whether the broker
// applied it), so a broker that stops, or that accepts connections and
// never answers, would hold Publish until the broker answered again. The
// publisher waits for each call only until its deadline; then it closes
// its clients, which fails whatever they still wait for, and returns
// ErrStalled.
type Publisher struct {
	cfg    Config
	opts   PublisherOptions
	cl     *kgo.Client // transactional producer
	reader *kgo.Client // reads the checkpoint, read_uncommitted
	adm    *kadm.Client
	topics *Topics
	log    *slog.Logger
	// recorded is the partition count of each topic as the last
	// committed checkpoint has it: its records were published with it.
	recorded map[string]int
	// committed is the last committed checkpoint.
	committed Checkpoint
	// topicNames is each category's topic, made once (Publish is
	// called by one goroutine at a time).
	topicNames map[string]string

	closeOnce sync.Once
	closed    atomic.Bool
}

// NewPublisher connects to Kafka. Call Init before Publish.
func NewPublisher(cfg Config, opts PublisherOptions) (*Publisher, error) {
	if opts.TransactionTimeout <= 0 {
		opts.TransactionTimeout = 20 * time.Second
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if opts.TopicCheckInterval <= 0 {
		opts.TopicCheckInterval = DefaultTopicCheckInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	base, err := cfg.ClientOptions()
	if err != nil {
		return nil, err
	}
	base = append(base, clientTimeouts(opts.TransactionTimeout)...)
	base = append(base, opts.ClientOptions...)
	cl, err := kgo.NewClient(append(base,
		kgo.TransactionalID(cfg.TransactionalID()),
		kgo.TransactionTimeout(opts.TransactionTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(int32(opts.MaxRecordBytes)),
		// No record delivery timeout: franz-go measures it from the
		// record's timestamp, which is the event's time, possibly long
		// past, and a transactional client does not apply it to a record
		// it has sent anyway. Publish bounds its calls itself.
	)...)
	if err != nil {
		return nil, err
	}
	// The reader reads uncommitted records and control records
	// (transaction markers), and tells committed checkpoints from the
	// others itself (see readCheckpoints).
	reader, err := kgo.NewClient(append(base, kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		cl.Close()
		return nil, err
	}
	adm := kadm.NewClient(cl)
	return &Publisher{cfg: cfg, opts: opts, cl: cl, reader: reader, adm: adm, topics: NewTopics(cl, cfg),
		log: opts.Logger.With("component", "publisher")}, nil
}

// clientTimeouts keeps franz-go's own waits well inside the transaction
// timeout, so that the client gives up on a silent connection, and stops
// retrying a request, before the publisher has to abandon it.
func clientTimeouts(txn time.Duration) []kgo.Opt {
	quarter := min(max(txn/4, 2*time.Second), 10*time.Second)
	return []kgo.Opt{
		// Added to every request's read deadline (default 10s).
		kgo.RequestTimeoutOverhead(quarter),
		// How long the broker may wait for replicas before it
		// answers a produce (default 10s).
		kgo.ProduceRequestTimeout(quarter),
		// How long franz-go retries a request other than a produce
		// (default 30s).
		kgo.RetryTimeout(txn / 2),
		kgo.DialTimeout(quarter),
		// Closing a client otherwise waits up to a second to push its
		// last metrics, which the relay does not use; it closes one
		// after every failure.
		kgo.DisableClientMetrics(),
	}
}

// Close closes the Kafka clients, without waiting for them to finish
// (franz-go may wait on the broker to close a fetch session). An open
// transaction is left to the broker: the next publisher's Init aborts it.
// Close is safe to call more than once.
func (p *Publisher) Close() {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		go func() {
			p.cl.Close()
			p.reader.Close()
		}()
	})
}

// call runs fn and waits for it until ctx ends, at the latest. When fn has
// not returned by then, the publisher closes its clients (which makes fn
// return, failed) and returns ErrStalled: franz-go may be waiting for an
// answer the broker will not give. what names the call in the log; the
// caller wraps the error.
func (p *Publisher) call(ctx context.Context, what string, fn func(context.Context) error) error {
	if p.closed.Load() {
		return fmt.Errorf("%w: the publisher has closed its clients", ErrStalled)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done: // it returned at its deadline after all
		return err
	default:
	}
	p.Close()
	p.log.Warn("Kafka did not answer in time; closing this publisher's clients", "call", what, "error", ctx.Err())
	return fmt.Errorf("%w (%v)", ErrStalled, ctx.Err())
}

// requestContext bounds one request of Init.
func (p *Publisher) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.opts.TransactionTimeout/2)
}

// Init makes this publisher the store's only one and returns the last
// committed checkpoint (the zero Checkpoint when none was ever committed).
//
// It fences every older publisher through the shared transactional id, so
// that none can commit again. A broker aborts the fenced publisher's open
// transaction at once, but Init does not count on it: since every
// transaction writes the checkpoint partition first, an open transaction
// there is one that may still end, and Init waits until none remains (the
// broker aborts a transaction at its timeout) before it reads the
// checkpoint.
//
// Each request Init makes is bounded by half the transaction timeout;
// waiting for an open transaction to end, by twice the timeout.
func (p *Publisher) Init(ctx context.Context) (Checkpoint, error) {
	rctx, cancel := p.requestContext(ctx)
	err := p.call(rctx, "create the checkpoint topic", p.topics.EnsureCheckpointTopic)
	cancel()
	if err != nil {
		return Checkpoint{}, fmt.Errorf("the checkpoint topic: %w", err)
	}
	var producer int64
	rctx, cancel = p.requestContext(ctx)
	err = p.call(rctx, "initialise the transactional producer", func(ctx context.Context) (err error) {
		producer, _, err = p.cl.ProducerID(ctx)
		return err
	})
	cancel()
	if err != nil {
		return Checkpoint{}, fmt.Errorf("initialise the transactional producer: %w", err)
	}
	if err := p.waitNoOpenTransaction(ctx, producer); err != nil {
		return Checkpoint{}, err
	}
	cp, err := p.lastCheckpoint(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	p.recorded = maps.Clone(cp.Partitions)
	if p.recorded == nil {
		p.recorded = map[string]int{}
	}
	p.committed = cp
	return cp, nil
}

// Committed returns the checkpoint that Init read or, after a Publish
// that committed, the one it committed (with this publisher's Instance,
// its time and the partition counts). The caller must not change its
// Partitions.
func (p *Publisher) Committed() Checkpoint { return p.committed }

// waitNoOpenTransaction waits until no transaction of producer (this
// store's: its id stays the same from one epoch to the next) is open on
// the checkpoint partition, for at most twice the transaction timeout.
// Transactions of other producers there are other stores' (stores that
// share a topic prefix share the checkpoint topic): they are not waited
// for, or a busy store would keep the others' relays from starting.
func (p *Publisher) waitNoOpenTransaction(ctx context.Context, producer int64) error {
	topic := p.cfg.CheckpointTopic()
	deadline := time.Now().Add(2 * p.opts.TransactionTimeout)
	for logged := false; ; {
		var described kadm.DescribedProducersTopics
		rctx, cancel := p.requestContext(ctx)
		err := p.call(rctx, "describe producers", func(ctx context.Context) (err error) {
			described, err = p.adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
			return err
		})
		cancel()
		if err != nil {
			return fmt.Errorf("describe the producers of %s: %w", topic, err)
		}
		open := 0
		var perr error
		described.EachPartition(func(dp kadm.DescribedProducersPartition) {
			if dp.Err != nil {
				perr = dp.Err
			}
			dp.ActiveProducers.Each(func(d kadm.DescribedProducer) {
				if d.ProducerID == producer && d.CurrentTxnStartOffset >= 0 {
					open++
				}
			})
		})
		if perr != nil {
			return fmt.Errorf("describe the producers of %s: %w", topic, perr)
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d transaction(s) stay open on %s after %s: refusing to publish until they end", open, topic, 2*p.opts.TransactionTimeout)
		}
		if !logged {
			p.log.Warn("waiting for an open transaction of an older relay to end before publishing", "topic", topic)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lastCheckpoint returns this store's latest committed checkpoint. It
// reads the checkpoint topic backwards, in windows that grow fourfold, each
// read to the topic's last stable offset: the latest checkpoint is near the
// end, unless other stores that share the topic have written much since.
// A read that cannot reach the end in time fails: resuming from an older
// checkpoint would publish again what is in Kafka already.
func (p *Publisher) lastCheckpoint(ctx context.Context) (Checkpoint, error) {
	topic := p.cfg.CheckpointTopic()
	var ends, starts kadm.ListedOffsets
	rctx, cancel := p.requestContext(ctx)
	err := p.call(rctx, "list offsets", func(ctx context.Context) (err error) {
		if ends, err = p.adm.ListEndOffsets(ctx, topic); err != nil {
			return err
		}
		starts, err = p.adm.ListStartOffsets(ctx, topic)
		return err
	})
	cancel()
	if err != nil {
		return Checkpoint{}, fmt.Errorf("list the offsets of %s: %w", topic, err)
	}
	end, _ := ends.Lookup(topic, 0)
	start, _ := starts.Lookup(topic, 0)
	if end.Err != nil || start.Err != nil {
		return Checkpoint{}, fmt.Errorf("offsets of %s: %v %v", topic, end.Err, start.Err)
	}
	for window := int64(64); ; window *= 4 {
		from := max(start.Offset, end.Offset-window)
		if from >= end.Offset {
			return Checkpoint{}, nil // an empty topic
		}
		var cp Checkpoint
		var found bool
		rctx, cancel := p.requestContext(ctx)
		err := p.call(rctx, "read checkpoints", func(ctx context.Context) (err error) {
			cp, found, err = p.readCheckpoints(ctx, from, end.Offset)
			return err
		})
		cancel()
		if err != nil {
			return Checkpoint{}, fmt.Errorf("read %s from offset %d to %d: %w", topic, from, end.Offset, err)
		}
		if found || from == start.Offset {
			return cp, nil
		}
	}
}

// readCheckpoints reads the checkpoint partition from offset from to end
// (its high watermark), every record of it, and returns the last
// checkpoint of this store whose transaction committed there.
//
// It reads uncommitted records and decides itself, by the markers: a
// checkpoint counts once a commit marker of its producer follows it. A
// read_committed reader hides aborted records, and a transaction that a
// broker aborted without writing a marker (kfake, recovering from a
// crash, aborts the transactions in flight that way) leaves offsets below
// the end that such a reader never hands over, so that it cannot tell
// when it has read everything. No transaction of this store's producer is
// open (Init waited), so each of its checkpoints below the end has its
// marker below the end too.
func (p *Publisher) readCheckpoints(ctx context.Context, from, end int64) (cp Checkpoint, found bool, err error) {
	topic := p.cfg.CheckpointTopic()
	p.reader.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}})
	defer p.reader.RemoveConsumePartitions(map[string][]int32{topic: {0}})
	open := map[int64]Checkpoint{} // by producer: its last checkpoint in its open transaction
	for next := from; next < end; {
		fetches := p.reader.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return Checkpoint{}, false, err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return Checkpoint{}, false, ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end || ferr != nil {
				return
			}
			next = r.Offset + 1
			if r.Attrs.IsControl() {
				c, ok := open[r.ProducerID]
				delete(open, r.ProducerID)
				if ok && isCommitMarker(r.Key) {
					cp, found = c, true
				}
				return
			}
			if string(r.Key) != p.cfg.StoreName {
				return
			}
			var c Checkpoint
			if err := json.Unmarshal(r.Value, &c); err != nil {
				ferr = fmt.Errorf("checkpoint at %s/0@%d: %w", topic, r.Offset, err)
				return
			}
			if !r.Attrs.IsTransactional() { // not the relay's; written by hand
				cp, found = c, true
				return
			}
			open[r.ProducerID] = c
		})
		if ferr != nil {
			return Checkpoint{}, false, ferr
		}
	}
	return cp, found, nil
}

// isCommitMarker reports whether a control record's key says commit: an
// int16 version, then an int16 type, 0 for abort and 1 for commit.
func isCommitMarker(key []byte) bool {
	return len(key) >= 4 && binary.BigEndian.Uint16(key[2:4]) == 1
}

// Publish stores events in their topics and cp in the checkpoint topic,
// in one transaction. The checkpoint record goes first, so that every open
// transaction of a relay includes the checkpoint partition (see Init).
// beforeCommit runs last, before the commit, and an error from it aborts
// the transaction: the relay checks there that it still holds its lease.
//
// Publish returns within half the transaction timeout, plus a quarter for
// the abort after a failure, however the broker behaves: the broker must
// not abort a transaction that Publish still means to commit.
//
// On ErrFenced the publisher is done for, and on ErrStalled (Kafka did not
// answer in time). On any other error the transaction was aborted or its
// outcome is unknown: call Init again, which finds out from the committed
// checkpoint.
func (p *Publisher) Publish(ctx context.Context, events []Event, cp Checkpoint, beforeCommit func(context.Context) error) (err error) {
	// The whole transaction must end well within the broker's timeout.
	ctx, cancel := context.WithTimeout(ctx, p.opts.TransactionTimeout/2)
	defer cancel()
	partitions, err := p.partitions(ctx, events)
	if err != nil {
		return err
	}
	bytes := 0
	for _, e := range events {
		bytes += relay.EventBytes(e.RecordedEvent)
	}
	built := NewRecords(len(events), bytes)
	records := make([]*kgo.Record, 0, len(events))
	var spans []trace.Span
	defer func() { endSpans(spans, err) }()
	for _, e := range events {
		topic := p.topic(e.StreamID.Category())
		ev := e.RecordedEvent
		if tracing.Enabled() && ev.Metadata.TraceParent != "" {
			// The record carries the publish span's context, the child
			// of the append's, so that an apply is the publish's child.
			var span trace.Span
			var tc tracing.Context
			_, span, tc = tracing.Start(ctx, tracing.Context{Parent: ev.Metadata.TraceParent, State: ev.Metadata.TraceState}, "publish "+topic,
				trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attribute.String("strata.stream_id", ev.StreamID.String()),
					attribute.Int64("strata.version", ev.Version)))
			ev.Metadata.TraceParent, ev.Metadata.TraceState = tc.Parent, tc.State
			spans = append(spans, span)
		}
		r := built.Add(topic, ev, p.cfg.StoreName, e.SchemaID, partitions[topic])
		if size := RecordBatchBytes(r); size > p.opts.MaxRecordBytes {
			return tooLarge(e, topic, size, p.opts.MaxRecordBytes, "its record is larger than the producer's batch limit")
		}
		records = append(records, r)
	}
	cp.Relay, cp.At, cp.Partitions = p.opts.Instance, time.Now().UTC(), partitions
	value, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	checkpoint := &kgo.Record{Topic: p.cfg.CheckpointTopic(), Partition: 0, Key: []byte(p.cfg.StoreName), Value: value}

	if err := p.cl.BeginTransaction(); err != nil {
		return p.fenced(err)
	}
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	if err := p.call(ctx, "produce the checkpoint", func(ctx context.Context) error {
		return p.cl.ProduceSync(ctx, checkpoint).FirstErr()
	}); err != nil {
		return p.fenced(fmt.Errorf("produce the checkpoint: %w", err))
	}
	if err := p.call(ctx, "produce records", func(ctx context.Context) error {
		// The results are looked at here, not after call: a call that
		// outlasts its deadline is left running.
		results := p.cl.ProduceSync(ctx, records...)
		if halt := rejectedAsTooLarge(events, records, results); halt != nil {
			return halt
		}
		return results.FirstErr()
	}); err != nil {
		var halt *relay.HaltError
		if errors.As(err, &halt) {
			return halt
		}
		return p.fenced(fmt.Errorf("produce %d records: %w", len(records), err))
	}
	if beforeCommit != nil {
		if err := beforeCommit(ctx); err != nil {
			return err
		}
	}
	if err := p.call(ctx, "commit", func(ctx context.Context) error {
		return p.cl.EndTransaction(ctx, kgo.TryCommit)
	}); err != nil {
		return p.fenced(fmt.Errorf("commit: %w", err))
	}
	p.recorded, p.committed = partitions, cp
	return nil
}

// endSpans ends the publish spans of a transaction, with its error.
func endSpans(spans []trace.Span, err error) {
	for _, span := range spans {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// DefaultTopicCheckInterval is PublisherOptions.TopicCheckInterval's
// default.
const DefaultTopicCheckInterval = 10 * time.Second

// partitions returns the partition count to publish each topic of events
// with: the one its records were published with so far, as the committed
// checkpoint records it, or, for a topic the store never published to,
// the count it has now (creating it if need be). A topic whose count is
// not the recorded one any more halts the relay: a stream's next records
// would go to another partition than its earlier ones, where consumers may
// read them first. Kafka is asked about a topic when it is first published
// to and then every TopicCheckInterval; in between, records still go to
// their stream's partition among the recorded count, never to a partition
// the topic may have gained since.
func (p *Publisher) partitions(ctx context.Context, events []Event) (map[string]int, error) {
	var topics []string
	first := map[string]Event{}
	for _, e := range events {
		topic := p.topic(e.StreamID.Category())
		if _, ok := first[topic]; !ok {
			first[topic] = e
			topics = append(topics, topic)
		}
	}
	var now map[string]int
	if err := p.call(ctx, "check topics", func(ctx context.Context) (err error) {
		now, err = p.topics.Check(ctx, topics, p.opts.TopicCheckInterval)
		return err
	}); err != nil {
		var halt *relay.HaltError
		if errors.As(err, &halt) {
			return nil, halt
		}
		return nil, fmt.Errorf("check topics %s: %w", strings.Join(topics, ", "), err)
	}
	partitions := maps.Clone(p.recorded)
	if partitions == nil {
		partitions = map[string]int{}
	}
	for _, topic := range topics {
		recorded, ok := partitions[topic]
		switch {
		case !ok:
			partitions[topic] = now[topic]
		case recorded != now[topic]:
			return nil, partitionsChanged(first[topic], topic, recorded, now[topic])
		}
	}
	return partitions, nil
}

// topic returns category's topic.
func (p *Publisher) topic(category string) string {
	topic, ok := p.topicNames[category]
	if !ok {
		if p.topicNames == nil {
			p.topicNames = map[string]string{}
		}
		topic = p.cfg.Topic(category)
		p.topicNames[category] = topic
	}
	return topic
}

// partitionsChanged is the halt for a topic whose partition count is not
// the one its records were published with; e is the first event for it.
func partitionsChanged(e Event, topic string, recorded, now int) *relay.HaltError {
	return &relay.HaltError{Reason: "partitions_changed", Topic: topic,
		Stream: e.StreamID.String(), Version: e.Version, Position: e.GlobalPosition,
		Message: fmt.Sprintf("topic %s was published with %d partitions and has %d now: a stream's next events would go to another "+
			"partition than its earlier ones, where consumers may read them first; nothing from %s@%d (position %d) on is published",
			topic, recorded, now, e.StreamID, e.Version, e.GlobalPosition),
		Remedy: fmt.Sprintf("every record of %s is on its stream's partition among the %d (none went to a partition added since); "+
			"Kafka cannot take partitions away, and a topic with records of both counts would split streams for any consumer that "+
			"reads it from the start, so publish the store afresh into new topics: a new STRATA_TOPIC_PREFIX (its checkpoint topic "+
			"is new too, so the relay starts from the store's first event) with STRATA_TOPIC_PARTITIONS at the count wanted, "+
			"then run the projectors on the new prefix and rebuild them (projector rebuild NAME)", topic, recorded)}
}

// abort ends an unfinished transaction, best effort and within a quarter
// of the transaction timeout: the next publisher's Init aborts whatever is
// left open.
func (p *Publisher) abort() {
	if p.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.TransactionTimeout/4)
	defer cancel()
	p.call(ctx, "abort", func(ctx context.Context) error {
		if err := p.cl.AbortBufferedRecords(ctx); err != nil {
			return err
		}
		return p.cl.EndTransaction(ctx, kgo.TryAbort)
	})
}

// fenced turns the errors that mean another producer took over into
// ErrFenced.
func (p *Publisher) fenced(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		return fmt.Errorf("%w: %v", ErrFenced, err)
	}
	return err
}

// DefaultMaxRecordBytes is PublisherOptions.MaxRecordBytes' default: franz-go's
// and Kafka's max.message.bytes default.
const DefaultMaxRecordBytes = 1_000_012

// RecordBatchBytes is the size of a record batch holding r alone, as
// franz-go counts it against ProducerBatchMaxBytes (the batch header, with
// the 4-byte length a produce request puts before it, and the record).
// Kafka counts 4 bytes less against max.message.bytes.
func RecordBatchBytes(r *kgo.Record) int {
	const batchOverhead = 4 + 61
	l := 1 + 1 + 1 + // attributes, timestamp delta 0, offset delta 0
		varintLen(len(r.Key)) + len(r.Key) + varintLen(len(r.Value)) + len(r.Value) + varintLen(len(r.Headers))
	for _, h := range r.Headers {
		l += varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value)
	}
	return batchOverhead + varintLen(l) + l
}

// varintLen is the length of n as a zig-zag varint.
func varintLen(n int) int {
	u := uint64(n) << 1
	l := 1
	for ; u >= 0x80; u >>= 7 {
		l++
	}
	return l
}

// tooLarge is the halt for an event whose record cannot be published.
func tooLarge(e Event, topic string, size, limit int, why string) *relay.HaltError {
	return &relay.HaltError{Reason: "event_too_large", Stream: e.StreamID.String(), Version: e.Version,
		Position: e.GlobalPosition, Size: size, Limit: limit, Topic: topic,
		Message: fmt.Sprintf("event %s (%s@%d, position %d) cannot be published to %s: %s (%d bytes, limit %d)",
			e.ID, e.StreamID, e.Version, e.GlobalPosition, topic, why, size, limit),
		Remedy: "nothing after it is published, in any category; raise the limit — the relay's producer batch limit " +
			"and the topic's max.message.bytes (and consumers' fetch limits) above the event's size — then restart the relay"}
}

// rejectedAsTooLarge returns the halt for a produce that failed because a
// record, or a batch of records, was too large — for franz-go before it
// sent it, or for the broker (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE):
// sending it again fails again. It names the largest record that failed.
func rejectedAsTooLarge(events []Event, records []*kgo.Record, results kgo.ProduceResults) *relay.HaltError {
	worst := -1
	var cause error
	for _, res := range results {
		if !errors.Is(res.Err, kerr.MessageTooLarge) && !errors.Is(res.Err, kerr.RecordListTooLarge) {
			continue
		}
		for i, r := range records {
			if r == res.Record && (worst < 0 || RecordBatchBytes(r) > RecordBatchBytes(records[worst])) {
				worst, cause = i, res.Err
			}
		}
	}
	if worst < 0 {
		return nil
	}
	return tooLarge(events[worst], records[worst].Topic, RecordBatchBytes(records[worst]), 0,
		fmt.Sprintf("Kafka refused it: %v", cause))
}
