// Package aggregatetest provides an in-memory aggregate.Store for tests of
// command handlers: no writer, no database, and a hook to play a concurrent
// writer between a handler's read and its append.
package aggregatetest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/strata-events/strata/client"
)

// Store keeps streams in memory with the writer's stream semantics:
// versions from 1 without gaps, the contract's expected versions, 404
// stream_not_found for a stream without events, pages with the stream's
// version and the next version to read, and refusals as *client.Error
// with the writer's statuses and codes. It does not check event types or
// data against schemas, nor make appends with known event ids idempotent;
// Data is stored as encoding/json marshals it.
//
// The zero Store is empty and ready. It is safe for concurrent use; set
// PageSize and BeforeAppend before using it.
type Store struct {
	// PageSize, when positive, caps the events a read returns below the
	// limit asked for, as a writer with a smaller page would: set it small
	// to make readers page.
	PageSize int
	// BeforeAppend, when set, is called at the start of each Append, before
	// the expected version is checked and without the store's lock held.
	// A test appends there to play a writer that got in first. Appends
	// made while it runs, its own included, do not call it.
	BeforeAppend func(ctx context.Context, streamID string)

	mu       sync.Mutex
	streams  map[string][]client.RecordedEvent
	position int64
	hooking  bool
	reads    int
	appends  int
}

// ReadStream returns up to limit events of the stream from version from
// (from <= 0: the first; limit <= 0: 100), as the writer's
// GET /v1/streams/{streamId}/events does.
func (s *Store) ReadStream(ctx context.Context, streamID string, from int64, limit int) (client.StreamPage, error) {
	if err := ctx.Err(); err != nil {
		return client.StreamPage{}, err
	}
	switch {
	case streamID == "":
		return client.StreamPage{}, refusal(http.StatusBadRequest, client.CodeInvalidStreamID, "the stream id is empty")
	case limit > client.MaxReadLimit:
		return client.StreamPage{}, refusal(http.StatusBadRequest, client.CodeInvalidRequest,
			fmt.Sprintf("limit must be a whole number from 1 to %d, not %d", client.MaxReadLimit, limit))
	case limit <= 0:
		limit = 100
	}
	if s.PageSize > 0 {
		limit = min(limit, s.PageSize)
	}
	from = max(from, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	events, ok := s.streams[streamID]
	if !ok {
		return client.StreamPage{}, refusal(http.StatusNotFound, client.CodeStreamNotFound, fmt.Sprintf("stream %s not found", streamID))
	}
	page := client.StreamPage{Version: int64(len(events)), Events: []client.RecordedEvent{}}
	for v := from; v <= page.Version && len(page.Events) < limit; v++ {
		page.Events = append(page.Events, clone(events[v-1]))
	}
	page.Next = from + int64(len(page.Events))
	return page, nil
}

// Append stores events at the end of the stream if its version meets
// expected, as the writer's POST /v1/streams/{streamId}/events does. A
// stream not at the expected version is a 409 wrong_expected_version
// *client.Error with Expected and Actual.
func (s *Store) Append(ctx context.Context, streamID string, expected client.ExpectedVersion, events []client.Event) (client.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return client.AppendResult{}, err
	}
	recorded, err := record(streamID, expected, events)
	if err != nil {
		return client.AppendResult{}, err
	}
	s.callHook(ctx, streamID)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.appends++
	if err := s.check(streamID, expected); err != nil {
		return client.AppendResult{}, err
	}
	return s.store(streamID, recorded), nil
}

