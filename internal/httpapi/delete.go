package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/strata-events/strata/internal/eventstore"
)

// DELETE /v1/streams/{streamId}?expectedVersion=N[&hard=true] deletes a
// stream (see eventstore.Deleter): soft by default, with the writer role;
// hard, for good, with admin. It appends $StreamDeleted, which the relay
// publishes to the category's topic with the stream's key, and answers
// 200 with that event, as an append does.

// deleteResponse is a deletion's answer.
type deleteResponse struct {
	StreamID string `json:"streamId"`
	Hard     bool   `json:"hard"`
	// Version, ID and GlobalPosition are the $StreamDeleted event's;
	// Position is a token naming it, as an append answers.
	Version        int64           `json:"version"`
	ID             eventstore.UUID `json:"id"`
	GlobalPosition int64           `json:"globalPosition"`
	Position       string          `json:"position"`
}

// deleteRole: a hard deletion cannot be undone, and needs admin.
func deleteRole(r *http.Request) Role {
	if r.URL.Query().Get("hard") == "true" {
		return RoleAdmin
	}
	return RoleWriter
}

func (s *Server) deleteStream(deleter eventstore.Deleter) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, tok Token) error {
		stream, err := eventstore.ParseStreamID(r.PathValue("streamId"))
		if err != nil {
			return err
		}
		params := r.URL.Query()
		for name := range params {
			if name != "expectedVersion" && name != "hard" {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "unknown parameter %.40q: a deletion takes expectedVersion and hard", name)
			}
		}
		if err := onlyOnce(params, "expectedVersion", "hard"); err != nil {
			return err
		}
		if !params.Has("expectedVersion") {
			return eventstore.Errorf(eventstore.CodeInvalidExpectedVersion,
				"expectedVersion is required: the stream's version N, -1 (any) or -2 (it exists); a deletion should know what it deletes")
		}
		n, err := strconv.ParseInt(params.Get("expectedVersion"), 10, 64)
		if err != nil {
			return eventstore.Errorf(eventstore.CodeInvalidExpectedVersion, "expectedVersion must be a whole number, not %.40q", params.Get("expectedVersion"))
		}
		expected, err := eventstore.ParseExpectedVersion(n)
		if err != nil {
			return err
		}
		hard := false
		if v := params.Get("hard"); v != "" && v != "false" {
			if v != "true" {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "hard must be true or false, not %.40q", v)
			}
			hard = true
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		defer cancel()
		data, _ := json.Marshal(map[string]any{"streamId": stream.String(), "hard": hard})
		event := eventstore.EventData{Type: eventstore.StreamDeletedType, Metadata: eventstore.Metadata{UserID: tok.Principal}}
		if event.Schema, event.Data, err = s.schemas.Encode(ctx, event.Type, data, &event.Metadata); err != nil {
			if eventstore.ErrorCode(err) == eventstore.CodeUnknownEventType {
				return eventstore.Errorf(eventstore.CodeUnavailable, "the registry lacks the system event %s, which a deletion appends: "+
					"run `writer schemas apply` (it registers the system schemas with yours)", eventstore.StreamDeletedType)
			}
			return err
		}
		res, err := deleter.DeleteStream(ctx, eventstore.Deletion{Stream: stream, Expected: expected, Hard: hard, Event: event})
		if err != nil {
			return err
		}
		s.opts.OnAppend()
		if s.subs != nil {
			s.subs.hub.Notify(stream)
		}
		e := res.Events[0]
		WriteJSON(w, http.StatusOK, deleteResponse{StreamID: stream.String(), Hard: hard, Version: e.Version, ID: e.ID,
			GlobalPosition: e.GlobalPosition, Position: eventstore.Written{Stream: stream, Version: e.Version, Position: e.GlobalPosition}.Token()})
		return nil
	}
}
