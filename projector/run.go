package projector

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/readapi"
	"github.com/strata-events/strata/internal/tracing"
	"github.com/strata-events/strata/projection"
)

var runCommand = config.Command{
	Name: "projector run",
	Summary: `Runs the projections — all of them, or those --projections names — and serves
the read API on STRATA_HTTP_ADDR: /v1/orders/{orderId}, /v1/orders, /v1/shipped-items,
/v1/projections, the queries the declarative projections declare
(/v1/projections/{projection}/queries/{name}), /healthz, /readyz and /metrics.

Each projection is a Kafka consumer group ({STRATA_GROUP_PREFIX}{name}) over the
topics of its categories; start as many "projector run" processes as you like and
they share the partitions. A batch of events changes the read model (PostgreSQL,
schema STRATA_READMODEL_SCHEMA) in the same transaction as the stored offsets, so
every event is applied exactly once, whatever crashes. Declarative projections are
checked against the registered schemas at start. On SIGINT or SIGTERM the current
batches finish or roll back, and the process leaves its groups.`,
	Settings: settings(readModelSettings, kafkaSettings, registrySettings,
		[]config.Setting{config.HTTPAddr, config.APITokens, config.AllowUnauthenticated, config.OTLPEndpoint}),
	Defaults: map[config.Setting]string{config.HTTPAddr: "127.0.0.1:8081"},
}

const shutdownGrace = 10 * time.Second

func (c *cli) run(ctx context.Context, args []string) error {
	var (
		names          string
		sessionTimeout time.Duration
	)
	cmd := runCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		fs.StringVar(&names, "projections", "", "comma-separated projections to run; all when empty")
		fs.DurationVar(&sessionTimeout, "session-timeout", kafka.DefaultSessionTimeout,
			"how long the group waits for a worker that stopped answering (a crash) before moving its partitions to the others; Kafka's brokers accept 6s to 30m by default")
	}
	cfg, rest, err := config.Load(cmd, args, c.getenv, c.stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("run takes no arguments, got %q (to run some projections: --projections a,b)", strings.Join(rest, " "))
	}
	if err := cfg.CheckExposure(); err != nil {
		return err
	}
	log := cfg.Logger(c.stderr).With("service", "projector")
	stopTracing, err := tracing.Setup(ctx, "strata-projector", cfg.OTLPEndpoint, c.getenv)
	if err != nil {
		return err
	}
	defer stopTracing(ctx)
	all, err := c.definitions(cfg.ProjectionsDir)
	if err != nil {
		return err
	}
	defs, err := pick(all, names)
	if err != nil {
		return err
	}

	if sessionTimeout <= 0 {
		return fmt.Errorf("--session-timeout must be positive")
	}
	s, err := openWith(ctx, cfg, defs, log, kafka.ConsumerOptions{SessionTimeout: sessionTimeout})
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.withRegistry(ctx); err != nil {
		return err
	}
	if err := check(ctx, defs, s.catalog.Latest); err != nil {
		return err
	}
	for _, r := range s.runners {
		if err := r.Setup(ctx); err != nil {
			return fmt.Errorf("set up %s: %w", r.Projection().Name, err)
		}
	}
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var queries []*projection.Query
	for _, d := range defs {
		queries = append(queries, d.queries()...)
	}
	api := readapi.New(s.db, s.monitor, readapi.Options{
		Tokens:   httpapi.TokensOf(cfg.APITokens),
		Ready:    s.db.Ping,
		Metrics:  s.metrics,
		Logger:   log,
		Queries:  queries,
		Operator: newOperator(ctx, s),
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "projector running %s; read API on http://%s\n", known(defs), ln.Addr())
	log.Info("running", "projections", known(defs), "addr", ln.Addr().String(), "config", cfg)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpapi.Serve(gctx, ln, api.Handler(), log, shutdownGrace) })
	g.Go(func() error { return s.catalog.Run(gctx) })
	for _, r := range s.runners {
		g.Go(func() error {
			if err := r.Run(gctx); err != nil {
				return fmt.Errorf("projection %s: %w", r.Projection().Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}
