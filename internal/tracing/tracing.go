// Package tracing carries a W3C trace context from an append's request to
// the read model: the writer stores it with each event, the relay puts it
// in the Kafka record (the CloudEvents distributed-tracing extension,
// ce_traceparent and ce_tracestate), and the projector applies the event
// in a span that is the record's child. One trace then shows request →
// append → publish → apply.
//
// Spans are made by OpenTelemetry's SDK and exported over OTLP/HTTP when
// an endpoint is configured (STRATA_OTEL_EXPORTER_OTLP_ENDPOINT, or
// OpenTelemetry's own OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Without one, no span is recorded,
// and a trace context that comes with a request is passed on unchanged:
// a caller's trace still reaches the consumers.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracer is Strata's tracer, from the global provider that Setup sets.
func Tracer() trace.Tracer { return otel.Tracer("github.com/strata-events/strata") }

// enabled is whether Setup installed an exporting provider.
var enabled atomic.Bool

// Enabled reports whether spans are recorded and exported: code that
// would make spans in bulk (a relay's batch, a projector's) makes none
// when they are not.
func Enabled() bool { return enabled.Load() }

// propagator reads and writes the W3C traceparent and tracestate.
var propagator = propagation.TraceContext{}

// Setup installs a tracer provider that exports to endpoint, or to the
// endpoint OpenTelemetry's environment variables name, for the service
// (OTEL_SERVICE_NAME overrides it), reading the environment with getenv
// (the exporter reads OpenTelemetry's other variables itself). With
// neither endpoint, it installs nothing: spans are not recorded. The
// returned function flushes and stops the exporter, within 5 s.
func Setup(ctx context.Context, service, endpoint string, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	var opts []otlptracehttp.Option
	switch {
	case endpoint != "":
		// A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the traces'
		// path goes after it.
		u, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("tracing: the OTLP endpoint %q: %w", endpoint, err)
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	case getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "":
		return func(context.Context) error { return nil }, nil
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: the OTLP exporter: %w", err)
	}
	if name := getenv("OTEL_SERVICE_NAME"); name != "" {
		service = name
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(provider)
	enabled.Store(true)
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return provider.Shutdown(ctx)
	}, nil
}

// Context is a trace context as stored with an event: W3C traceparent
// and tracestate, both empty for none.
type Context struct {
	Parent, State string
}

// carrier is a propagation.TextMapCarrier over a Context.
type carrier struct{ c *Context }

func (k carrier) Get(key string) string {
	switch key {
	case "traceparent":
		return k.c.Parent
	case "tracestate":
		return k.c.State
	}
	return ""
}

func (k carrier) Set(key, value string) {
	switch key {
	case "traceparent":
		k.c.Parent = value
	case "tracestate":
		k.c.State = value
	}
}

func (k carrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// Extract returns ctx with the span context that c holds, as a remote
// parent; a malformed or empty c adds nothing.
func Extract(ctx context.Context, c Context) context.Context {
	if c.Parent == "" {
		return ctx
	}
	return propagator.Extract(ctx, carrier{&c})
}

// Inject returns the trace context of ctx's span, or the zero Context when
// it has none that is valid.
func Inject(ctx context.Context) Context {
	var c Context
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, carrier{&c})
	}
	return c
}

// Start starts a span named name as a child of parent (a stored or
// received trace context; none starts a new trace), and returns it with
// the trace context to pass on: the span's when spans are recorded, else
// parent's, checked and written again, or none.
func Start(ctx context.Context, parent Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span, Context) {
	ctx, span := Tracer().Start(Extract(ctx, parent), name, opts...)
	return ctx, span, Inject(ctx)
}

// FromHeaders returns the trace context of an HTTP request's traceparent
// and tracestate headers, as they came.
func FromHeaders(get func(string) string) Context {
	return Context{Parent: get("traceparent"), State: get("tracestate")}
}
