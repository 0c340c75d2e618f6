// Package httpapi is the writer's HTTP API (the contract's §2): appending to
// and reading streams, reading categories and $all by cursor, the schema
// registry mounted at /registry, the relay's state at /v1/relay, and
// /healthz, /readyz and /metrics.
//
// Every handler returns an error, and one function turns errors into the
// contract's status codes and bodies. Bearer tokens, when configured, are
// checked per route by role. The Router that does this is exported for
// Strata's other HTTP API, the projector's read API.
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/subscribe"
)

// Schemas turns event data between the API's natural JSON and the Avro
// binary the store keeps. The registry's catalog implements it.
type Schemas interface {
	// Encode validates natural JSON data for event type typ against the
	// type's latest schema and returns the schema's fingerprint and the
	// Avro binary, its personal fields encrypted for the data subject,
	// which it sets in meta. Errors are coded unknown_event_type,
	// schema_violation (*eventstore.SchemaViolationError), invalid_request
	// (personal fields without a data subject) or unavailable.
	Encode(ctx context.Context, typ string, data []byte, meta *eventstore.Metadata) (eventstore.Fingerprint, []byte, error)
	// Decode returns stored data, written with the schema of fingerprint
	// fp, as natural JSON upcast to the type's latest schema, and the
	// registry id of the schema it was written with.
	Decode(ctx context.Context, typ string, fp eventstore.Fingerprint, data []byte) (json.RawMessage, int, error)
}

// Defaults for Options.
const (
	DefaultMaxBodyBytes = 4 << 20
	DefaultTimeout      = 10 * time.Second
	// DefaultMaxEventBytes is Kafka's limit on a record batch, less
	// headroom: franz-go's default ProducerBatchMaxBytes is 1,000,012
	// bytes, and brokers' default max.message.bytes 1,048,588.
	DefaultMaxEventBytes = 1_000_000
	// DefaultBodyTimeout is long enough for a DefaultMaxBodyBytes body
	// at about 1.2 Mbit/s.
	DefaultBodyTimeout = 30 * time.Second
)

// Options configures a Server; the zero value gives the defaults.
type Options struct {
	// Console, when set, is served under /console/ with no token: it
	// serves the console's pages, which read and act through this API.
	Console http.Handler
	// Projector, when set with Console, is the base URL of a projector's
	// read API, which the console reaches under ProjectorPrefix.
	Projector *url.URL
	// Tokens are the accepted bearer tokens; none turns authentication
	// off (the writer then listens only on loopback unless told not to).
	Tokens []Token
	// Registry, when set, is served under /registry: reads with the
	// reader role, registrations and settings with admin.
	Registry http.Handler
	// RegistryIsWrite tells the registry's writes from its reads (some
	// reads are POSTs); nil counts every method but GET and HEAD a write.
	RegistryIsWrite func(*http.Request) bool
	// MaxBodyBytes bounds a request body; default 4 MiB.
	MaxBodyBytes int64
	// MaxEventBytes bounds the Kafka record the relay will publish for
	// one event (see recordSize); default DefaultMaxEventBytes. An append
	// with a larger event is refused, too_large.
	MaxEventBytes int
	// StoreName is the relay's CloudEvents source (STRATA_STORE_NAME), a
	// header of every record, counted in its size.
	StoreName string
	// Topic names the Kafka topic of a category's events
	// (kafka.Config.Topic), and Partition gives a record key's partition
	// among n (kafka.Partition): with them, GET /v1/relay?stream= says
	// where a stream's events go. Without them it refuses the parameter.
	Topic     func(category string) string
	Partition func(key []byte, n int) int32
	// BodyTimeout bounds the time to receive a request's body, from the
	// request's start; default DefaultBodyTimeout (see RouterOptions).
	BodyTimeout time.Duration
	// Timeout bounds each request's work against the store; default 10s.
	// The store may take a little longer to settle an append whose
	// connection failed (see postgres.Options.SettleTimeout).
	Timeout time.Duration
	// Ready reports whether the service can do its work; /readyz calls it.
	Ready func(ctx context.Context) error
	// OnAppend is called after each append that stored events (the
	// relay's wake-up); it must not block.
	OnAppend func()
	// Subscriptions runs the live subscriptions' feeds; their streams end
	// when its context does. Nil makes one (ending never) when the store
	// is an eventstore.Tailer; otherwise the subscription routes answer
	// 404.
	Subscriptions *subscribe.Hub
	// MaxSubscriptions bounds the open subscriptions in all, and
	// MaxSubscriptionsPerToken those of one token (of one principal);
	// defaults DefaultMaxSubscriptions and DefaultMaxSubscriptionsPerToken.
	MaxSubscriptions, MaxSubscriptionsPerToken int
	// Heartbeat is how often an idle subscription gets a comment, so that
	// proxies keep it open and clients notice a dead connection; default
	// 15s.
	Heartbeat time.Duration
	// Metrics receives the API's metrics and is served at /metrics; nil
	// makes a registry of the API's own.
	Metrics *prometheus.Registry
	Logger  *slog.Logger
	// Personal destroys data subjects' keys for erasures
	// (personal.Cipher); without it, erasures answer 503.
	Personal Eraser
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	store   eventstore.Store
	schemas Schemas
	opts    Options
	metrics *metrics
	router  *Router
	tailer  eventstore.Tailer // nil: no subscriptions
	subs    *subscriptions
}

