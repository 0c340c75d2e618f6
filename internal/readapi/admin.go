package readapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/runner"
)

// The projections' admin routes (role admin), for operators and the web
// console:
//
//	GET    /v1/projections/{projection}                      the projection's runner.Status
//	POST   /v1/projections/{projection}/resume               Resumed: clears a halt
//	GET    /v1/projections/{projection}/parked?limit=        ParkedPage, oldest first
//	POST   /v1/projections/{projection}/parked/{id}/retry    ParkedAction: applies it again
//	DELETE /v1/projections/{projection}/parked/{id}          ParkedAction: discards it
//	POST   /v1/projections/{projection}/rebuild?restart=     RebuildRun (202): starts a rebuild
//	GET    /v1/projections/{projection}/rebuild              RebuildRun: the last one started here
//
// A projection this projector does not run is a 404 not_found; a parked
// event that is not there, too. A retry that fails again answers 422
// apply_failed with the projection's error (the event stays parked, with
// it); a rebuild already running, 409 conflict.

// Operator carries out the admin actions; the projector implements it.
// Errors coded as eventstore.Errors are answered with their codes.
type Operator interface {
	// Known reports whether this projector runs projection name.
	Known(name string) bool
	Resume(ctx context.Context, name string) (*runner.Halt, error)
	Parked(ctx context.Context, name string, limit int) ([]runner.Parked, error)
	RetryParked(ctx context.Context, name string, id int64) (runner.Parked, error)
	Discard(ctx context.Context, name string, id int64) (runner.Parked, error)
	// StartRebuild starts a rebuild that runs on after the request, and
	// answers once it has begun; LastRebuild reports on it.
	StartRebuild(ctx context.Context, name string, restart bool) (RebuildRun, error)
	LastRebuild(name string) (RebuildRun, bool)
}

// Resumed answers POST .../resume: the halt cleared, absent if the
// projection was not halted.
type Resumed struct {
	Projection string       `json:"projection"`
	Resumed    bool         `json:"resumed"`
	Halt       *runner.Halt `json:"halt,omitempty"`
}

// ParkedPage answers GET .../parked.
type ParkedPage struct {
	Parked []runner.Parked `json:"parked"`
}

// ParkedAction answers a retry or a discard: the event, as it was parked.
type ParkedAction struct {
	Projection string        `json:"projection"`
	Action     string        `json:"action"` // "applied" or "discarded"
	Event      runner.Parked `json:"event"`
}

// RebuildRun is a rebuild started through this API.
type RebuildRun struct {
	Projection string    `json:"projection"`
	Generation int64     `json:"generation"`
	Resumed    bool      `json:"resumed"` // an interrupted rebuild goes on
	State      string    `json:"state"`   // "running", "done" or "failed"
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

func (a *API) adminRoutes(op Operator) {
	h := func(pattern, name string, role httpapi.Role, fn func(http.ResponseWriter, *http.Request, string) error) {
		a.router.Handle(pattern, name, role, func(w http.ResponseWriter, r *http.Request, _ httpapi.Token) error {
			projection := r.PathValue("projection")
			if !op.Known(projection) {
				return eventstore.Errorf(httpapi.CodeNotFound, "this projector runs no projection named %.60q", projection)
			}
			ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
			defer cancel()
			return fn(w, r.WithContext(ctx), projection)
		})
	}
	h("GET /v1/projections/{projection}", "projection", httpapi.RoleReader, a.getProjection)
	h("POST /v1/projections/{projection}/resume", "projection_resume", httpapi.RoleAdmin, func(w http.ResponseWriter, r *http.Request, name string) error {
		halt, err := op.Resume(r.Context(), name)
		if err != nil {
			return a.opError(err)
		}
		httpapi.WriteJSON(w, http.StatusOK, Resumed{Projection: name, Resumed: halt != nil, Halt: halt})
		return nil
	})
	h("GET /v1/projections/{projection}/parked", "projection_parked", httpapi.RoleReader, func(w http.ResponseWriter, r *http.Request, name string) error {
		limit, err := limitParam(r.URL.Query())
		if err != nil {
			return err
		}
		parked, err := op.Parked(r.Context(), name, limit)
		if err != nil {
			return a.opError(err)
		}
		if parked == nil {
			parked = []runner.Parked{}
		}
		httpapi.WriteJSON(w, http.StatusOK, ParkedPage{Parked: parked})
		return nil
	})
	parkedAction := func(action string, fn func(context.Context, string, int64) (runner.Parked, error)) func(http.ResponseWriter, *http.Request, string) error {
		return func(w http.ResponseWriter, r *http.Request, name string) error {
			id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
			if err != nil || id < 1 {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "the parked event's id must be a positive whole number, not %.40q", r.PathValue("id"))
			}
			p, err := fn(r.Context(), name, id)
			if err != nil {
				return a.opError(err)
			}
			httpapi.WriteJSON(w, http.StatusOK, ParkedAction{Projection: name, Action: action, Event: p})
			return nil
		}
	}
	h("POST /v1/projections/{projection}/parked/{id}/retry", "projection_retry", httpapi.RoleAdmin, parkedAction("applied", op.RetryParked))
	h("DELETE /v1/projections/{projection}/parked/{id}", "projection_discard", httpapi.RoleAdmin, parkedAction("discarded", op.Discard))
	h("POST /v1/projections/{projection}/rebuild", "projection_rebuild", httpapi.RoleAdmin, func(w http.ResponseWriter, r *http.Request, name string) error {
		restart := false
		if v := r.URL.Query().Get("restart"); v != "" {
			var err error
			if restart, err = strconv.ParseBool(v); err != nil {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "restart must be true or false, not %.40q", v)
			}
		}
		run, err := op.StartRebuild(r.Context(), name, restart)
		if err != nil {
			return a.opError(err)
		}
		httpapi.WriteJSON(w, http.StatusAccepted, run)
		return nil
	})
	h("GET /v1/projections/{projection}/rebuild", "projection_rebuild_run", httpapi.RoleReader, func(w http.ResponseWriter, r *http.Request, name string) error {
		run, ok := op.LastRebuild(name)
		if !ok {
			return eventstore.Errorf(httpapi.CodeNotFound, "no rebuild of %s was started through this projector since it started", name)
		}
		httpapi.WriteJSON(w, http.StatusOK, run)
		return nil
	})
}

func (a *API) getProjection(w http.ResponseWriter, r *http.Request, name string) error {
	statuses, err := a.statuses(r.Context())
	if err != nil {
		return err
	}
	for _, s := range statuses {
		if s.Name == name {
			httpapi.WriteJSON(w, http.StatusOK, s)
			return nil
		}
	}
	return eventstore.Errorf(httpapi.CodeNotFound, "projection %s has no status yet", name)
}

// opError gives the runner's errors their codes.
func (a *API) opError(err error) error {
	var failed *runner.ApplyError
	var coded interface{ ErrorCode() string }
	switch {
	case errors.As(err, &failed):
		return eventstore.Errorf(eventstore.CodeApplyFailed, "%v; it stays parked", err)
	case errors.Is(err, runner.ErrNotParked):
		return eventstore.Errorf(httpapi.CodeNotFound, "%v", err)
	case errors.Is(err, runner.ErrRecordGone):
		return eventstore.Errorf(eventstore.CodeConflict, "%v: discard it, or rebuild from what the topics hold", err)
	case errors.Is(err, runner.ErrRebuildRunning):
		return eventstore.Errorf(eventstore.CodeConflict, "%v", err)
	case errors.As(err, &coded):
		return err
	}
	return a.readError(err)
}
