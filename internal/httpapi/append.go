package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/tracing"
)

// appendRequest is the body of POST /v1/streams/{streamId}/events, as
// decoded in one pass.
type appendRequest struct {
	ExpectedVersion json.RawMessage `json:"expectedVersion"`
	Events          []eventInput    `json:"events"`
	reservationsInput
}

// reservationsInput is the values an append claims and releases (see
// eventstore.Reservation).
type reservationsInput struct {
	Reserve []reservationInput `json:"reserve"`
	Release []reservationInput `json:"release"`
}

type reservationInput struct {
	Scope string `json:"scope"`
	Value string `json:"value"`
}

func reservationsOf(in []reservationInput) []eventstore.Reservation {
	if len(in) == 0 {
		return nil
	}
	out := make([]eventstore.Reservation, len(in))
	for i, r := range in {
		out[i] = eventstore.Reservation{Scope: r.Scope, Value: r.Value}
	}
	return out
}

// appendRequestRaw is the same body with the events kept raw, to find which
// event a malformed body goes wrong in.
type appendRequestRaw struct {
	ExpectedVersion json.RawMessage   `json:"expectedVersion"`
	Events          []json.RawMessage `json:"events"`
	Reserve         json.RawMessage   `json:"reserve"`
	Release         json.RawMessage   `json:"release"`
}

