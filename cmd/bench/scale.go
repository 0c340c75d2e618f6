package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/internal/relay"
)

// scaleWorkers are the points of the projector's curve; the first is the
// baseline of the others.
var scaleWorkers = []int{1, 2, 4}

// scaleEvents is the backlog of the projector's rounds: five times the
// projector group's, so that it outlasts the group's rebalances (about 3
// seconds) by enough to measure the steady rate.
const scaleEvents = 5 * projectorEvents

// benchScale measures scale-out on one machine: HTTP appends through one
// and two writer processes behind one PostgreSQL, and the projector's
// backlog applied by one, two and four `projector run` processes in one
// consumer group, each point as a ratio to one process in the same run.
func benchScale(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	if err := scaleWriters(ctx, url, cfg, t, log); err != nil {
		return err
	}
	return scaleProjectors(ctx, url, cfg, t, log)
}

// scaleWriters compares 64 clients appending through two writers, 32 on
// each, with 64 through one.
func scaleWriters(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	s, err := openBenchStore(ctx, url, "bench_scale_http", 8)
	if err != nil {
		return err
	}
	defer s.Close()
	var addrs []string
	for range 2 {
		w, err := startWriter(ctx, url, "bench_scale_http", log, "--relay=false")
		if err != nil {
			return err
		}
		defer w.stop()
		addrs = append(addrs, w.addr)
	}
	const workers = 64
	one, closeOne, err := dialLeanClients(addrs[0], workers, "")
	if err != nil {
		return err
	}
	defer closeOne()
	var two []*leanClient
	for _, addr := range addrs {
		clients, closeTwo, err := dialLeanClients(addr, workers/2, "")
		if err != nil {
			return err
		}
		defer closeTwo()
		two = append(two, clients...)
	}
	name := fmt.Sprintf("HTTP append 1 event, %d clients, 2 writer processes (events/s)", workers)
	fmt.Fprintf(log, "  %s ...\n", name)
	p, err := compare(ctx, cfg.rounds, workers, cfg.duration,
		httpAppendOp(two, newStreams("two", workers)), httpAppendOp(one, newStreams("one", workers)))
	if err != nil {
		return err
	}
	t.add(curveRow(name, p, "1 writer"))
	return nil
}

// curveRow is the row of a point of a curve: ours beside the curve's
// first point, with no target.
func curveRow(name string, p *pair, base string) row {
	return row{
		name:   name,
		ours:   perSecond(median(p.ours)),
		base:   perSecond(median(p.base)) + " (" + base + ")",
		ratio:  fmt.Sprintf("%.2f", p.ratio()),
		target: "(curve)",
	}
}

// scaleProjectors stores and publishes scaleEvents Order events, then has
// scaleWorkers processes apply them all to order_summary in a fresh read
// model and group, in rounds that go through every point of the curve.
func scaleProjectors(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	b, rl, stop, err := startProjectorBench(ctx, url, "bench_scale_prj", "scl", cfg, log)
	if err != nil {
		return err
	}
	defer stop()
	if err := b.fillOrders(ctx, rl, scaleEvents, 1); err != nil {
		return err
	}
	// The relay stays idle from here: the rounds measure the projectors.

	bin, projections, cleanup, err := buildProjector(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.kafka.Brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	sc := &scaleBench{projectorBench: b, bin: bin, projections: projections, adm: kadm.NewClient(cl), total: b.appended.Load()}
	rates := make([][]float64, len(scaleWorkers))
	for r := range cfg.rounds {
		fmt.Fprintf(log, "    round %d:\n", r+1)
		for i, n := range scaleWorkers {
			rate, err := sc.round(ctx, n)
			if err != nil {
				return fmt.Errorf("%d workers: %w", n, err)
			}
			rates[i] = append(rates[i], rate)
		}
	}
	for i, n := range scaleWorkers[1:] {
		t.add(curveRow(fmt.Sprintf("projector, %d workers (events/s)", n), &pair{ours: rates[i+1], base: rates[0]}, "1 worker"))
	}
	return nil
}

// buildProjector builds cmd/projector into a temporary directory, which
// cleanup removes, and returns its path and that of an empty projections
// directory beside it.
func buildProjector(ctx context.Context) (bin, projections string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "strata-bench-projector-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	bin, projections = filepath.Join(dir, "projector"), filepath.Join(dir, "projections")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/projector").CombinedOutput(); err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("build the projector: %v\n%s", err, out)
	}
	if err := os.Mkdir(projections, 0o755); err != nil {
		cleanup()
		return "", "", nil, err
	}
	return bin, projections, cleanup, nil
}

// scaleBench runs rounds of `projector run` processes over the backlog.
type scaleBench struct {
	*projectorBench
	bin, projections string
	adm              *kadm.Client
	total            int64 // events stored and published
}

