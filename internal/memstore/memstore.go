// Package memstore is an in-memory eventstore.Store for fast tests of the
// layers above the store. It passes the same conformance suite as the
// PostgreSQL store. Appends are serialised by one lock, so events become
// readable in position order and a cursor is simply the last position read.
package memstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// Store keeps events in memory. It is safe for concurrent use; the zero
// value is not: use New.
type Store struct {
	mu      sync.RWMutex
	events  []eventstore.RecordedEvent // events[i].GlobalPosition == i+1
	streams map[eventstore.StreamID][]int
	ids     map[eventstore.UUID]int
}

var _ eventstore.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{streams: map[eventstore.StreamID][]int{}, ids: map[eventstore.UUID]int{}}
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	events = eventstore.AssignIDs(events)
	s.mu.Lock()
	defer s.mu.Unlock()

	if res, found, err := s.findStored(stream, events); err != nil || found {
		return res, err
	}
	actual := int64(len(s.streams[stream]))
	if !expected.Allows(actual) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	res := eventstore.AppendResult{Stream: stream}
	for i, e := range events {
		rec := eventstore.RecordedEvent{
			ID:             e.ID,
			StreamID:       stream,
			Type:           e.Type,
			Version:        actual + int64(i) + 1,
			GlobalPosition: int64(len(s.events)) + 1,
			RecordedAt:     now,
			Schema:         e.Schema,
			Data:           bytes.Clone(e.Data),
			Metadata:       cloneMetadata(e.Metadata),
		}
		s.ids[e.ID] = len(s.events)
		s.streams[stream] = append(s.streams[stream], len(s.events))
		s.events = append(s.events, rec)
		res.Events = append(res.Events, eventstore.AppendedEvent{ID: e.ID, Version: rec.Version, GlobalPosition: rec.GlobalPosition})
	}
	res.FirstVersion, res.LastVersion = res.Events[0].Version, res.Events[len(res.Events)-1].Version
	return res, nil
}

