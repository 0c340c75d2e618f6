package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/relay"
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
	// open before it aborts it; default 20s.
	TransactionTimeout time.Duration
	// Instance names this relay in checkpoints and logs.
	Instance string
	// ClientOptions are added to the Kafka clients' (tests use it).
	ClientOptions []kgo.Opt
	Logger        *slog.Logger
}

// Publisher publishes batches of events exactly once: each batch is one
// Kafka transaction that holds the relay's checkpoint and the batch's
// records. It is not safe for concurrent use: one relay drives it.
type Publisher struct {
	cfg    Config
	opts   PublisherOptions
	cl     *kgo.Client // transactional producer
	reader *kgo.Client // reads the checkpoint, read_committed
	adm    *kadm.Client
	topics *Topics
	log    *slog.Logger
}

// NewPublisher connects to Kafka. Call Init before Publish.
func NewPublisher(cfg Config, opts PublisherOptions) (*Publisher, error) {
	if opts.TransactionTimeout <= 0 {
		opts.TransactionTimeout = 20 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	base, err := cfg.ClientOptions()
	if err != nil {
		return nil, err
	}
	base = append(base, opts.ClientOptions...)
	cl, err := kgo.NewClient(append(base,
		kgo.TransactionalID(cfg.TransactionalID()),
		kgo.TransactionTimeout(opts.TransactionTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		// No record delivery timeout: franz-go measures it from the
		// record's timestamp, which is the event's time, possibly long
		// past. Publish bounds its produce calls with a deadline instead.
	)...)
	if err != nil {
		return nil, err
	}
	// The reader keeps control records (transaction markers): the last
	// offset before the stable end is always one, and seeing it says the
	// checkpoint topic has been read to its end.
	reader, err := kgo.NewClient(append(base, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		cl.Close()
		return nil, err
	}
	adm := kadm.NewClient(cl)
	return &Publisher{cfg: cfg, opts: opts, cl: cl, reader: reader, adm: adm, topics: NewTopics(adm, cfg),
		log: opts.Logger.With("component", "publisher")}, nil
}

// Close closes the Kafka clients. An open transaction is left to the broker.
func (p *Publisher) Close() {
	p.cl.Close()
	p.reader.Close()
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
func (p *Publisher) Init(ctx context.Context) (Checkpoint, error) {
	if err := p.topics.EnsureCheckpointTopic(ctx); err != nil {
		return Checkpoint{}, err
	}
	if _, _, err := p.cl.ProducerID(ctx); err != nil {
		return Checkpoint{}, fmt.Errorf("initialise the transactional producer: %w", err)
	}
	if err := p.waitNoOpenTransaction(ctx); err != nil {
		return Checkpoint{}, err
	}
	return p.lastCheckpoint(ctx)
}

// waitNoOpenTransaction waits until no transaction is open on the
// checkpoint partition, for at most twice the transaction timeout.
func (p *Publisher) waitNoOpenTransaction(ctx context.Context) error {
	topic := p.cfg.CheckpointTopic()
	deadline := time.Now().Add(2 * p.opts.TransactionTimeout)
	for logged := false; ; {
		described, err := p.adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
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
				if d.CurrentTxnStartOffset >= 0 {
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

// lastCheckpoint reads the checkpoint topic up to its last stable offset
// and returns this store's latest checkpoint.
func (p *Publisher) lastCheckpoint(ctx context.Context) (Checkpoint, error) {
	topic := p.cfg.CheckpointTopic()
	ends, err := p.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("list the offsets of %s: %w", topic, err)
	}
	starts, err := p.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("list the offsets of %s: %w", topic, err)
	}
	end, _ := ends.Lookup(topic, 0)
	start, _ := starts.Lookup(topic, 0)
	if end.Err != nil || start.Err != nil {
		return Checkpoint{}, fmt.Errorf("offsets of %s: %v %v", topic, end.Err, start.Err)
	}
	var cp Checkpoint
	if end.Offset <= start.Offset {
		return cp, nil
	}
	p.reader.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(start.Offset)}})
	defer p.reader.RemoveConsumePartitions(map[string][]int32{topic: {0}})
	for next := start.Offset; next < end.Offset; {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fetches := p.reader.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return Checkpoint{}, err
		}
		if fetches.Empty() {
			break // nothing more to fetch: compaction removed the offsets left
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if ferr != nil {
			return Checkpoint{}, fmt.Errorf("read %s: %w", topic, ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if r.Attrs.IsControl() || string(r.Key) != p.cfg.StoreName || r.Offset >= end.Offset {
				return
			}
			var c Checkpoint
			if err := json.Unmarshal(r.Value, &c); err != nil {
				ferr = fmt.Errorf("checkpoint at %s/0@%d: %w", topic, r.Offset, err)
				return
			}
			cp = c
		})
		if ferr != nil {
			return Checkpoint{}, ferr
		}
	}
	return cp, nil
}

// Publish stores events in their topics and cp in the checkpoint topic,
// in one transaction. The checkpoint record goes first, so that every open
// transaction of a relay includes the checkpoint partition (see Init).
// beforeCommit runs last, before the commit, and an error from it aborts
// the transaction: the relay checks there that it still holds its lease.
//
// On ErrFenced the publisher is done for. On any other error the
// transaction was aborted or its outcome is unknown: call Init again, which
// finds out from the committed checkpoint.
func (p *Publisher) Publish(ctx context.Context, events []Event, cp Checkpoint, beforeCommit func(context.Context) error) (err error) {
	records := make([]*kgo.Record, 0, len(events))
	for _, e := range events {
		n, err := p.topics.Partitions(ctx, p.cfg.Topic(e.StreamID.Category()))
		if err != nil {
			return err
		}
		records = append(records, p.cfg.Record(e.RecordedEvent, e.SchemaID, n))
	}
	cp.Relay, cp.At = p.opts.Instance, time.Now().UTC()
	value, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	checkpoint := &kgo.Record{Topic: p.cfg.CheckpointTopic(), Partition: 0, Key: []byte(p.cfg.StoreName), Value: value}

	// The whole transaction must end well within the broker's timeout.
	ctx, cancel := context.WithTimeout(ctx, p.opts.TransactionTimeout/2)
	defer cancel()
	if err := p.cl.BeginTransaction(); err != nil {
		return p.fenced(err)
	}
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	if err := p.cl.ProduceSync(ctx, checkpoint).FirstErr(); err != nil {
		return p.fenced(fmt.Errorf("produce the checkpoint: %w", err))
	}
	if err := p.cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return p.fenced(fmt.Errorf("produce %d records: %w", len(records), err))
	}
	if beforeCommit != nil {
		if err := beforeCommit(ctx); err != nil {
			return err
		}
	}
	if err := p.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return p.fenced(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// abort ends an unfinished transaction, best effort: a broker that cannot
// be reached aborts it at its timeout.
func (p *Publisher) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.cl.AbortBufferedRecords(ctx); err == nil {
		p.cl.EndTransaction(ctx, kgo.TryAbort)
	}
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