// round starts n `projector run --projections order_summary` processes in
// a fresh read model and consumer group, waits until the group is stable
// with every partition assigned and every process holding some, and a
// first batch is committed, and returns the rate at which they apply the
// rest of the backlog: the processes' start, the joins and the rebalances
// they make are left out, since they come once.
func (sc *scaleBench) round(ctx context.Context, n int) (float64, error) {
	schema := harness.UniqueName("bench_scale_rm_")
	defer dropSchema(context.WithoutCancel(ctx), sc.store, schema)
	prefix := harness.UniqueName("bench.") + "."
	exited := make(chan error, n)
	began := time.Now()
	for range n {
		cmd := sc.projectorCmd(sc.bin, sc.projections, schema, prefix)
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		done := make(chan struct{})
		go func() { exited <- cmd.Wait(); close(done) }()
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}()
	}
	alive := func() error {
		select {
		case err := <-exited:
			return fmt.Errorf("a projector process exited: %v", err)
		default:
			return nil
		}
	}
	group := prefix + "order_summary"
	err := waitUntil(ctx, time.Minute, fmt.Sprintf("%d projector processes to share the partitions", n), func() (bool, error) {
		if err := alive(); err != nil {
			return false, err
		}
		if ok, err := sc.shared(ctx, group, n); !ok || err != nil {
			return false, err
		}
		applied, err := appliedIn(ctx, sc.store, schema, "order_summary")
		return applied > 0, err
	})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	from, err := appliedIn(ctx, sc.store, schema, "order_summary")
	if err != nil {
		return 0, err
	}
	if from > sc.total*3/4 {
		return 0, fmt.Errorf("%s of %s events were applied before the group was stable: too few left to measure", thousands(float64(from)), thousands(float64(sc.total)))
	}
	err = waitUntil(ctx, 3*time.Minute, fmt.Sprintf("%d projector processes to apply %s events", n, thousands(float64(sc.total))), func() (bool, error) {
		if err := alive(); err != nil {
			return false, err
		}
		applied, err := appliedIn(ctx, sc.store, schema, "order_summary")
		return applied >= sc.total, err
	})
	if err != nil {
		return 0, err
	}
	rate := float64(sc.total-from) / time.Since(start).Seconds()
	if err := checkSummary(ctx, sc.store, schema, int(sc.total/eventsPerOrder)); err != nil {
		return 0, err
	}
	fmt.Fprintf(sc.log, "    %d worker(s): %s, after %s to share the partitions and commit, in which %s events were applied\n",
		n, perSecond(rate), start.Sub(began).Round(time.Millisecond), thousands(float64(from)))
	return rate, nil
}

// shared reports whether group is stable with n members, each assigned
// some partitions, and every partition of the topics they joined assigned.
func (sc *scaleBench) shared(ctx context.Context, group string, n int) (bool, error) {
	groups, err := sc.adm.DescribeGroups(ctx, group)
	if err != nil {
		return false, err
	}
	g, ok := groups[group]
	if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != n {
		return false, nil
	}
	assigned := 0
	for _, m := range g.Members {
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			return false, nil
		}
		mine := 0
		for _, topic := range c.Topics {
			mine += len(topic.Partitions)
		}
		if mine == 0 {
			return false, nil
		}
		assigned += mine
	}
	return assigned == len(g.JoinTopics())*sc.kafka.Partitions, nil
}

// startProjectorBench sets up what the projector benchmarks share: a
// store in schema whose embedded registry holds the example schemas, a
// master key that encrypts the personal data, an embedded broker with
// topics named from prefix, and a relay that publishes the store to it,
// as `writer serve` would, running. stop undoes it all.
func startProjectorBench(ctx context.Context, url, schema, prefix string, cfg benchConfig, log io.Writer) (_ *projectorBench, _ *running, stop func(), err error) {
	var undo []func()
	stop = func() {
		for _, f := range slices.Backward(undo) {
			f()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	s, err := openBenchStore(ctx, url, schema, 16)
	if err != nil {
		return nil, nil, nil, err
	}
	undo = append(undo, s.Close)
	reg := registry.New(postgres.NewRegistryStore(s), registry.Options{})
	files, err := registry.ReadSchemaDir("schemas")
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := reg.Apply(ctx, registry.WithSystemSchemas(files), false); err != nil {
		return nil, nil, nil, err
	}
	keyDir, err := os.MkdirTemp("", "strata-bench-keys-")
	if err != nil {
		return nil, nil, nil, err
	}
	undo = append(undo, func() { os.RemoveAll(keyDir) })
	keyFile := filepath.Join(keyDir, "master.key")
	if err := personal.WriteMasterKeyFile(keyFile); err != nil {
		return nil, nil, nil, err
	}
	cipher, err := postgres.OpenKeys(s, keyFile, personal.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	catalog := registry.NewCatalog(reg, registry.CatalogOptions{Personal: cipher})
	undo = append(undo, catalog.Close)
	if err := catalog.Refresh(ctx); err != nil {
		return nil, nil, nil, err
	}
	broker, err := harness.StartKafka(harness.KafkaOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	undo = append(undo, broker.Stop)
	b := &projectorBench{url: url, cfg: cfg, log: log, store: s, catalog: catalog, relayReg: prometheusRegistry(), keyFile: keyFile,
		kafka: kafka.Config{Brokers: broker.Brokers(), TopicPrefix: harness.UniqueName(prefix) + ".", Partitions: 12, StoreName: harness.UniqueName(prefix)}}
	b.relay = relay.New(s, catalog, benchLeases{s}, func() (relay.Publisher, error) {
		return kafka.NewPublisher(b.kafka, kafka.PublisherOptions{})
	}, relay.Options{Metrics: b.relayReg})
	rl := background(ctx, b.relay.Run)
	undo = append(undo, func() { rl.stop() })
	return b, rl, stop, nil
}
