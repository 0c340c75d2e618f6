package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/console"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/subscribe"
	"github.com/strata-events/strata/internal/tracing"
)

var serveCommand = config.Command{
	Name: "writer serve",
	Summary: `Serves the HTTP API: appends and reads of streams, categories and $all, the
schema registry at /registry (unless STRATA_REGISTRY_URL names an external one),
the relay's state at /v1/relay (whichever process's relay is active), /healthz,
/readyz and /metrics; and runs the outbox relay to Kafka (see "writer
relay --help"), which stands by while another process's relay is active.

Without STRATA_API_TOKENS nobody is authenticated, so the writer then refuses to
listen on anything but a loopback address unless STRATA_ALLOW_UNAUTHENTICATED=true.
On SIGINT or SIGTERM it stops taking requests, finishes those in flight (appends
are atomic: none is ever half-stored) and exits.`,
	Settings: append([]config.Setting{
		config.DatabaseURL, config.DatabaseSchema, config.HTTPAddr, config.RegistryURL,
		config.APITokens, config.AllowUnauthenticated, config.MasterKeyFile, config.LogLevel, config.LogFormat,
	}, relaySettings...),
}

// shutdownGrace bounds how long in-flight requests may take to finish.
const shutdownGrace = 15 * time.Second

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var requestTimeout, bodyTimeout time.Duration
	var maxBody int64
	var groupSlots, maxSubs, maxSubsPerToken int
	var withRelay, withConsole bool
	var projectorURL string
	var scavengeInterval time.Duration
	cmd := serveCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		relayFlag(fs, &withRelay)
		fs.BoolVar(&withConsole, "console", true, "serve the web console at /console/ (its pages read and act through this API, with its tokens)")
		fs.DurationVar(&scavengeInterval, "scavenge-interval", postgres.DefaultScavengeInterval,
			"time between rounds of the scavenger, which removes the published events that deletions and retention settings hide; 0 turns it off")
		fs.StringVar(&projectorURL, "projector-url", "http://127.0.0.1:8081",
			"a projector's read API, which the console's projection pages reach through this writer at "+httpapi.ProjectorPrefix+"/; empty: none")
		fs.DurationVar(&requestTimeout, "request-timeout", httpapi.DefaultTimeout, "bound on a request's work against the database")
		fs.DurationVar(&bodyTimeout, "body-timeout", httpapi.DefaultBodyTimeout, "bound on the time to receive a request's body")
		fs.Int64Var(&maxBody, "max-body-bytes", httpapi.DefaultMaxBodyBytes, "largest request body accepted")
		fs.IntVar(&groupSlots, "group-slots", postgres.DefaultGroupSlots,
			"group commit: statements storing groups of single-event appends at once (more for a database server of many cores; -1 turns it off)")
		fs.IntVar(&maxSubs, "max-subscriptions", httpapi.DefaultMaxSubscriptions, "live subscriptions (Server-Sent Events) open at once, in all")
		fs.IntVar(&maxSubsPerToken, "max-subscriptions-per-token", httpapi.DefaultMaxSubscriptionsPerToken,
			"live subscriptions open at once by one token (beyond it: 429 too_many_subscriptions)")
	}
	cfg, rest, err := config.Load(cmd, args, getenv, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", strings.Join(rest, " "))
	}
	if err := cfg.CheckExposure(); err != nil {
		return err
	}
	if scavengeInterval < 0 {
		return fmt.Errorf("--scavenge-interval must not be negative (0 turns the scavenger off), not %s", scavengeInterval)
	}
	if maxSubs < 1 || maxSubsPerToken < 1 {
		return fmt.Errorf("--max-subscriptions and --max-subscriptions-per-token must be at least 1, not %d and %d", maxSubs, maxSubsPerToken)
	}
	log := cfg.Logger(stderr).With("service", "writer")
	stopTracing, err := tracing.Setup(ctx, "strata-writer", cfg.OTLPEndpoint, getenv)
	if err != nil {
		return err
	}
	defer stopTracing(ctx)

	store, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Schema: cfg.DatabaseSchema, GroupSlots: groupSlots, Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Check(ctx); err != nil {
		return err
	}

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), store.Collector())

	var registryHandler http.Handler
	source, err := registrySource(cfg, store, log)
	if err != nil {
		return err
	}
	if reg, ok := source.(*registry.Registry); ok {
		registryHandler = registry.NewHandler(reg, log)
	}
	cipher, err := postgres.OpenKeys(store, cfg.MasterKeyFile, personal.Options{})
	if err != nil {
		return err
	}
	catalogOpts := registry.CatalogOptions{Logger: log}
	var eraser httpapi.Eraser
	if cipher != nil {
		catalogOpts.Personal, eraser = cipher, cipher
	}
	catalog := registry.NewCatalog(source, catalogOpts)
	defer catalog.Close()

	var r *relay.Relay
	onAppend := func() {}
	if withRelay {
		r = newRelay(cfg, store, catalog, metrics, log)
		onAppend = r.Notify
	}
	var consoleHandler http.Handler
	var projector *url.URL
	if withConsole {
		consoleHandler = console.Handler()
		if projector, err = parseProjectorURL(projectorURL); err != nil {
			return err
		}
	}
	api := httpapi.New(store, catalog, httpapi.Options{
		OnAppend:                 onAppend,
		Console:                  consoleHandler,
		Projector:                projector,
		Subscriptions:            subscribe.NewHub(ctx, store, subscribe.Options{Logger: log.With("component", "subscriptions")}),
		Tokens:                   httpapi.TokensOf(cfg.APITokens),
		Registry:                 registryHandler,
		RegistryIsWrite:          registry.IsWrite,
		MaxBodyBytes:             maxBody,
		MaxSubscriptions:         maxSubs,
		MaxSubscriptionsPerToken: maxSubsPerToken,
		MaxEventBytes:            cfg.MaxEventBytes,
		StoreName:                cfg.StoreName,
		Topic:                    kafkaConfig(cfg).Topic,
		Partition:                kafka.Partition,
		BodyTimeout:              bodyTimeout,
		Timeout:                  requestTimeout,
		Ready:                    store.Ping,
		Metrics:                  metrics,
		Logger:                   log,
		Personal:                 eraser,
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "writer listening on http://%s\n", ln.Addr())
	if withConsole {
		fmt.Fprintf(stdout, "console at http://%s%s\n", ln.Addr(), console.Prefix)
	}
	log.Info("serving", "addr", ln.Addr().String(), "config", cfg, "registry", registryKind(cfg))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpapi.Serve(gctx, ln, api.Handler(), log, shutdownGrace) })
	g.Go(func() error { return catalog.Run(gctx) })
	if r != nil {
		g.Go(func() error { return r.Run(gctx) })
	}
	if scavengeInterval > 0 {
		g.Go(func() error {
			store.RunScavenger(gctx, postgres.ScavengerOptions{Interval: scavengeInterval})
			return nil
		})
	}
	return g.Wait()
}

func registryKind(cfg *config.Config) string {
	if cfg.RegistryURL != "" {
		return "external " + cfg.RegistryURL
	}
	return "embedded at /registry"
}

// parseProjectorURL checks --projector-url: an http or https URL, or empty
// for none.
func parseProjectorURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--projector-url %q is not the base URL of a projector's read API, such as http://127.0.0.1:8081", s)
	}
	return u, nil
}
