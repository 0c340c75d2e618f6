// Package httpapi is the writer's HTTP API (the contract's §2): appending to
// and reading streams, reading categories and $all by cursor, the schema
// registry mounted at /registry, and /healthz, /readyz and /metrics.
//
// Every handler returns an error, and one function turns errors into the
// contract's status codes and bodies. Bearer tokens, when configured, are
// checked per route by role.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-events/strata/internal/eventstore"
)

// Schemas turns event data between the API's natural JSON and the Avro
// binary the store keeps. The registry's catalog implements it.
type Schemas interface {
	// Encode validates natural JSON data for event type typ against the
	// type's latest schema and returns the schema's fingerprint and the
	// Avro binary. Errors are coded unknown_event_type, schema_violation
	// (*eventstore.SchemaViolationError) or unavailable.
	Encode(ctx context.Context, typ string, data []byte) (eventstore.Fingerprint, []byte, error)
	// Decode returns stored data, written with the schema of fingerprint
	// fp, as natural JSON upcast to the type's latest schema, and the
	// registry id of the schema it was written with.
	Decode(ctx context.Context, typ string, fp eventstore.Fingerprint, data []byte) (json.RawMessage, int, error)
}

// Defaults for Options.
const (
	DefaultMaxBodyBytes = 4 << 20
	DefaultTimeout      = 10 * time.Second
)

// Options configures a Server; the zero value gives the defaults.
type Options struct {
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
	// Timeout bounds each request's work against the store; default 10s.
	// The store may take a little longer to settle an append whose
	// connection failed (see postgres.Options.SettleTimeout).
	Timeout time.Duration
	// Ready reports whether the service can do its work; /readyz calls it.
	Ready func(ctx context.Context) error
	// OnAppend is called after each append that stored events (the
	// relay's wake-up); it must not block.
	OnAppend func()
	// Metrics receives the API's metrics and is served at /metrics; nil
	// makes a registry of the API's own.
	Metrics *prometheus.Registry
	Logger  *slog.Logger
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	store   eventstore.Store
	schemas Schemas
	opts    Options
	tokens  *tokens
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
}

// New returns a Server over store and schemas.
func New(store eventstore.Store, schemas Schemas, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = prometheus.NewRegistry()
	}
	if opts.Ready == nil {
		opts.Ready = func(context.Context) error { return nil }
	}
	if opts.OnAppend == nil {
		opts.OnAppend = func() {}
	}
	s := &Server{
		store:   store,
		schemas: schemas,
		opts:    opts,
		tokens:  newTokens(opts.Tokens),
		log:     opts.Logger.With("component", "http"),
		metrics: newMetrics(opts.Metrics),
		mux:     http.NewServeMux(),
	}
	s.handle("POST /v1/streams/{streamId}/events", "append", RoleWriter, s.appendEvents)
	s.handle("GET /v1/streams/{streamId}/events", "read_stream", RoleReader, s.readStream)
	s.handle("GET /v1/categories/{category}/events", "read_category", RoleReader, s.readCategory)
	s.handle("GET /v1/events", "read_all", RoleReader, s.readAll)
	s.handle("GET /healthz", "healthz", RoleNone, s.healthz)
	s.handle("GET /readyz", "readyz", RoleNone, s.readyz)
	metricsHandler := promhttp.HandlerFor(opts.Metrics, promhttp.HandlerOpts{})
	s.handle("GET /metrics", "metrics", RoleNone, func(w http.ResponseWriter, r *http.Request, _ Token) error {
		metricsHandler.ServeHTTP(w, r)
		return nil
	})
	if opts.Registry != nil {
		registry := http.StripPrefix("/registry", opts.Registry)
		s.handleRoles("/registry/", "registry", s.registryRole, func(w http.ResponseWriter, r *http.Request, _ Token) error {
			registry.ServeHTTP(w, r)
			return nil
		})
	}
	for path, allow := range map[string]string{
		"/v1/streams/{streamId}/events":    "GET, POST",
		"/v1/categories/{category}/events": "GET",
		"/v1/events":                       "GET",
		"/healthz":                         "GET",
		"/readyz":                          "GET",
		"/metrics":                         "GET",
	} {
		s.handle(path, "method_not_allowed", RoleNone, func(w http.ResponseWriter, r *http.Request, _ Token) error {
			w.Header().Set("Allow", allow)
			return eventstore.Errorf(codeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)
		})
	}
	s.handle("/", "not_found", RoleNone, func(w http.ResponseWriter, r *http.Request, _ Token) error {
		return eventstore.Errorf(codeNotFound, "no route for %s %s", r.Method, r.URL.Path)
	})
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
func (s *Server) Handler() http.Handler { return s.mux }

// handlerFunc is a route's handler: it gets the request's token and returns
// an error for the caller to report.
type handlerFunc func(w http.ResponseWriter, r *http.Request, tok Token) error

func (s *Server) handle(pattern, name string, need Role, h handlerFunc) {
	s.handleRoles(pattern, name, func(*http.Request) Role { return need }, h)
}

// handleRoles registers h behind the middleware: request ids, the body
// limit, authentication, panic recovery, metrics and the request log.
func (s *Server) handleRoles(pattern, name string, need func(*http.Request) Role, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w}
		r.Body = http.MaxBytesReader(rec, r.Body, s.opts.MaxBodyBytes)

		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
				}
			}()
			tok, err := s.tokens.authorize(r, need(r))
			if err != nil {
				return err
			}
			return h(rec, r, tok)
		}()
		if err != nil {
			status, body := describe(err)
			body.RequestID = id
			if status == http.StatusUnauthorized {
				rec.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
			}
			writeJSON(rec, status, map[string]errorBody{"error": body})
		}
		s.finish(r, rec, name, id, start, err)
	})
}

func (s *Server) finish(r *http.Request, rec *statusRecorder, route, id string, start time.Time, err error) {
	elapsed := time.Since(start)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
	level, msg := slog.LevelDebug, "request"
	switch {
	case status >= 500:
		level, msg = slog.LevelError, "request failed"
	case status >= 400:
		level, msg = slog.LevelInfo, "request refused"
	}
	if !s.log.Enabled(r.Context(), level) {
		return // spare building the line: most requests are not logged
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "duration", elapsed, "request_id", id}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	s.log.Log(r.Context(), level, msg, attrs...)
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestID keeps a client's X-Request-Id when it is sane, else makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); requestIDPattern.MatchString(id) {
		return id
	}
	return eventstore.NewUUIDv7().String()
}

// statusRecorder notes the status a handler writes.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ Token) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ Token) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.opts.Ready(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
