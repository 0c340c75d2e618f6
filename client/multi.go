package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// StreamAppend is one stream's part of a multi-stream append.
type StreamAppend struct {
	StreamID        string          `json:"streamId"`
	ExpectedVersion ExpectedVersion `json:"expectedVersion"`
	Events          []Event         `json:"events"`
	// Reserve claims values for the stream and Release gives up values it
	// holds, in the same transaction (see AppendReserving).
	Reserve []Reservation `json:"reserve,omitempty"`
	Release []Reservation `json:"release,omitempty"`
}

// Guard is a stream that a multi-stream append checks and does not
// write: its version must be ExpectedVersion (NoStream, StreamExists or
// a version N) when the append commits.
type Guard struct {
	StreamID        string          `json:"streamId"`
	ExpectedVersion ExpectedVersion `json:"expectedVersion"`
}

type multiRequest struct {
	Appends []StreamAppend `json:"appends"`
	Guards  []Guard        `json:"guards,omitempty"`
}

// AppendMulti stores the events of every append, each at the end of its
// stream, in one transaction, if every append's expected version and
// every guard holds; otherwise it stores nothing. A failed expectation is
// an *Error coded wrong_expected_version whose StreamID names the stream
// (IsWrongExpectedVersion). At most 1,000 events in all and 100 streams;
// a stream appears once. The results are in the order of appends; a
// retry with the same event ids is a replay, each result with Replayed.
func (c *Client) AppendMulti(ctx context.Context, appends []StreamAppend, guards []Guard) ([]AppendResult, error) {
	if len(appends) == 0 {
		return nil, errors.New("append to several streams: no append given")
	}
	body, err := json.Marshal(multiRequest{Appends: appends, Guards: guards})
	if err != nil {
		return nil, fmt.Errorf("append to several streams: encoding the events: %w", err)
	}
	var res struct{ Appends []AppendResult }
	status, err := c.do(ctx, http.MethodPost, "/v1/events", nil, body, &res)
	if err != nil {
		return nil, fmt.Errorf("append to several streams: %w", err)
	}
	for i := range res.Appends {
		res.Appends[i].Replayed = status == http.StatusOK
	}
	return res.Appends, nil
}
