package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/kafka"
)

// projectionSplit is how a projection's consumer group divides the
// partitions among its members: one "[0 2]" a member.
type projectionSplit struct {
	projection string
	members    []string
}

// groupSplit waits until the consumer group of each projection has as many
// members as there are workers, each holding partitions of events.Order
// and all of them held, and returns the division.
func groupSplit(ctx context.Context, brokers []string, projections []string, workers []*process) ([]projectionSplit, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	groups := make([]string, len(projections))
	for i, p := range projections {
		groups[i] = "strata.projection." + p
	}
	deadline := time.Now().Add(startTimeout)
	last := "nothing yet"
	for {
		split, settled, err := describeSplit(ctx, adm, projections, groups, len(workers))
		if err == nil && settled {
			return split, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprint(split)
		}
		if time.Now().After(deadline) {
			return nil, blame(fmt.Errorf("the projectors' consumer groups did not settle within %s (last seen: %s)", startTimeout, last), workers...)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func describeSplit(ctx context.Context, adm *kadm.Client, projections, groups []string, members int) ([]projectionSplit, bool, error) {
	described, err := adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return nil, false, err
	}
	settled := true
	var out []projectionSplit
	for i, g := range groups {
		dg, ok := described[g]
		if !ok || dg.Err != nil {
			return nil, false, fmt.Errorf("group %s: %v", g, dg.Err)
		}
		s := projectionSplit{projection: projections[i]}
		held := 0
		for _, m := range dg.Members {
			var ps []int32
			if c, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range c.Topics {
					ps = append(ps, t.Partitions...)
				}
			}
			slices.Sort(ps)
			held += len(ps)
			if len(ps) == 0 {
				settled = false
			}
			s.members = append(s.members, fmt.Sprint(ps))
		}
		slices.Sort(s.members)
		if len(dg.Members) != members || held != partitions || dg.State != "Stable" {
			settled = false
		}
		out = append(out, s)
	}
	return out, settled, nil
}

// kafkaRecord is a record of an order's stream, read back.
type kafkaRecord struct {
	partition int32
	offset    int64
	key       string
	msg       kafka.Message
}

// readRecords reads events.Order from the start, as a read_committed
// consumer, until it holds want records keyed stream (or 15 s pass), and
// returns those and how many records it read in all.
func readRecords(ctx context.Context, brokers []string, stream string, want int) ([]kafkaRecord, int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("events.Order"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	var mine []kafkaRecord
	total := 0
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		for _, r := range fs.Records() {
			total++
			if string(r.Key) != stream {
				continue
			}
			m, err := kafka.ParseRecord(r)
			if err != nil {
				return nil, 0, err
			}
			mine = append(mine, kafkaRecord{partition: r.Partition, offset: r.Offset, key: string(r.Key), msg: m})
		}
		if len(mine) >= want && fs.Empty() {
			break
		}
	}
	return mine, total, nil
}

// partitionList formats partitions as "[0 2]".
func partitionList(ps []string) string { return "[" + strings.Join(ps, " ") + "]" }
