package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/runner"
)

// Defaults for ConsumerOptions.
const (
	DefaultSessionTimeout = 10 * time.Second
	DefaultMaxPollRecords = 5000
	DefaultFetchMaxBytes  = 4 << 20
)

// ConsumerOptions configures Consumers; the zero value gives the defaults.
type ConsumerOptions struct {
	// SessionTimeout is how long the group waits for a silent member
	// (a killed worker) before giving its partitions to the others.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long a rebalance waits for every member
	// to finish its batch and rejoin; a member killed during a
	// rebalance holds the group up this long. Default three session
	// timeouts, and at least 5s: a batch takes far less.
	RebalanceTimeout time.Duration
	// MaxPollRecords bounds the records of one poll, and so the size of
	// the batches applied between rebalances.
	MaxPollRecords int
	// FetchMaxBytes bounds what a fetch buffers, and so memory.
	FetchMaxBytes int32
	Logger        *slog.Logger
}

// Consumers opens the projector's Kafka consumers: group members for
// `projector run` and plain partition readers for `projector rebuild`. All
// read with read_committed isolation, so they see only what the relay
// committed, and keep transaction markers, so that a reader knows when it
// has reached a partition's end. Safe for concurrent use.
type Consumers struct {
	cfg    Config
	opts   ConsumerOptions
	admin  *kgo.Client
	adm    *kadm.Client
	topics *Topics
	log    *slog.Logger
}

var _ runner.Consumers = (*Consumers)(nil)