type eventInput struct {
	ID       *string         `json:"id"`
	Type     *string         `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata *metadataInput  `json:"metadata"`
}

type metadataInput struct {
	CorrelationID string            `json:"correlationId"`
	CausationID   string            `json:"causationId"`
	UserID        string            `json:"userId"`
	TenantID      string            `json:"tenantId"`
	DataSubject   string            `json:"dataSubject"`
	Custom        map[string]string `json:"custom"`
}

type appendResponse struct {
	StreamID     string          `json:"streamId"`
	FirstVersion int64           `json:"firstVersion"`
	LastVersion  int64           `json:"lastVersion"`
	Events       []appendedEvent `json:"events"`
	// Position is the token of the last event (eventstore.Written), for a
	// projector read API's waitForPosition.
	Position string `json:"position"`
}

type appendedEvent struct {
	ID             eventstore.UUID `json:"id"`
	Version        int64           `json:"version"`
	GlobalPosition int64           `json:"globalPosition"`
}

func (s *Server) appendEvents(w http.ResponseWriter, r *http.Request, tok Token) (err error) {
	outcome, nevents := outcomeRejected, 0
	defer func() {
		if err != nil {
			outcome = appendOutcome(err)
		}
		s.metrics.appends.WithLabelValues(outcome).Inc()
		s.metrics.events.WithLabelValues(outcome).Add(float64(nevents))
	}()

	stream, err := eventstore.ParseStreamID(r.PathValue("streamId"))
	if err != nil {
		return err
	}
	body, err := readBody(r, s.router.maxBody)
	if err != nil {
		return err
	}
	req, expected, err := parseAppend(body)
	if err != nil {
		return err
	}
	nevents = len(req.Events)
	reserve, release := reservationsOf(req.Reserve), reservationsOf(req.Release)
	if err := eventstore.ValidateReservations("", reserve, release, map[eventstore.Reservation]string{}); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
	defer cancel()
	ctx, end := traceAppend(ctx, r, stream)
	defer func() { end(err) }()
	events, err := s.events(ctx, stream, req.Events, tok)
	if err != nil {
		return err
	}
	start := time.Now()
	var res eventstore.AppendResult
	if reserve != nil || release != nil {
		res, err = s.appendReserving(ctx, eventstore.StreamAppend{Stream: stream, Expected: expected, Events: events, Reserve: reserve, Release: release})
	} else {
		res, err = s.store.Append(ctx, stream, expected, events)
	}
	s.metrics.appendLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		if res, err = s.replayOf(ctx, err, events); err != nil {
			return err
		}
	}

	res.Stream = stream
	resp := appendResponseOf(res)
	status := http.StatusCreated
	outcome = outcomeStored
	if res.Replayed {
		status, outcome = http.StatusOK, outcomeReplayed
	} else {
		s.opts.OnAppend()
		if s.subs != nil {
			s.subs.hub.Notify(stream)
		}
	}
	w.Header().Set("Location", fmt.Sprintf("/v1/streams/%s/events?from=%d", stream, res.FirstVersion))
	WriteJSON(w, status, resp)
	return nil
}

// traceAppend starts the span of an append to streams (several for a
// multi-stream append), as a child of the request's traceparent and
// tracestate, or of a new trace; the events stored take its trace context.
// Without tracing it records nothing, and the request's trace context
// passes on as it came (checked). end ends the span with the append's
// error.
func traceAppend(ctx context.Context, r *http.Request, streams ...eventstore.StreamID) (context.Context, func(error)) {
	name := "append"
	if len(streams) == 1 {
		name = "append " + streams[0].Category()
	}
	ctx, span, _ := tracing.Start(ctx, tracing.FromHeaders(r.Header.Get), name, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		return ctx, func(error) {}
	}
	ids := make([]string, len(streams))
	for i, s := range streams {
		ids[i] = s.String()
	}
	span.SetAttributes(attribute.StringSlice("strata.stream_ids", ids))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// replayOf turns a duplicate that is a replay into its result. A retry of
// an append after a schema was registered encodes the same data with the
// new schema, in other bytes; the store, which cannot read Avro, reports
// the stored events (DuplicateEventIDError.Stored), and the retry is a
// replay if each event's data, read as natural JSON in the type's latest
// schema, is the same value as the stored event's. Any other error, or a
// duplicate whose data differs, is returned as it is.
func (s *Server) replayOf(ctx context.Context, err error, events []eventstore.EventData) (eventstore.AppendResult, error) {
	var dup *eventstore.DuplicateEventIDError
	if !errors.As(err, &dup) || len(dup.Stored) != len(events) {
		return eventstore.AppendResult{}, err
	}
	res := eventstore.AppendResult{Stream: dup.Stored[0].StreamID, Replayed: true}
	for i, e := range events {
		stored := dup.Stored[i]
		same, cerr := s.sameData(ctx, stored, e)
		switch {
		case cerr != nil:
			return eventstore.AppendResult{}, cerr
		case !same || stored.ID != e.ID:
			return eventstore.AppendResult{}, err
		}
		res.Events = append(res.Events, eventstore.AppendedEvent{ID: e.ID, Version: stored.Version, GlobalPosition: stored.GlobalPosition})
	}
	res.FirstVersion, res.LastVersion = res.Events[0].Version, res.Events[len(res.Events)-1].Version
	return res, nil
}

// sameData reports whether e's data is the same value as stored's, both
// read in the type's latest schema.
func (s *Server) sameData(ctx context.Context, stored eventstore.RecordedEvent, e eventstore.EventData) (bool, error) {
	if stored.Type != e.Type {
		return false, nil
	}
	var values [2]any
	for i, ev := range [2]struct {
		fp   eventstore.Fingerprint
		data []byte
	}{{stored.Schema, stored.Data}, {e.Schema, e.Data}} {
		text, _, err := s.schemas.Decode(ctx, e.Type, ev.fp, ev.data)
		if err != nil {
			return false, fmt.Errorf("compare event %s with the stored one: %w", e.ID, err)
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber() // compare numbers as written, not as float64
		if err := dec.Decode(&values[i]); err != nil {
			return false, fmt.Errorf("compare event %s with the stored one: %w", e.ID, err)
		}
	}
	return reflect.DeepEqual(values[0], values[1]), nil
}

func appendOutcome(err error) string {
	switch eventstore.ErrorCode(err) {
	case eventstore.CodeWrongExpectedVersion, eventstore.CodeDuplicateEventID:
		return outcomeConflict
	case eventstore.CodeUnavailable:
		return outcomeUnavailable
	case eventstore.CodeInternal:
		return outcomeError
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return outcomeUnavailable
	}
	return outcomeRejected
}

// readBody reads the whole body, within limit, and checks that it is UTF-8
// (encoding/json would silently replace bad bytes). The buffer grows as
// the body arrives, up to what Content-Length declares: a declared length
// is a promise, not a reason to allocate.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := readUpTo(r.Body, r.ContentLength, limit)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, eventstore.Errorf(eventstore.CodeTooLarge, "the request body is larger than %d bytes", tooLarge.Limit)
	case err != nil:
		return nil, eventstore.Errorf(eventstore.CodeInvalidRequest, "reading the request body: %v", err)
	case !utf8.Valid(body):
		return nil, eventstore.Errorf(eventstore.CodeInvalidRequest, "the request body is not valid UTF-8")
	}
	return body, nil
}

// firstBodyBuffer is the most readUpTo allocates before anything arrives.
const firstBodyBuffer = 64 << 10

// readUpTo reads r to its end. declared is the body's Content-Length (-1
// when unknown) and limit the most the body may hold (r enforces it): the
// buffer starts at firstBodyBuffer at most and doubles as it fills, never
// beyond one byte more than min(declared, limit), which leaves room to see
// the end without growing again.
func readUpTo(r io.Reader, declared, limit int64) ([]byte, error) {
	target := limit + 1
	if declared >= 0 && declared < limit {
		target = declared + 1
	}
	buf := make([]byte, 0, min(target, firstBodyBuffer))
	for {
		if len(buf) == cap(buf) {
			grow := max(min(int64(cap(buf)), target-int64(cap(buf))), bytes.MinRead)
			buf = slices.Grow(buf, int(grow))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}

// parseAppend checks the body's shape: an object with an expected version
// (absent means any) and 1 to 1000 events, each an object with a type, data
// and optionally an id and metadata. It decodes in one pass; only a body
// that fails is decoded again, event by event, to say where.
func parseAppend(body []byte) (appendRequest, eventstore.ExpectedVersion, error) {
	var req appendRequest
	if err := decodeStrict(body, &req); err != nil {
		return req, 0, explainAppend(body, err)
	}
	expected, err := parseExpectedVersion(req.ExpectedVersion)
	if err != nil {
		return req, 0, err
	}
	switch {
	case req.Events == nil:
		return req, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "events is required: an array of 1 to %d events", eventstore.MaxAppendEvents)
	case len(req.Events) == 0:
		return req, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "events is empty: an append needs at least one event")
	case len(req.Events) > eventstore.MaxAppendEvents:
		return req, 0, eventstore.Errorf(eventstore.CodeTooLarge, "an append may carry at most %d events; this one has %d", eventstore.MaxAppendEvents, len(req.Events))
	}
	for i, in := range req.Events {
		switch {
		case in.Type == nil:
			return req, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "events[%d].type is required", i)
		case len(in.Data) == 0 || string(in.Data) == "null":
			return req, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "events[%d].data is required: the event's fields as a JSON object", i)
		}
	}
	return req, expected, nil
}

// explainAppend says what is wrong with a body that did not decode:
// decoding it again in stages finds the event and the field at fault.
func explainAppend(body []byte, err error) error {
	var req appendRequestRaw
	if err := decodeStrict(body, &req); err != nil {
		return eventstore.Errorf(eventstore.CodeInvalidRequest, "%s", jsonProblem(err, "the body"))
	}
	if _, err := parseExpectedVersion(req.ExpectedVersion); err != nil {
		return err
	}
	for i, raw := range req.Events {
		var in eventInput
		if err := decodeStrict(raw, &in); err != nil {
			return eventstore.Errorf(eventstore.CodeInvalidRequest, "%s", jsonProblem(err, fmt.Sprintf("events[%d]", i)))
		}
	}
	return eventstore.Errorf(eventstore.CodeInvalidRequest, "%s", jsonProblem(err, "the body"))
}

func parseExpectedVersion(raw json.RawMessage) (eventstore.ExpectedVersion, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return eventstore.Any, nil
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, eventstore.Errorf(eventstore.CodeInvalidExpectedVersion,
			"expectedVersion must be a whole number: -1 (any), 0 (the stream must not exist), -2 (it must exist) or N >= 1; got %s", truncate(string(raw), 40))
	}
	return eventstore.ParseExpectedVersion(v)
}

// events checks and encodes the events of an append to stream, each one
// within the limit of one event's Kafka record; an error is an
// *eventError naming the event.
func (s *Server) events(ctx context.Context, stream eventstore.StreamID, inputs []eventInput, tok Token) ([]eventstore.EventData, error) {
	events := make([]eventstore.EventData, len(inputs))
	trace := tracing.Inject(ctx) // the append's span (see traceAppend)
	for i, in := range inputs {
		var err error
		if events[i], err = s.event(ctx, in, tok); err != nil {
			return nil, &eventError{index: i, err: err}
		}
		events[i].Metadata.TraceParent, events[i].Metadata.TraceState = trace.Parent, trace.State
		if size := recordSize(stream, events[i], s.opts.StoreName); size > s.opts.MaxEventBytes {
			return nil, &eventError{index: i, err: eventstore.Errorf(eventstore.CodeTooLarge,
				"the event is %d bytes as a Kafka record, over the limit of %d bytes for one event", size, s.opts.MaxEventBytes)}
		}
	}
	return events, nil
}

// event checks one event and encodes its data with the type's schema.
func (s *Server) event(ctx context.Context, in eventInput, tok Token) (eventstore.EventData, error) {
	var e eventstore.EventData
	if in.ID != nil {
		id, err := eventstore.ParseUUID(*in.ID)
		if err != nil {
			return e, fieldError(".id", err)
		}
		if id.IsZero() {
			return e, eventstore.Errorf(eventstore.CodeInvalidRequest, ".id: the nil UUID is not an event id; leave id out to have one made")
		}
		e.ID = id
	}
	if err := eventstore.ValidateTypeName(*in.Type); err != nil {
		return e, fieldError(".type", err)
	}
	e.Type = *in.Type
	if m := in.Metadata; m != nil {
		e.Metadata = eventstore.Metadata{CorrelationID: m.CorrelationID, CausationID: m.CausationID,
			UserID: m.UserID, TenantID: m.TenantID, DataSubject: m.DataSubject, Custom: m.Custom}
	}
	if tok.Principal != "" {
		e.Metadata.UserID = tok.Principal
	}
	fp, data, err := s.schemas.Encode(ctx, e.Type, in.Data, &e.Metadata)
	if err != nil {
		return e, err
	}
	e.Schema, e.Data = fp, data
	return e, nil
}

// fieldError prefixes err's message with the field of the event.
func fieldError(field string, err error) error {
	return eventstore.Errorf(eventstore.ErrorCode(err), "%s: %s", field, err.Error())
}

func (e *eventError) message() string {
	var v *eventstore.SchemaViolationError
	if errors.As(e.err, &v) {
		path := fmt.Sprintf("events[%d].data", e.index)
		switch {
		case v.Path == "":
		case strings.HasPrefix(v.Path, "["):
			path += v.Path
		default:
			path += "." + v.Path
		}
		return path + ": " + v.Reason
	}
	msg := e.err.Error()
	if strings.HasPrefix(msg, ".") {
		return fmt.Sprintf("events[%d]%s", e.index, msg)
	}
	return fmt.Sprintf("events[%d]: %s", e.index, msg)
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// anything after the value.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("there is more after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("there is more after the JSON value")
	}
	return nil
}

// jsonProblem says what is wrong with the JSON at where, in a client's terms.
func jsonProblem(err error, where string) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("%s is not valid JSON (at byte %d): %s", where, syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		field := where
		if typ.Field != "" {
			field += "." + typ.Field
		}
		return fmt.Sprintf("%s: want %s, got %s", field, jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s is empty or incomplete JSON", where)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Sprintf("%s has an %s", where, strings.TrimPrefix(err.Error(), "json: "))
	}
	return fmt.Sprintf("%s: %v", where, err)
}

func jsonType(kind string) string {
	switch kind {
	case "string", "ptr":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "int64", "int", "int32":
		return "a whole number"
	}
	return kind
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
