package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// POST /v1/events appends to several streams at once (role writer):
//
//	{"appends": [{"streamId", "expectedVersion", "events": [...]}, ...],
//	 "guards": [{"streamId", "expectedVersion"}, ...]}
//
// Every append's expected version and every guard (a stream checked and
// not written) holds, and all the events are stored in one transaction,
// or none is (see eventstore.MultiAppender). 201 answers each stream's
// versions and positions, in the order of appends; a retry with the same
// event ids answers 200 with the same; 409 wrong_expected_version names
// the stream that failed.

type multiRequest struct {
	Appends []multiAppendInput `json:"appends"`
	Guards  []guardInput       `json:"guards"`
}

type multiAppendInput struct {
	StreamID        *string         `json:"streamId"`
	ExpectedVersion json.RawMessage `json:"expectedVersion"`
	Events          []eventInput    `json:"events"`
	reservationsInput
}

type guardInput struct {
	StreamID        *string         `json:"streamId"`
	ExpectedVersion json.RawMessage `json:"expectedVersion"`
}

type multiResponse struct {
	Appends []appendResponse `json:"appends"`
}

// partError ties an error to the append (or guard) of a multi-stream
// append it is about.
type partError struct {
	part string // "appends[2]" or "guards[0]"
	err  error
}

func (e *partError) Error() string {
	var ev *eventError
	if errors.As(e.err, &ev) {
		return e.part + "." + ev.message()
	}
	return e.part + "." + e.err.Error()
}
func (e *partError) Unwrap() error { return e.err }

func (s *Server) appendMulti(store eventstore.MultiAppender) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, tok Token) (err error) {
		outcome, nevents := outcomeRejected, 0
		defer func() {
			if err != nil {
				outcome = appendOutcome(err)
			}
			s.metrics.appends.WithLabelValues(outcome).Inc()
			s.metrics.events.WithLabelValues(outcome).Add(float64(nevents))
		}()
		body, err := readBody(r, s.router.maxBody)
		if err != nil {
			return err
		}
		var req multiRequest
		if err := decodeStrict(body, &req); err != nil {
			return eventstore.Errorf(eventstore.CodeInvalidRequest, "%s", jsonProblem(err, "the body"))
		}
		if req.Appends == nil {
			return eventstore.Errorf(eventstore.CodeInvalidRequest, "appends is required: an array of 1 to %d appends, each {streamId, expectedVersion, events}", eventstore.MaxMultiStreams)
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		defer cancel()
		ctx, end := traceAppend(ctx, r)
		defer func() { end(err) }()
		appends := make([]eventstore.StreamAppend, len(req.Appends))
		for i, in := range req.Appends {
			part := fmt.Sprintf("appends[%d]", i)
			if appends[i], err = s.streamAppend(ctx, in, tok); err != nil {
				return &partError{part, err}
			}
			nevents += len(appends[i].Events)
			if nevents > eventstore.MaxMultiEvents {
				return eventstore.Errorf(eventstore.CodeTooLarge, "a multi-stream append may carry at most %d events in all; this one has more", eventstore.MaxMultiEvents)
			}
		}
		guards := make([]eventstore.Guard, len(req.Guards))
		for i, in := range req.Guards {
			if guards[i], err = guardOf(in); err != nil {
				return &partError{fmt.Sprintf("guards[%d]", i), err}
			}
		}
		start := time.Now()
		results, err := store.AppendMulti(ctx, appends, guards)
		s.metrics.appendLatency.Observe(time.Since(start).Seconds())
		if err != nil {
			if results, err = s.replayMultiOf(ctx, err, appends); err != nil {
				return err
			}
		}
		resp := multiResponse{Appends: make([]appendResponse, len(results))}
		replayed := len(results) > 0 && results[0].Replayed
		for i, res := range results {
			resp.Appends[i] = appendResponseOf(res)
		}
		status := http.StatusCreated
		outcome = outcomeStored
		if replayed {
			status, outcome = http.StatusOK, outcomeReplayed
		} else {
			s.opts.OnAppend()
			if s.subs != nil {
				for _, res := range results {
					s.subs.hub.Notify(res.Stream)
				}
			}
		}
		WriteJSON(w, status, resp)
		return nil
	}
}