// NewConsumers returns Consumers for the brokers of cfg.
func NewConsumers(cfg Config, opts ConsumerOptions) (*Consumers, error) {
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.RebalanceTimeout <= 0 {
		opts.RebalanceTimeout = max(3*opts.SessionTimeout, 5*time.Second)
	}
	if opts.MaxPollRecords <= 0 {
		opts.MaxPollRecords = DefaultMaxPollRecords
	}
	if opts.FetchMaxBytes <= 0 {
		opts.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	base, err := cfg.ClientOptions()
	if err != nil {
		return nil, err
	}
	admin, err := kgo.NewClient(base...)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(admin)
	return &Consumers{cfg: cfg, opts: opts, admin: admin, adm: adm, topics: NewTopics(admin, cfg), log: opts.Logger}, nil
}

// Close closes the admin client. Consumers opened before stay open.
func (c *Consumers) Close() { c.admin.Close() }

// ensure creates missing topics, as the relay would on first use.
func (c *Consumers) ensure(ctx context.Context, topics []string) error {
	for _, t := range topics {
		if _, err := c.topics.Partitions(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func (c *Consumers) consumerOptions() ([]kgo.Opt, error) {
	base, err := c.cfg.ClientOptions()
	if err != nil {
		return nil, err
	}
	return append(base,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(c.opts.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(min(c.opts.FetchMaxBytes, 1<<20)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	), nil
}

// Group implements runner.Consumers: a member of group, reading topics.
// The group balances cooperatively (sticky), never commits offsets to
// Kafka, and starts each assigned partition where hooks.Assigned says.
func (c *Consumers) Group(ctx context.Context, group string, topics []string, hooks runner.GroupHooks) (runner.Consumer, error) {
	if err := c.ensure(ctx, topics); err != nil {
		return nil, err
	}
	opts, err := c.consumerOptions()
	if err != nil {
		return nil, err
	}
	log := c.log.With("group", group)
	opts = append(opts,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(c.opts.SessionTimeout),
		kgo.RebalanceTimeout(c.opts.RebalanceTimeout),
		kgo.HeartbeatInterval(max(c.opts.SessionTimeout/10, 100*time.Millisecond)),
		// Registered so that assignment waits for the batch in hand.
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {}),
		kgo.AdjustFetchOffsetsFn(func(ctx context.Context, fetched map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			parts := map[string][]int32{}
			for t, ps := range fetched {
				for p := range ps {
					parts[t] = append(parts[t], p)
				}
			}
			var next map[string]map[int32]int64
			for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
				var err error
				if next, err = hooks.Assigned(ctx, parts); err == nil {
					break
				}
				log.Warn("cannot load the stored offsets of assigned partitions; retrying", "error", err)
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(wait):
				}
			}
			out := map[string]map[int32]kgo.Offset{}
			for t, ps := range parts {
				out[t] = map[int32]kgo.Offset{}
				for _, p := range ps {
					out[t][p] = offsetAt(next[t][p])
				}
			}
			return out, nil
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { hooks.Revoked(m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { hooks.Revoked(m) }),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &consumer{cl: cl, max: c.opts.MaxPollRecords, group: true}, nil
}

// Partitions implements runner.Consumers: a reader of every partition of
// topics, from the given offsets, outside any group.
func (c *Consumers) Partitions(ctx context.Context, topics []string, from map[string]map[int32]int64) (runner.Consumer, error) {
	ends, err := c.EndOffsets(ctx, topics)
	if err != nil {
		return nil, err
	}
	offsets := map[string]map[int32]kgo.Offset{}
	for t, ps := range ends {
		offsets[t] = map[int32]kgo.Offset{}
		for p := range ps {
			n, ok := from[t][p]
			if !ok {
				n = -1
			}
			offsets[t][p] = offsetAt(n)
		}
	}
	opts, err := c.consumerOptions()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(offsets))...)
	if err != nil {
		return nil, err
	}
	return &consumer{cl: cl, max: c.opts.MaxPollRecords}, nil
}

func offsetAt(next int64) kgo.Offset {
	if next < 0 {
		return kgo.NewOffset().AtStart()
	}
	return kgo.NewOffset().At(next).WithEpoch(-1)
}

// EndOffsets implements runner.Consumers: the last stable offset of each
// partition of topics.
func (c *Consumers) EndOffsets(ctx context.Context, topics []string) (map[string]map[int32]int64, error) {
	if err := c.ensure(ctx, topics); err != nil {
		return nil, err
	}
	listed, err := c.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	out := map[string]map[int32]int64{}
	var firstErr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			}
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, firstErr
}

// consumer is a runner.Consumer over a franz-go client.
type consumer struct {
	cl    *kgo.Client
	max   int
	group bool
}

// errClientClosed means the consumer was closed while polling.
var errClientClosed = errors.New("the Kafka consumer was closed")

func (c *consumer) Poll(ctx context.Context) ([]runner.Batch, error) {
	for {
		fs := c.cl.PollRecords(ctx, c.max)
		if err := ctx.Err(); err != nil {
			c.Release()
			return nil, err
		}
		if fs.IsClientClosed() {
			return nil, errClientClosed
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			c.Release()
			return nil, fetchErr
		}
		batches := toBatches(fs)
		if len(batches) > 0 {
			return batches, nil
		}
		c.Release()
	}
}

// toBatches groups the records of fs by partition, in offset order.
func toBatches(fs kgo.Fetches) []runner.Batch {
	var out []runner.Batch
	index := map[string]map[int32]int{}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		if index[p.Topic] == nil {
			index[p.Topic] = map[int32]int{}
		}
		i, ok := index[p.Topic][p.Partition]
		if !ok {
			i = len(out)
			index[p.Topic][p.Partition] = i
			out = append(out, runner.Batch{Topic: p.Topic, Partition: p.Partition})
		}
		b := &out[i]
		b.End = p.LastStableOffset
		for _, r := range p.Records {
			b.Records = append(b.Records, toRecord(r))
		}
	})
	return out
}

func toRecord(r *kgo.Record) runner.Record {
	rec := runner.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	if r.Attrs.IsControl() {
		rec.Control = true
		return rec
	}
	rec.Value = r.Value
	m, err := ParseRecord(r)
	if err != nil {
		rec.Err = err
		return rec
	}
	rec.SchemaID = m.SchemaID
	rec.Event = m.RecordedEvent
	return rec
}

func (c *consumer) Release() {
	if c.group {
		c.cl.AllowRebalance()
	}
}

func (c *consumer) Close() { c.cl.Close() }
