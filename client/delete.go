package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/strata-events/strata/internal/eventstore"
)

// CodeStreamDeleted is the code of a deleted stream: reading one (404),
// appending to a hard-deleted one or deleting a deleted one (409).
const CodeStreamDeleted = eventstore.CodeStreamDeleted

// IsStreamDeleted reports whether err is a stream_deleted error.
func IsStreamDeleted(err error) bool { return ErrorCode(err) == CodeStreamDeleted }

// Deleted is a deletion's result: the $StreamDeleted event it appended.
type Deleted struct {
	StreamID       string `json:"streamId"`
	Hard           bool   `json:"hard"`
	Version        int64  `json:"version"`
	ID             string `json:"id"`
	GlobalPosition int64  `json:"globalPosition"`
	// Position names the event, for read-your-writes (waitForPosition).
	Position string `json:"position"`
}

// DeleteStream deletes the stream if it is at version expected (Any, or
// StreamExists, or N): it appends $StreamDeleted at its next version.
//   - Soft (hard false; the writer role): reads of it answer
//     stream_deleted until it is written again, which continues its
//     versions, and then show only the events after the deletion.
//   - Hard (the admin role): it can never be written again.
//
// Projectors receive $StreamDeleted like any event of the category.
func (c *Client) DeleteStream(ctx context.Context, streamID string, expected ExpectedVersion, hard bool) (Deleted, error) {
	var res Deleted
	if streamID == "" {
		return res, errors.New("delete: the stream id is empty")
	}
	q := url.Values{"expectedVersion": {strconv.FormatInt(int64(expected), 10)}}
	if hard {
		q.Set("hard", "true")
	}
	if _, err := c.do(ctx, http.MethodDelete, "/v1/streams/"+url.PathEscape(streamID), q, nil, &res); err != nil {
		return Deleted{}, fmt.Errorf("delete %s: %w", streamID, err)
	}
	return res, nil
}