// streamAppend checks one append of a multi-stream append and encodes
// its events.
func (s *Server) streamAppend(ctx context.Context, in multiAppendInput, tok Token) (eventstore.StreamAppend, error) {
	var a eventstore.StreamAppend
	if in.StreamID == nil {
		return a, eventstore.Errorf(eventstore.CodeInvalidStreamID, "streamId is required")
	}
	stream, err := eventstore.ParseStreamID(*in.StreamID)
	if err != nil {
		return a, fieldError("streamId", err)
	}
	expected, err := parseExpectedVersion(in.ExpectedVersion)
	if err != nil {
		return a, err
	}
	switch {
	case len(in.Events) == 0:
		return a, eventstore.Errorf(eventstore.CodeInvalidRequest, "events is required: an append needs at least one event")
	case len(in.Events) > eventstore.MaxMultiEvents:
		return a, eventstore.Errorf(eventstore.CodeTooLarge, "an append may carry at most %d events; this one has %d", eventstore.MaxMultiEvents, len(in.Events))
	}
	for i, ev := range in.Events {
		switch {
		case ev.Type == nil:
			return a, &eventError{index: i, err: eventstore.Errorf(eventstore.CodeInvalidRequest, ".type is required")}
		case len(ev.Data) == 0 || string(ev.Data) == "null":
			return a, &eventError{index: i, err: eventstore.Errorf(eventstore.CodeInvalidRequest, ".data is required: the event's fields as a JSON object")}
		}
	}
	events, err := s.events(ctx, stream, in.Events, tok)
	return eventstore.StreamAppend{Stream: stream, Expected: expected, Events: events,
		Reserve: reservationsOf(in.Reserve), Release: reservationsOf(in.Release)}, err
}

func guardOf(in guardInput) (eventstore.Guard, error) {
	if in.StreamID == nil {
		return eventstore.Guard{}, eventstore.Errorf(eventstore.CodeInvalidStreamID, "streamId is required")
	}
	stream, err := eventstore.ParseStreamID(*in.StreamID)
	if err != nil {
		return eventstore.Guard{}, fieldError("streamId", err)
	}
	if len(in.ExpectedVersion) == 0 || string(in.ExpectedVersion) == "null" {
		return eventstore.Guard{}, eventstore.Errorf(eventstore.CodeInvalidExpectedVersion,
			"expectedVersion is required: 0 (the stream does not exist), -2 (it exists) or the stream's version N")
	}
	expected, err := parseExpectedVersion(in.ExpectedVersion)
	return eventstore.Guard{Stream: stream, Expected: expected}, err
}

// replayMultiOf is replayOf for a multi-stream append: the store reports
// every append's events stored in place, some in other bytes, and the
// retry is a replay if each one's data is the same value.
func (s *Server) replayMultiOf(ctx context.Context, err error, appends []eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	var dup *eventstore.DuplicateEventIDError
	var all []eventstore.EventData
	for _, a := range appends {
		all = append(all, a.Events...)
	}
	if !errors.As(err, &dup) || len(dup.Stored) != len(all) {
		return nil, err
	}
	results := make([]eventstore.AppendResult, len(appends))
	k := 0
	for i, a := range appends {
		res, rerr := s.replayOf(ctx, &eventstore.DuplicateEventIDError{ID: dup.ID, Stream: dup.Stream, Stored: dup.Stored[k : k+len(a.Events)]}, a.Events)
		if rerr != nil {
			return nil, err
		}
		results[i] = res
		k += len(a.Events)
	}
	return results, nil
}

// appendResponseOf is an append's answer.
func appendResponseOf(res eventstore.AppendResult) appendResponse {
	resp := appendResponse{StreamID: res.Stream.String(), FirstVersion: res.FirstVersion, LastVersion: res.LastVersion}
	for _, e := range res.Events {
		resp.Events = append(resp.Events, appendedEvent{ID: e.ID, Version: e.Version, GlobalPosition: e.GlobalPosition})
	}
	if n := len(res.Events); n > 0 {
		last := res.Events[n-1]
		resp.Position = eventstore.Written{Stream: res.Stream, Version: last.Version, Position: last.GlobalPosition}.Token()
	}
	return resp
}