// AppendMulti stores the events of every append in one step if every
// append's and guard's expected version holds, as the writer's
// POST /v1/events does; otherwise nothing, with the 409 of the first
// stream (in request order) that failed.
func (s *Store) AppendMulti(ctx context.Context, appends []client.StreamAppend, guards []client.Guard) ([]client.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(appends) == 0 {
		return nil, refusal(http.StatusBadRequest, client.CodeInvalidRequest, "appends is empty")
	}
	recorded := make([][]client.RecordedEvent, len(appends))
	for i, a := range appends {
		r, err := record(a.StreamID, a.ExpectedVersion, a.Events)
		if err != nil {
			return nil, err
		}
		recorded[i] = r
		s.callHook(ctx, a.StreamID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appends++
	for _, a := range appends {
		if err := s.check(a.StreamID, a.ExpectedVersion); err != nil {
			return nil, err
		}
	}
	for _, g := range guards {
		if err := s.check(g.StreamID, g.ExpectedVersion); err != nil {
			return nil, err
		}
	}
	results := make([]client.AppendResult, len(appends))
	for i, a := range appends {
		results[i] = s.store(a.StreamID, recorded[i])
	}
	return results, nil
}

// check refuses a stream that is not at expected; s.mu is held.
func (s *Store) check(streamID string, expected client.ExpectedVersion) error {
	actual := int64(len(s.streams[streamID]))
	if !allows(expected, actual) {
		err := refusal(http.StatusConflict, client.CodeWrongExpectedVersion,
			fmt.Sprintf("wrong expected version for stream %s: expected %d, actual version %d", streamID, expected, actual))
		err.Expected, err.Actual, err.StreamID = expected, actual, streamID
		return err
	}
	return nil
}

// store appends recorded to the stream; s.mu is held.
func (s *Store) store(streamID string, recorded []client.RecordedEvent) client.AppendResult {
	stream := s.streams[streamID]
	res := client.AppendResult{StreamID: streamID, FirstVersion: int64(len(stream)) + 1}
	now := time.Now().UTC()
	for _, e := range recorded {
		s.position++
		e.Version, e.GlobalPosition, e.RecordedAt = int64(len(stream))+1, s.position, now
		stream = append(stream, e)
		res.Events = append(res.Events, client.AppendedEvent{ID: e.ID, Version: e.Version, GlobalPosition: e.GlobalPosition})
	}
	res.LastVersion = int64(len(stream))
	if s.streams == nil {
		s.streams = map[string][]client.RecordedEvent{}
	}
	s.streams[streamID] = stream
	return res
}

// record checks an append's input and makes its events.
func record(streamID string, expected client.ExpectedVersion, events []client.Event) ([]client.RecordedEvent, error) {
	switch {
	case streamID == "":
		return nil, refusal(http.StatusBadRequest, client.CodeInvalidStreamID, "the stream id is empty")
	case expected < client.StreamExists:
		return nil, refusal(http.StatusBadRequest, client.CodeInvalidExpectedVersion,
			fmt.Sprintf("invalid expected version %d", expected))
	case len(events) == 0:
		return nil, refusal(http.StatusBadRequest, client.CodeInvalidRequest, "events is empty: an append needs at least one event")
	case len(events) > client.MaxAppendEvents:
		return nil, refusal(http.StatusRequestEntityTooLarge, client.CodeTooLarge,
			fmt.Sprintf("an append may carry at most %d events", client.MaxAppendEvents))
	}
	recorded := make([]client.RecordedEvent, len(events))
	for i, e := range events {
		if e.Type == "" {
			return nil, refusal(http.StatusBadRequest, client.CodeInvalidRequest, fmt.Sprintf("events[%d].type is required", i))
		}
		data, err := json.Marshal(e.Data)
		if err != nil || len(data) == 0 || data[0] != '{' {
			return nil, refusal(http.StatusBadRequest, client.CodeInvalidRequest,
				fmt.Sprintf("events[%d].data is not a JSON object", i))
		}
		id := e.ID
		if id == "" {
			id = newUUID()
		}
		recorded[i] = client.RecordedEvent{ID: id, StreamID: streamID, Type: e.Type, Data: data, Metadata: e.Metadata}
	}
	return recorded, nil
}

// callHook calls BeforeAppend unless it is running already.
func (s *Store) callHook(ctx context.Context, streamID string) {
	s.mu.Lock()
	hook := s.BeforeAppend
	run := hook != nil && !s.hooking
	s.hooking = s.hooking || run
	s.mu.Unlock()
	if !run {
		return
	}
	defer func() {
		s.mu.Lock()
		s.hooking = false
		s.mu.Unlock()
	}()
	hook(ctx, streamID)
}

// Events returns the events of a stream, in version order; none for a
// stream that does not exist.
func (s *Store) Events(streamID string) []client.RecordedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]client.RecordedEvent, len(s.streams[streamID]))
	for i, e := range s.streams[streamID] {
		out[i] = clone(e)
	}
	return out
}

// Calls returns how many ReadStream calls (of existing and missing
// streams) and Append calls (stored or refused for their expected
// version) the store has answered.
func (s *Store) Calls() (reads, appends int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.appends
}

func allows(expected client.ExpectedVersion, actual int64) bool {
	switch expected {
	case client.Any:
		return true
	case client.StreamExists:
		return actual > 0
	default:
		return actual == int64(expected)
	}
}

func refusal(status int, code, message string) *client.Error {
	return &client.Error{Status: status, Code: code, Message: message, EventIndex: -1}
}

// clone copies an event so that callers cannot change the stored one.
func clone(e client.RecordedEvent) client.RecordedEvent {
	e.Data = append(json.RawMessage(nil), e.Data...)
	e.Metadata.Custom = maps.Clone(e.Metadata.Custom)
	return e
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
