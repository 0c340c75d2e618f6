package readapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/httpapi"
)

// Read-your-writes: every /v1 route takes waitFor={streamId}@{version}
// (repeatable), waitForPosition={token} (the position an append answered;
// repeatable) and timeout, and answers once the projections serving it
// have applied those events — or 504 wait_timeout, naming how far they
// got, or at once 503 projection_halted.

// Wait limits.
const (
	DefaultWaitTimeout = 5 * time.Second
	MaxWaitTimeout     = 30 * time.Second
	// MaxWaits bounds the events one request may wait for.
	MaxWaits = 100
)

// Waiter waits until projections have applied written events; the
// runner's Monitor implements it (runner.Monitor.WaitFor, whose errors
// carry the codes wait_timeout, projection_halted and invalid_request).
// No projections means every projection reading the events' categories.
type Waiter interface {
	WaitFor(ctx context.Context, projections []string, written []eventstore.Written, timeout time.Duration) error
}

type handlerFunc = func(http.ResponseWriter, *http.Request, httpapi.Token) error

// waiting returns h preceded by the wait its request asks for, on
// projections.
func (a *API) waiting(h handlerFunc, projections ...string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, tok httpapi.Token) error {
		written, timeout, err := waitParams(r)
		if err != nil {
			return err
		}
		if len(written) > 0 {
			if a.waiter == nil {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "this read API runs without projections and cannot wait for writes")
			}
			if err := a.waiter.WaitFor(r.Context(), projections, written, timeout); err != nil {
				return err
			}
		}
		return h(w, r, tok)
	}
}

// waitParams reads waitFor, waitForPosition and timeout.
func waitParams(r *http.Request) ([]eventstore.Written, time.Duration, error) {
	params := r.URL.Query()
	var written []eventstore.Written
	for _, v := range params["waitFor"] {
		at := strings.LastIndexByte(v, '@')
		if at < 0 {
			return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "waitFor must be {streamId}@{version}, not %.80q", v)
		}
		stream, err := eventstore.ParseStreamID(v[:at])
		if err != nil {
			return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "waitFor %.80q: %v", v, err)
		}
		version, err := strconv.ParseInt(v[at+1:], 10, 64)
		if err != nil || version < 1 {
			return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "waitFor %.80q: the version must be a whole number of at least 1", v)
		}
		written = append(written, eventstore.Written{Stream: stream, Version: version})
	}
	for _, v := range params["waitForPosition"] {
		w, err := eventstore.ParseWrittenToken(v)
		if err != nil {
			return nil, 0, err
		}
		written = append(written, w)
	}
	if len(written) > MaxWaits {
		return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "a request may wait for at most %d events, not %d", MaxWaits, len(written))
	}
	timeout := DefaultWaitTimeout
	v, err := param(params, "timeout")
	switch {
	case err != nil:
		return nil, 0, err
	case v != "":
		if timeout, err = time.ParseDuration(v); err != nil || timeout <= 0 || timeout > MaxWaitTimeout {
			return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "timeout must be a duration above 0 and at most %s, such as 500ms or 5s, not %.40q", MaxWaitTimeout, v)
		}
		if len(written) == 0 {
			return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "timeout goes with waitFor or waitForPosition")
		}
	}
	return written, timeout, nil
}
