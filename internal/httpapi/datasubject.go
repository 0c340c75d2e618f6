package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// DELETE /v1/data-subjects/{subjectId} erases a data subject (admin): it
// destroys the subject's key, so that the personal fields of its events
// read as "[erased]" everywhere, and appends $DataSubjectErased to each
// stream holding events of the subject, so that projections redact what
// they copied. GET /v1/data-subjects/{subjectId}/events (admin) answers
// an access request: the subject's events, decrypted while its key lives.

// Eraser destroys data subjects' keys: personal.Cipher is one.
type Eraser interface {
	// Destroy destroys subject's key and forgets it; destroyed is false
	// when it had none.
	Destroy(ctx context.Context, subject string) (destroyed bool, err error)
}

// erasureResponse is an erasure's answer.
type erasureResponse struct {
	SubjectID    string    `json:"subjectId"`
	ErasedAt     time.Time `json:"erasedAt"`
	KeyDestroyed bool      `json:"keyDestroyed"`
	// Streams received $DataSubjectErased, at these versions.
	Streams []erasedStream `json:"streams"`
}

type erasedStream struct {
	StreamID string `json:"streamId"`
	Version  int64  `json:"version"`
	Position string `json:"position"`
}

type subjectEventsJSON struct {
	SubjectID string      `json:"subjectId"`
	Events    []eventJSON `json:"events"`
	// Next is the globalPosition to pass as after for the next page; 0
	// when this page is the last.
	Next int64 `json:"next"`
}

func subjectOf(r *http.Request) (string, error) {
	subject := r.PathValue("subjectId")
	if err := eventstore.ValidateDataSubject(subject); err != nil {
		return "", eventstore.Errorf(eventstore.CodeInvalidRequest, "subjectId: %s", err.Error())
	}
	return subject, nil
}

func (s *Server) eraseDataSubject(store eventstore.DataSubjects) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, tok Token) error {
		subject, err := subjectOf(r)
		if err != nil {
			return err
		}
		if len(r.URL.Query()) > 0 {
			return eventstore.Errorf(eventstore.CodeInvalidRequest, "an erasure takes no parameters")
		}
		if s.opts.Personal == nil {
			return eventstore.Errorf(eventstore.CodeUnavailable, "this writer has no master key (STRATA_MASTER_KEY_FILE): it keeps no keys to destroy")
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		defer cancel()
		data, _ := json.Marshal(map[string]string{"subjectId": subject})
		var fp eventstore.Fingerprint
		var bin []byte
		if fp, bin, err = s.schemas.Encode(ctx, eventstore.DataSubjectErasedType, data, nil); err != nil {
			if eventstore.ErrorCode(err) == eventstore.CodeUnknownEventType {
				return eventstore.Errorf(eventstore.CodeUnavailable, "the registry lacks the system event %s, which an erasure appends: "+
					"run `writer schemas apply` (it registers the system schemas with yours)", eventstore.DataSubjectErasedType)
			}
			return err
		}
		// $DataSubjectErased first, the key after: an event sealed with
		// a key made after the destruction commits after it, so in each
		// stream every event before $DataSubjectErased is erased. Should
		// the destruction fail, the answer says so, and a retry (which
		// appends $DataSubjectErased again, harmlessly) completes it.
		event := func(eventstore.StreamID) (eventstore.EventData, error) {
			return eventstore.EventData{Type: eventstore.DataSubjectErasedType, Schema: fp, Data: bin,
				Metadata: eventstore.Metadata{UserID: tok.Principal, DataSubject: subject}}, nil
		}
		results, at, err := store.RecordErasure(ctx, subject, event)
		if err != nil {
			return err
		}
		destroyed, err := s.opts.Personal.Destroy(ctx, subject)
		if err != nil {
			return fmt.Errorf("the erasure of %s is recorded, but its key is not yet destroyed (retry the erasure): %w", subject, err)
		}
		resp := erasureResponse{SubjectID: subject, ErasedAt: at, KeyDestroyed: destroyed, Streams: []erasedStream{}}
		for _, res := range results {
			e := res.Events[0]
			resp.Streams = append(resp.Streams, erasedStream{StreamID: res.Stream.String(), Version: e.Version,
				Position: eventstore.Written{Stream: res.Stream, Version: e.Version, Position: e.GlobalPosition}.Token()})
			if s.subs != nil {
				s.subs.hub.Notify(res.Stream)
			}
		}
		if len(results) > 0 {
			s.opts.OnAppend()
		}
		s.opts.Logger.Info("data subject erased", "subject", subject, "key_destroyed", destroyed, "streams", len(results), "by", tok.Principal)
		WriteJSON(w, http.StatusOK, resp)
		return nil
	}
}

func (s *Server) subjectEvents(store eventstore.DataSubjects) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ Token) error {
		subject, err := subjectOf(r)
		if err != nil {
			return err
		}
		params := r.URL.Query()
		for name := range params {
			if name != "after" && name != "limit" {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "unknown parameter %.40q: an access request takes after and limit", name)
			}
		}
		if err := onlyOnce(params, "after", "limit"); err != nil {
			return err
		}
		limit, err := parseLimit(params)
		if err != nil {
			return err
		}
		var after int64
		if v := params.Get("after"); v != "" {
			if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "after must be a globalPosition >= 0, not %q", truncate(v, 40))
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		defer cancel()
		events, err := store.SubjectEvents(ctx, subject, after, limit)
		if err != nil {
			return err
		}
		out, err := s.render(ctx, events)
		if err != nil {
			return err
		}
		resp := subjectEventsJSON{SubjectID: subject, Events: out}
		if len(events) == limit {
			resp.Next = events[len(events)-1].GlobalPosition
		}
		WriteJSON(w, http.StatusOK, resp)
		return nil
	}
}
