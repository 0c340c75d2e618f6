package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// eventJSON is an event as reads return it.
type eventJSON struct {
	ID             eventstore.UUID `json:"id"`
	StreamID       string          `json:"streamId"`
	Type           string          `json:"type"`
	Version        int64           `json:"version"`
	GlobalPosition int64           `json:"globalPosition"`
	RecordedAt     time.Time       `json:"recordedAt"`
	// SchemaID is the registry id of the schema the event was written
	// with; Data is upcast to the type's latest schema.
	SchemaID int                 `json:"schemaId"`
	Data     json.RawMessage     `json:"data"`
	Metadata eventstore.Metadata `json:"metadata"`
}

type streamPageJSON struct {
	Events  []eventJSON `json:"events"`
	Next    int64       `json:"next"`
	Version int64       `json:"version"`
}

type pageJSON struct {
	Events []eventJSON `json:"events"`
	Next   string      `json:"next"`
}

func (s *Server) readStream(w http.ResponseWriter, r *http.Request, _ Token) error {
	stream, err := eventstore.ParseStreamID(r.PathValue("streamId"))
	if err != nil {
		return err
	}
	q, err := streamQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
	defer cancel()
	page, err := s.store.ReadStream(ctx, stream, q)
	if err != nil {
		return err
	}
	events, err := s.render(ctx, page.Events)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, streamPageJSON{Events: events, Next: page.Next, Version: page.Version})
	return nil
}

func (s *Server) readCategory(w http.ResponseWriter, r *http.Request, _ Token) error {
	category := r.PathValue("category")
	if err := eventstore.ValidateCategory(category); err != nil {
		return err
	}
	return s.readPage(w, r, func(ctx context.Context, after eventstore.Cursor, limit int) (eventstore.Page, error) {
		return s.store.ReadCategory(ctx, category, after, limit)
	})
}

func (s *Server) readAll(w http.ResponseWriter, r *http.Request, _ Token) error {
	return s.readPage(w, r, s.store.ReadAll)
}

func (s *Server) readPage(w http.ResponseWriter, r *http.Request, read func(context.Context, eventstore.Cursor, int) (eventstore.Page, error)) error {
	params := r.URL.Query()
	if err := onlyOnce(params, "after", "limit"); err != nil {
		return err
	}
	limit, err := parseLimit(params)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
	defer cancel()
	page, err := read(ctx, eventstore.Cursor(params.Get("after")), limit)
	if err != nil {
		return err
	}
	events, err := s.render(ctx, page.Events)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, pageJSON{Events: events, Next: string(page.Next)})
	return nil
}

// render decodes each event's data to natural JSON.
func (s *Server) render(ctx context.Context, events []eventstore.RecordedEvent) ([]eventJSON, error) {
	out := make([]eventJSON, len(events))
	for i, e := range events {
		data, id, err := s.schemas.Decode(ctx, e.Type, e.Schema, e.Data)
		if err != nil {
			return nil, err
		}
		out[i] = eventJSON{
			ID: e.ID, StreamID: e.StreamID.String(), Type: e.Type, Version: e.Version, GlobalPosition: e.GlobalPosition,
			RecordedAt: e.RecordedAt, SchemaID: id, Data: data, Metadata: e.Metadata,
		}
	}
	return out, nil
}

func streamQuery(params url.Values) (eventstore.StreamQuery, error) {
	var q eventstore.StreamQuery
	if err := onlyOnce(params, "from", "limit", "direction"); err != nil {
		return q, err
	}
	if v := params.Get("from"); v != "" {
		from, err := strconv.ParseInt(v, 10, 64)
		if err != nil || from < 1 {
			return q, eventstore.Errorf(eventstore.CodeInvalidRequest, "from must be a version >= 1, not %q", truncate(v, 40))
		}
		q.From = from
	}
	switch d := params.Get("direction"); d {
	case "", "forward":
	case "backward":
		q.Direction = eventstore.Backward
	default:
		return q, eventstore.Errorf(eventstore.CodeInvalidRequest, "direction must be forward or backward, not %q", truncate(d, 40))
	}
	limit, err := parseLimit(params)
	q.Limit = limit
	return q, err
}

func parseLimit(params url.Values) (int, error) {
	v := params.Get("limit")
	if v == "" {
		return eventstore.DefaultReadLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > eventstore.MaxReadLimit {
		return 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "limit must be a whole number from 1 to %d, not %q", eventstore.MaxReadLimit, truncate(v, 40))
	}
	return n, nil
}

// onlyOnce refuses a parameter given more than once: which one was meant?
func onlyOnce(params url.Values, names ...string) error {
	for _, n := range names {
		if len(params[n]) > 1 {
			return eventstore.Errorf(eventstore.CodeInvalidRequest, "%s is given %d times", n, len(params[n]))
		}
	}
	return nil
}
