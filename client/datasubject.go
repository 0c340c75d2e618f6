package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Erasure is the writer's answer to an erasure of a data subject.
type Erasure struct {
	SubjectID string    `json:"subjectId"`
	ErasedAt  time.Time `json:"erasedAt"`
	// KeyDestroyed is false when the subject had no key (nothing
	// personal stored, or erased before and nothing since).
	KeyDestroyed bool `json:"keyDestroyed"`
	// Streams received $DataSubjectErased, at these versions.
	Streams []ErasedStream `json:"streams"`
}

// ErasedStream is a stream that received $DataSubjectErased.
type ErasedStream struct {
	StreamID string `json:"streamId"`
	Version  int64  `json:"version"`
	Position string `json:"position"` // for read-your-writes (waitForPosition)
}

// SubjectPage is a page of a data subject's events.
type SubjectPage struct {
	SubjectID string          `json:"subjectId"`
	Events    []RecordedEvent `json:"events"`
	// Next is the global position to pass as after for the next page; 0
	// when this page is the last.
	Next int64 `json:"next"`
}

// EraseDataSubject erases a data subject (the admin role): its key is
// destroyed, so that the personal fields of its events read as "[erased]"
// everywhere from now on, and $DataSubjectErased is appended to each
// stream holding its events, for projections to redact what they copied.
// Erasing again, or a subject never seen, is harmless.
func (c *Client) EraseDataSubject(ctx context.Context, subjectID string) (Erasure, error) {
	var res Erasure
	if subjectID == "" {
		return res, errors.New("erase: the data subject id is empty")
	}
	if _, err := c.do(ctx, http.MethodDelete, "/v1/data-subjects/"+url.PathEscape(subjectID), nil, nil, &res); err != nil {
		return Erasure{}, fmt.Errorf("erase %s: %w", subjectID, err)
	}
	return res, nil
}

// DataSubjectEvents returns a page of up to limit (0: the writer's
// default) events of a data subject after global position after (0: from
// the first), decrypted while its key lives: an access request (the admin
// role).
func (c *Client) DataSubjectEvents(ctx context.Context, subjectID string, after int64, limit int) (SubjectPage, error) {
	var page SubjectPage
	if subjectID == "" {
		return page, errors.New("data subject events: the data subject id is empty")
	}
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/data-subjects/"+url.PathEscape(subjectID)+"/events", q, nil, &page); err != nil {
		return SubjectPage{}, fmt.Errorf("events of data subject %s: %w", subjectID, err)
	}
	return page, nil
}
