package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/tracing"
)

// relaySettings are the settings the relay reads, in serve and relay.
var relaySettings = []config.Setting{
	config.KafkaBrokers, config.KafkaTLS, config.KafkaSASLMechanism, config.KafkaSASLUser, config.KafkaSASLPassword,
	config.TopicPrefix, config.TopicPartitions, config.StoreName, config.MaxEventBytes, config.OTLPEndpoint,
}

var relayCommand = config.Command{
	Name: "writer relay",
	Summary: `Runs the outbox relay alone: it publishes every committed event exactly once to the
Kafka topic of its category ({STRATA_TOPIC_PREFIX}{Category}), in Kafka transactions that
also commit the relay's checkpoint. One relay per store is active (a PostgreSQL advisory
lock); any other waits and takes over within seconds when the active one dies.
"writer serve" runs a relay too, unless --relay=false. Alone, the relay serves
/healthz, /readyz and /metrics on STRATA_HTTP_ADDR.`,
	Settings: append([]config.Setting{config.DatabaseURL, config.DatabaseSchema, config.RegistryURL,
		config.HTTPAddr, config.LogLevel, config.LogFormat}, relaySettings...),
}

func relayMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := config.Load(relayCommand, args, getenv, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("relay takes no arguments, got %q", strings.Join(rest, " "))
	}
	log := cfg.Logger(stderr).With("service", "relay")
	stopTracing, err := tracing.Setup(ctx, "strata-relay", cfg.OTLPEndpoint, getenv)
	if err != nil {
		return err
	}
	defer stopTracing(ctx)
	store, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Schema: cfg.DatabaseSchema, Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Check(ctx); err != nil {
		return err
	}
	source, err := registrySource(cfg, store, log)
	if err != nil {
		return err
	}
	catalog := registry.NewCatalog(source, registry.CatalogOptions{Logger: log})
	defer catalog.Close()
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), store.Collector())
	r := newRelay(cfg, store, catalog, metrics, log)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	router := httpapi.NewRouter(httpapi.RouterOptions{Ready: store.Ping, Metrics: metrics, Logger: log})
	fmt.Fprintf(stdout, "relay for store %s, metrics on http://%s/metrics\n", cfg.StoreName, ln.Addr())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return catalog.Run(gctx) })
	g.Go(func() error { return r.Run(gctx) })
	g.Go(func() error { return httpapi.Serve(gctx, ln, router, log, shutdownGrace) })
	return g.Wait()
}

// newRelay builds the relay over the store, the catalog and Kafka; it
// reports its state to the store while it is active.
func newRelay(cfg *config.Config, store *postgres.Store, catalog *registry.Catalog, metrics prometheus.Registerer, log *slog.Logger) *relay.Relay {
	kcfg := kafkaConfig(cfg)
	host, _ := os.Hostname()
	instance := fmt.Sprintf("%s/%d", host, os.Getpid())
	leases := relay.LeasesFunc(func(ctx context.Context) (relay.Lease, error) {
		return store.AcquireLease(ctx, postgres.RelayLease, time.Second)
	})
	newPublisher := func() (relay.Publisher, error) {
		// The producer takes any event the writer stored: one over its
		// batch limit would halt the relay.
		return kafka.NewPublisher(kcfg, kafka.PublisherOptions{Instance: instance, Logger: log,
			MaxRecordBytes: max(kafka.DefaultMaxRecordBytes, cfg.MaxEventBytes)})
	}
	// The active relay keeps its state in the store, where every writer's
	// GET /v1/relay reads it.
	return relay.New(store, catalog, leases, newPublisher, relay.Options{Instance: instance, Report: store.SaveRelayReport,
		Logger: log, Metrics: metrics})
}

func kafkaConfig(cfg *config.Config) kafka.Config {
	return kafka.Config{
		Brokers: cfg.KafkaBrokers, TLS: cfg.KafkaTLS,
		SASLMechanism: cfg.KafkaSASLMechanism, SASLUser: cfg.KafkaSASLUser, SASLPassword: cfg.KafkaSASLPassword,
		TopicPrefix: cfg.TopicPrefix, Partitions: cfg.TopicPartitions, StoreName: cfg.StoreName,
	}
}

// registrySource is the embedded registry, or the external one.
func registrySource(cfg *config.Config, store *postgres.Store, log *slog.Logger) (registry.Source, error) {
	if cfg.RegistryURL != "" {
		return registry.NewClient(cfg.RegistryURL, registry.ClientOptions{})
	}
	return registry.New(postgres.NewRegistryStore(store), registry.Options{Logger: log}), nil
}

// relayFlag adds --relay to serve.
func relayFlag(fs *flag.FlagSet, on *bool) {
	fs.BoolVar(on, "relay", true, "also run the outbox relay (one per store is active; the others stand by)")
}
