package projector

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/internal/runner"
	"github.com/strata-events/strata/projection"
)

// Settings the commands read.
var (
	// kafkaSettings reach the projections' topics.
	kafkaSettings = []config.Setting{
		config.KafkaBrokers, config.KafkaTLS, config.KafkaSASLMechanism, config.KafkaSASLUser, config.KafkaSASLPassword,
		config.TopicPrefix, config.TopicPartitions,
	}
	// readModelSettings reach the read models and their bookkeeping.
	readModelSettings = []config.Setting{
		config.ReadModelDatabaseURL, config.DatabaseURL, config.ReadModelSchema, config.ProjectionsDir, config.GroupPrefix,
		config.LogLevel, config.LogFormat,
	}
	// registrySettings reach the schema registry (the store's embedded
	// one, or an external one) and the data subjects' keys, in the store.
	registrySettings = []config.Setting{config.DatabaseSchema, config.RegistryURL, config.MasterKeyFile}
)

func settings(groups ...[]config.Setting) []config.Setting {
	var out []config.Setting
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// system is what the commands work with: the read-model database, Kafka,
// the registry and a runner per projection.
type system struct {
	cfg       *config.Config
	log       *slog.Logger
	db        *pgxpool.Pool // search_path: the read-model schema
	consumers *kafka.Consumers
	metrics   *prometheus.Registry
	runners   []*runner.Runner
	monitor   *runner.Monitor
	// Set by withRegistry.
	store   *postgres.Store // the embedded registry's database, and the keys'
	catalog *registry.Catalog
	cipher  *personal.Cipher // nil without a master key file
}

// open connects to the read-model database and Kafka and makes a runner
// per definition. Close releases it all.
func open(ctx context.Context, cfg *config.Config, defs []definition, log *slog.Logger) (*system, error) {
	return openWith(ctx, cfg, defs, log, kafka.ConsumerOptions{})
}

// openWith is open with the consumers' options.
func openWith(ctx context.Context, cfg *config.Config, defs []definition, log *slog.Logger, copts kafka.ConsumerOptions) (_ *system, err error) {
	s := &system{cfg: cfg, log: log, metrics: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.db, err = openPool(ctx, cfg.ReadModelURL(), cfg.ReadModelSchema); err != nil {
		return nil, err
	}
	kcfg := kafka.Config{
		Brokers: cfg.KafkaBrokers, TLS: cfg.KafkaTLS,
		SASLMechanism: cfg.KafkaSASLMechanism, SASLUser: cfg.KafkaSASLUser, SASLPassword: cfg.KafkaSASLPassword,
		TopicPrefix: cfg.TopicPrefix, Partitions: cfg.TopicPartitions,
	}
	copts.Logger = log
	var consumers runner.Consumers // none for commands that only read the bookkeeping
	if len(cfg.KafkaBrokers) > 0 {
		if s.consumers, err = kafka.NewConsumers(kcfg, copts); err != nil {
			return nil, err
		}
		consumers = s.consumers
	}
	for _, d := range defs {
		s.runners = append(s.runners, runner.New(d.p, s.db, consumers, decoder{s}, runner.Options{
			Schema:      cfg.ReadModelSchema,
			GroupPrefix: cfg.GroupPrefix,
			Topic:       kcfg.Topic,
			Metrics:     s.metrics,
			Logger:      log,
		}))
	}
	s.monitor = runner.NewMonitor(s.db, s.runners, consumers)
	return s, nil
}

// withRegistry opens the registry the events are decoded with, and loads
// it.
func (s *system) withRegistry(ctx context.Context) error {
	var source registry.Source
	if s.cfg.RegistryURL == "" || s.cfg.MasterKeyFile != "" {
		store, err := postgres.Open(ctx, s.cfg.DatabaseURL, postgres.Options{Schema: s.cfg.DatabaseSchema, MaxConns: 2, GroupSlots: -1, Logger: s.log})
		if err != nil {
			return err
		}
		s.store = store
		if err := store.Check(ctx); err != nil {
			return err
		}
		source = registry.New(postgres.NewRegistryStore(store), registry.Options{Logger: s.log})
	}
	if s.cfg.RegistryURL != "" {
		client, err := registry.NewClient(s.cfg.RegistryURL, registry.ClientOptions{})
		if err != nil {
			return err
		}
		source = client
	}
	opts := registry.CatalogOptions{Logger: s.log}
	if s.cfg.MasterKeyFile != "" {
		cipher, err := postgres.OpenKeys(s.store, s.cfg.MasterKeyFile, personal.Options{})
		if err != nil {
			return err
		}
		s.cipher, opts.Personal = cipher, cipher
	}
	s.catalog = registry.NewCatalog(source, opts)
	if err := s.catalog.Refresh(ctx); err != nil {
		return fmt.Errorf("load the schema registry: %w", err)
	}
	return nil
}

func (s *system) close() {
	if s.catalog != nil {
		s.catalog.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.consumers != nil {
		s.consumers.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
}

// runnerOf returns the runner of projection name.
func (s *system) runnerOf(name string) *runner.Runner {
	for _, r := range s.runners {
		if r.Projection().Name == name {
			return r
		}
	}
	return nil
}

// decoder decodes through the system's catalog, which withRegistry opens
// before any runner decodes.
type decoder struct{ s *system }

func (d decoder) DecodeWire(ctx context.Context, id int, data []byte, readerType string) (any, error) {
	v, err := d.s.catalog.DecodeWire(ctx, id, data, readerType)
	if err == nil && readerType == projection.DataSubjectErasedType && d.s.cipher != nil {
		// The subject's key is destroyed: what this process cached of it
		// goes now, not when it expires.
		if rec, ok := v.(map[string]any); ok {
			if subject, ok := rec["subjectId"].(string); ok {
				d.s.cipher.Forget(subject)
			}
		}
	}
	return v, err
}

// openPool connects to the read-model database with schema as the
// search_path: projections name their tables without a schema.
func openPool(ctx context.Context, url, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("read-model database %s: %w", config.Redact(url), err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = 16
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "strata-projector"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("read-model database %s: %w", config.Redact(url), err)
	}
	return pool, nil
}