// findStored has the PostgreSQL store's rules: all ids stored in this
// stream, consecutively, with the same content, is a replay; some stored is
// a duplicate, which holds the stored events when only their schemas or
// data differ; none is a new append.
func (s *Store) findStored(stream eventstore.StreamID, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	first := -1
	for i, e := range events {
		if _, ok := s.ids[e.ID]; ok {
			first = i
			break
		}
	}
	if first < 0 {
		return eventstore.AppendResult{}, false, nil
	}
	res := eventstore.AppendResult{Stream: stream, Replayed: true}
	holder := s.events[s.ids[events[first].ID]].StreamID
	differs := false
	for i, e := range events {
		idx, ok := s.ids[e.ID]
		placed := ok && s.events[idx].StreamID == stream && s.events[idx].Type == e.Type &&
			(i == 0 || s.events[idx].Version == res.Events[i-1].Version+1)
		if !placed {
			return eventstore.AppendResult{}, false, &eventstore.DuplicateEventIDError{ID: events[first].ID, Stream: holder}
		}
		differs = differs || s.events[idx].Schema != e.Schema || !bytes.Equal(s.events[idx].Data, e.Data)
		res.Events = append(res.Events, eventstore.AppendedEvent{ID: e.ID, Version: s.events[idx].Version, GlobalPosition: s.events[idx].GlobalPosition})
	}
	if differs {
		stored := make([]eventstore.RecordedEvent, len(events))
		for i, e := range events {
			se := s.copyEvent(s.ids[e.ID])
			stored[i] = eventstore.RecordedEvent{ID: se.ID, StreamID: se.StreamID, Type: se.Type, Version: se.Version,
				GlobalPosition: se.GlobalPosition, Schema: se.Schema, Data: se.Data}
		}
		return eventstore.AppendResult{}, false, &eventstore.DuplicateEventIDError{ID: events[first].ID, Stream: holder, Stored: stored}
	}
	res.FirstVersion, res.LastVersion = res.Events[0].Version, res.Events[len(res.Events)-1].Version
	return res, true, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamID, q eventstore.StreamQuery) (eventstore.StreamPage, error) {
	q, err := q.Normalize(stream)
	if err != nil {
		return eventstore.StreamPage{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.StreamPage{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	idxs, ok := s.streams[stream]
	if !ok {
		return eventstore.StreamPage{}, eventstore.Errorf(eventstore.CodeStreamNotFound, "stream %s not found", stream)
	}
	version := int64(len(idxs))
	page := eventstore.StreamPage{Version: version}
	if q.Direction == eventstore.Forward {
		from := max(q.From, 1)
		for v := from; v <= version && len(page.Events) < q.Limit; v++ {
			page.Events = append(page.Events, s.copyEvent(idxs[v-1]))
		}
		page.Next = from + int64(len(page.Events))
		return page, nil
	}
	from := q.From
	if from == 0 || from > version {
		from = version
	}
	for v := from; v >= 1 && len(page.Events) < q.Limit; v-- {
		page.Events = append(page.Events, s.copyEvent(idxs[v-1]))
	}
	page.Next = from - int64(len(page.Events))
	return page, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Cursor, limit int) (eventstore.Page, error) {
	return s.read(ctx, "", after, limit)
}

// ReadCategory implements eventstore.Store.
func (s *Store) ReadCategory(ctx context.Context, category string, after eventstore.Cursor, limit int) (eventstore.Page, error) {
	if err := eventstore.ValidateCategory(category); err != nil {
		return eventstore.Page{}, err
	}
	return s.read(ctx, category, after, limit)
}

func (s *Store) read(ctx context.Context, category string, after eventstore.Cursor, limit int) (eventstore.Page, error) {
	limit, err := eventstore.NormalizeLimit(limit)
	if err != nil {
		return eventstore.Page{}, err
	}
	pos, err := decodeCursor(after, category)
	if err != nil {
		return eventstore.Page{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.Page{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if pos > int64(len(s.events)) {
		return eventstore.Page{}, eventstore.Errorf(eventstore.CodeInvalidRequest, "invalid position token: it is beyond the end of the store")
	}
	var page eventstore.Page
	for i := pos; i < int64(len(s.events)) && len(page.Events) < limit; i++ {
		if category == "" || s.events[i].StreamID.Category() == category {
			page.Events = append(page.Events, s.copyEvent(int(i)))
		}
		pos = i + 1
	}
	page.Next = encodeCursor(category, pos)
	return page, nil
}

func (s *Store) copyEvent(i int) eventstore.RecordedEvent {
	e := s.events[i]
	e.Data = bytes.Clone(e.Data)
	e.Metadata = cloneMetadata(e.Metadata)
	return e
}

func cloneMetadata(m eventstore.Metadata) eventstore.Metadata {
	if m.Custom != nil {
		c := make(map[string]string, len(m.Custom))
		for k, v := range m.Custom {
			c[k] = v
		}
		m.Custom = c
	}
	return m
}

// A cursor is "m", the category's length and bytes, and the position as a
// uvarint, base64url-encoded.
func encodeCursor(category string, pos int64) eventstore.Cursor {
	buf := []byte{'m', byte(len(category))}
	buf = append(buf, category...)
	buf = binary.AppendUvarint(buf, uint64(pos))
	return eventstore.Cursor(base64.RawURLEncoding.EncodeToString(buf))
}

func decodeCursor(c eventstore.Cursor, category string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	buf, err := base64.RawURLEncoding.DecodeString(string(c))
	if err != nil || len(buf) < 3 || buf[0] != 'm' || int(buf[1]) > len(buf)-3 {
		return 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "invalid position token")
	}
	n := int(buf[1])
	if string(buf[2:2+n]) != category {
		return 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "the position token belongs to another read (of all events or another category)")
	}
	pos, m := binary.Uvarint(buf[2+n:])
	if m <= 0 || 2+n+m != len(buf) || pos > 1<<62 {
		return 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "invalid position token")
	}
	return int64(pos), nil
}
