package harness

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadCommitted returns every committed record of topics, in offset order
// per partition, from each partition's start to its last stable offset as
// the call begins (a topic not created yet holds nothing). It reads to those offsets, or fails when ctx ends
// first: unlike a consumer that stops at its first quiet poll, a slow
// broker cannot make it return too little. opts connect to the brokers.
func ReadCommitted(ctx context.Context, opts []kgo.Opt, topics ...string) ([]*kgo.Record, error) {
	admin, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list committed offsets: %w", err)
	}
	from := map[string]map[int32]kgo.Offset{}
	next := map[string]map[int32]int64{} // next offset to read, where there is more
	var ferr error
	ends.Each(func(end kadm.ListedOffset) {
		start, ok := starts.Lookup(end.Topic, end.Partition)
		switch {
		case errors.Is(end.Err, kerr.UnknownTopicOrPartition):
			// Not created yet: nothing to read.
		case end.Err != nil || !ok || start.Err != nil:
			ferr = errors.Join(ferr, fmt.Errorf("offsets of %s/%d: %v %v", end.Topic, end.Partition, end.Err, start.Err))
		case end.Offset > start.Offset:
			if from[end.Topic] == nil {
				from[end.Topic], next[end.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			from[end.Topic][end.Partition] = kgo.NewOffset().At(start.Offset)
			next[end.Topic][end.Partition] = start.Offset
		}
	})
	if ferr != nil || len(from) == 0 {
		return nil, ferr
	}
	// Control records (transaction markers) are kept so that the read
	// can tell it has passed the last one before the end.
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		if reachedEnds(next, ends) {
			return out, nil
		}
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read to the committed end of %v: %w", topics, err)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetch %s/%d: %w", topic, p, err))
		})
		if ferr != nil {
			return nil, ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, _ := ends.Lookup(r.Topic, r.Partition)
			if r.Offset >= end.Offset {
				return
			}
			next[r.Topic][r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
}

func reachedEnds(next map[string]map[int32]int64, ends kadm.ListedOffsets) bool {
	for topic, ps := range next {
		for p, n := range ps {
			if end, _ := ends.Lookup(topic, p); n < end.Offset {
				return false
			}
		}
	}
	return true
}
