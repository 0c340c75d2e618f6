package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Subscription says what Subscribe follows: one stream from version From
// (the first when 0), or else a category (all events when Category is
// empty) after the position token After (the beginning when empty).
type Subscription struct {
	Stream   string
	From     int64
	Category string
	After    string
	// Types, when set, keeps only events of these types.
	Types []string
	// RetryDelay is the wait before reconnecting after a lost connection
	// or a writer's final message (too slow, shutting down); default 1s.
	RetryDelay time.Duration
}

// SubscribedEvent is an event and the position after it: a position token,
// or for a stream the event's version, to resume from.
type SubscribedEvent struct {
	RecordedEvent
	Position string
}

// Subscribe follows a subscription live over Server-Sent Events, as an
// iterator. It resumes by itself: when the connection is lost, or the
// writer ends the subscription (the client was too slow, the writer shut
// down), it connects again after RetryDelay from the last event it
// yielded, so that nothing is lost or repeated. It yields an error and
// ends only when the writer refuses the subscription (a bad position, a
// missing role, too many subscriptions); it ends without one when ctx
// does, or when the loop breaks.
func (c *Client) Subscribe(ctx context.Context, s Subscription) iter.Seq2[SubscribedEvent, error] {
	return func(yield func(SubscribedEvent, error) bool) {
		delay := s.RetryDelay
		if delay <= 0 {
			delay = time.Second
		}
		position := ""
		for ctx.Err() == nil {
			err := c.subscribeOnce(ctx, s, &position, yield)
			if err == errStop {
				return
			}
			if e, ok := err.(*Error); ok && e.Status >= 400 && e.Status < 500 && e.Code != "too_slow" {
				yield(SubscribedEvent{}, err)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
		}
	}
}

var errStop = fmt.Errorf("the loop stopped")

// subscribeOnce reads one connection's events; it returns why it ended.
func (c *Client) subscribeOnce(ctx context.Context, s Subscription, position *string, yield func(SubscribedEvent, error) bool) error {
	path, q := "/v1/events/subscribe", url.Values{}
	switch {
	case s.Stream != "":
		path = "/v1/streams/" + url.PathEscape(s.Stream) + "/subscribe"
		if s.From > 1 {
			q.Set("from", strconv.FormatInt(s.From, 10))
		}
	case s.Category != "":
		path = "/v1/categories/" + url.PathEscape(s.Category) + "/subscribe"
	}
	if s.Stream == "" && s.After != "" {
		q.Set("after", s.After)
	}
	if len(s.Types) > 0 {
		q.Set("types", strings.Join(s.Types, ","))
	}
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *position != "" {
		req.Header.Set("Last-Event-ID", *position)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return responseError(resp, b)
	}
	r := bufio.NewReader(resp.Body)
	var event, id, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "" && data != "":
			if event == "error" { // the writer ends the subscription: resume
				return fmt.Errorf("the writer ended the subscription: %s", data)
			}
			var e RecordedEvent
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return fmt.Errorf("decoding an event: %w", err)
			}
			*position = id
			if !yield(SubscribedEvent{RecordedEvent: e, Position: id}, nil) {
				return errStop
			}
			event, id, data = "", "", ""
		case field == "event":
			event = value
		case field == "id":
			id = value
		case field == "data":
			data = value
		}
	}
}
