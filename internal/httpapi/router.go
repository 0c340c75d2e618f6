package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-events/strata/internal/eventstore"
)

// HandlerFunc is a route's handler: it gets the request's token (the zero
// Token when the route needs none or authentication is off) and returns an
// error, which the Router reports in the contract's format. A handler that
// returns an error must not have written anything.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, tok Token) error

// RouterOptions configures a Router; the zero value gives the defaults.
type RouterOptions struct {
	// Tokens are the accepted bearer tokens; none turns authentication
	// off.
	Tokens []Token
	// MaxBodyBytes bounds a request body; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// BodyTimeout bounds the time to receive a request's body, counted
	// from the request's start; default DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Ready reports whether the service can do its work; /readyz calls it
	// with a 2s deadline. Nil means always ready.
	Ready func(ctx context.Context) error
	// Metrics receives the request metrics and is served at /metrics; nil
	// makes a registry of the Router's own.
	Metrics *prometheus.Registry
	// Logger logs requests: failures at error, refusals at info, the rest
	// at debug. Nil discards.
	Logger *slog.Logger
}

// Router is the routing and middleware that Strata's HTTP APIs share (the
// writer's and the projector's read API). Every route gets a request id
// (a sane X-Request-Id is kept, else one is made, and echoed), a bounded
// body, the bearer-token check for its role, panic recovery, errors in the
// contract's format from one code → status table, the metrics
// strata_http_requests_total{route,method,code} and
// strata_http_request_duration_seconds{route}, and a request log.
//
// A new Router already serves GET /healthz, /readyz and /metrics without a
// token, and answers not_found (404) on any path no route matches. A path
// registered with methods ("GET /v1/x") answers other methods with
// method_not_allowed (405) and an Allow header.
//
// Register every route before serving; from then on a Router is safe for
// concurrent use.
type Router struct {
	mux      *http.ServeMux
	tokens   *tokens
	maxBody  int64
	bodyTime time.Duration
	log      *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// allowed holds the methods registered for each path, for 405s.
	allowed map[string][]string
}

// NewRouter returns a Router with the health, readiness and metrics routes
// and the 404 fallback. It panics if the metrics cannot be registered (an
// other Router already registered them on opts.Metrics).
func NewRouter(opts RouterOptions) *Router {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultBodyTimeout
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
	rt := &Router{
		mux:      http.NewServeMux(),
		tokens:   newTokens(opts.Tokens),
		maxBody:  opts.MaxBodyBytes,
		bodyTime: opts.BodyTimeout,
		log:      opts.Logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		allowed: map[string][]string{},
	}
	opts.Metrics.MustRegister(rt.requests, rt.duration)

	rt.Handle("GET /healthz", "healthz", RoleNone, func(w http.ResponseWriter, _ *http.Request, _ Token) error {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
	rt.Handle("GET /readyz", "readyz", RoleNone, func(w http.ResponseWriter, r *http.Request, _ Token) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := opts.Ready(ctx); err != nil {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return nil
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	})
	metricsHandler := promhttp.HandlerFor(opts.Metrics, promhttp.HandlerOpts{})
	rt.Handle("GET /metrics", "metrics", RoleNone, func(w http.ResponseWriter, r *http.Request, _ Token) error {
		metricsHandler.ServeHTTP(w, r)
		return nil
	})
	rt.wrap("/", "not_found", noRole, func(w http.ResponseWriter, r *http.Request, _ Token) error {
		return eventstore.Errorf(CodeNotFound, "no route for %s %s", r.Method, r.URL.Path)
	})
	return rt
}

// ServeHTTP routes the request.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

// Handle registers h for pattern (http.ServeMux's syntax) behind the
// middleware; route names the route in metrics; need is the role a token
// must have, RoleNone for an open route.
func (rt *Router) Handle(pattern, route string, need Role, h HandlerFunc) {
	rt.HandleRoles(pattern, route, func(*http.Request) Role { return need }, h)
}

// HandleRoles is Handle for routes whose role depends on the request (the
// registry's reads and writes share paths).
func (rt *Router) HandleRoles(pattern, route string, need func(*http.Request) Role, h HandlerFunc) {
	rt.wrap(pattern, route, need, h)
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return
	}
	if _, seen := rt.allowed[path]; !seen {
		rt.wrap(path, "method_not_allowed", noRole, func(w http.ResponseWriter, r *http.Request, _ Token) error {
			allow := strings.Join(rt.allowed[path], ", ")
			w.Header().Set("Allow", allow)
			return eventstore.Errorf(CodeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)
		})
	}
	rt.allowed[path] = append(rt.allowed[path], method)
	slices.Sort(rt.allowed[path])
}

func noRole(*http.Request) Role { return RoleNone }

// wrap registers h behind the middleware: request ids, the body's size
// limit and deadline, authentication, panic recovery, metrics and the request log.
func (rt *Router) wrap(pattern, route string, need func(*http.Request) Role, h HandlerFunc) {
	rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w}
		r.Body = http.MaxBytesReader(rec, r.Body, rt.maxBody)
		r.Body = withBodyDeadline(rec, r.Body, start.Add(rt.bodyTime), rt.bodyTime)

		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
				}
			}()
			tok, err := rt.tokens.authorize(r, need(r))
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
			WriteJSON(rec, status, map[string]errorBody{"error": body})
		}
		rt.finish(r, rec, route, id, start, err)
	})
}

func (rt *Router) finish(r *http.Request, rec *statusRecorder, route, id string, start time.Time, err error) {
	elapsed := time.Since(start)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	rt.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	rt.duration.WithLabelValues(route).Observe(elapsed.Seconds())
	level, msg := slog.LevelDebug, "request"
	switch {
	case status >= 500:
		level, msg = slog.LevelError, "request failed"
	case status >= 400:
		level, msg = slog.LevelInfo, "request refused"
	}
	if !rt.log.Enabled(r.Context(), level) {
		return // spare building the line: most requests are not logged
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "duration", elapsed, "request_id", id}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	rt.log.Log(r.Context(), level, msg, attrs...)
}

// withBodyDeadline bounds the time to receive body: the connection's read
// deadline is set to deadline until the body has been read to its end (or
// failed), and then cleared. It is cleared at the end because the server
// keeps reading the connection while the handler runs, to notice a client
// that goes away, and a deadline passing then would cancel the request's
// context: the work after the body (an append, a long read) is bounded by
// its own timeouts instead. A body that is not read to its end keeps the
// deadline (so does one that failed), which then bounds the server's
// discarding of the rest. Bodies
// the connection cannot put a deadline on (HTTP/2, tests' recorders) are
// left as they are.
func withBodyDeadline(w http.ResponseWriter, body io.ReadCloser, deadline time.Time, timeout time.Duration) io.ReadCloser {
	if body == nil || body == http.NoBody {
		return body
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(deadline) != nil {
		return body
	}
	return &deadlineBody{ReadCloser: body, rc: rc, timeout: timeout}
}

type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF && !b.done:
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("the request body did not arrive within %s", b.timeout)
	}
	return n, err
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