// New returns a Server over store and schemas.
func New(store eventstore.Store, schemas Schemas, opts Options) *Server {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = DefaultMaxEventBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = prometheus.NewRegistry()
	}
	if opts.OnAppend == nil {
		opts.OnAppend = func() {}
	}
	s := &Server{
		store:   store,
		schemas: schemas,
		opts:    opts,
		metrics: newMetrics(opts.Metrics),
		router: NewRouter(RouterOptions{
			Tokens:       opts.Tokens,
			MaxBodyBytes: opts.MaxBodyBytes,
			BodyTimeout:  opts.BodyTimeout,
			Ready:        opts.Ready,
			Metrics:      opts.Metrics,
			Logger:       opts.Logger.With("component", "http"),
		}),
	}
	s.router.Handle("POST /v1/streams/{streamId}/events", "append", RoleWriter, s.appendEvents)
	s.router.Handle("GET /v1/streams/{streamId}/events", "read_stream", RoleReader, s.readStream)
	s.router.Handle("GET /v1/categories/{category}/events", "read_category", RoleReader, s.readCategory)
	s.router.Handle("GET /v1/events", "read_all", RoleReader, s.readAll)
	if rs, ok := store.(eventstore.RetentionStore); ok {
		s.settingsRoutes(rs)
	}
	if d, ok := store.(eventstore.Deleter); ok {
		s.router.HandleRoles("DELETE /v1/streams/{streamId}", "delete_stream", deleteRole, s.deleteStream(d))
	}
	if ma, ok := store.(eventstore.MultiAppender); ok {
		s.router.Handle("POST /v1/events", "append_multi", RoleWriter, s.appendMulti(ma))
	}
	if rr, ok := store.(eventstore.ReservationReader); ok {
		s.router.Handle("GET /v1/reservations/{scope}/{value}", "read_reservation", RoleReader, s.readReservation(rr))
	}
	if ds, ok := store.(eventstore.DataSubjects); ok {
		s.router.Handle("DELETE /v1/data-subjects/{subjectId}", "erase_data_subject", RoleAdmin, s.eraseDataSubject(ds))
		s.router.Handle("GET /v1/data-subjects/{subjectId}/events", "data_subject_events", RoleAdmin, s.subjectEvents(ds))
	}
	if sum, ok := store.(eventstore.Summarizer); ok {
		s.router.Handle("GET /v1/store", "store_summary", RoleReader, func(w http.ResponseWriter, r *http.Request, _ Token) error {
			summary, err := sum.Summarize(r.Context())
			if err != nil {
				return err
			}
			WriteJSON(w, http.StatusOK, summary)
			return nil
		})
	}
	if rs, ok := store.(eventstore.RelayStatusReader); ok {
		s.router.Handle("GET /v1/relay", "relay_status", RoleReader, s.relayStatus(rs))
	}
	if tailer, ok := store.(subscribe.Store); ok {
		hub := opts.Subscriptions
		if hub == nil {
			hub = subscribe.NewHub(context.Background(), tailer, subscribe.Options{Logger: opts.Logger})
		}
		hub.EncodeWith(s.encodeEvents)
		s.tailer, s.subs = tailer, newSubscriptions(hub, opts)
	}
	s.router.Handle("GET /v1/events/subscribe", "subscribe_all", RoleReader, s.subscribeAll)
	s.router.Handle("GET /v1/categories/{category}/subscribe", "subscribe_category", RoleReader, s.subscribeCategory)
	s.router.Handle("GET /v1/streams/{streamId}/subscribe", "subscribe_stream", RoleReader, s.subscribeStream)
	if opts.Console != nil {
		s.router.Handle("GET /console/", "console", RoleNone, func(w http.ResponseWriter, r *http.Request, _ Token) error {
			opts.Console.ServeHTTP(w, r)
			return nil
		})
		s.router.Handle("GET /console", "console", RoleNone, func(w http.ResponseWriter, r *http.Request, _ Token) error {
			http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
			return nil
		})
		s.proxyProjector(opts.Projector)
	}
	if opts.Registry != nil {
		registry := http.StripPrefix("/registry", opts.Registry)
		s.router.HandleRoles("/registry/", "registry", s.registryRole, func(w http.ResponseWriter, r *http.Request, _ Token) error {
			registry.ServeHTTP(w, r)
			return nil
		})
	}
	return s
}

// registryRole gives the registry's writes to admins and its reads to
// readers.
func (s *Server) registryRole(r *http.Request) Role {
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if s.opts.RegistryIsWrite != nil {
		write = s.opts.RegistryIsWrite(r)
	}
	if write {
		return RoleAdmin
	}
	return RoleReader
}

// Handler returns the API's handler.
func (s *Server) Handler() http.Handler { return s.router }
