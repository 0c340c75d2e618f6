// Package client is a Go client of the Strata writer's HTTP API (CONTRACT.md
// §2): appending events to a stream with an expected version, and reading a
// stream, a category or all events page by page.
//
// It speaks the API's JSON exactly and adds nothing on top: no retries, no
// caching. A request the writer refuses returns an *Error with the status,
// the contract's code (wrong_expected_version, stream_not_found, ...), the
// message and the request id; IsWrongExpectedVersion and IsStreamNotFound
// recognise the two codes that command handlers act on. To decide on a
// stream's state and append with optimistic concurrency, see package
// aggregate, which runs over a *Client.
//
//	c, err := client.New("http://127.0.0.1:8080", client.Options{Token: token})
//	res, err := c.Append(ctx, "Order-a1b2c3d4", client.NoStream, []client.Event{
//		{Type: "OrderCreated", Data: map[string]any{"orderId": "a1b2c3d4", "customerId": "user123",
//			"timestamp": "2023-10-27T10:00:00Z"}},
//	})
//	page, err := c.ReadStream(ctx, "Order-a1b2c3d4", 1, 100)
//
// Beyond the standard library it uses only Strata's eventstore package,
// for the error codes, which are the writer's own.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Limits of the API on reads and appends.
const (
	// MaxReadLimit is the largest page a read may ask for.
	MaxReadLimit = 1000
	// MaxAppendEvents is the most events one append may carry.
	MaxAppendEvents = 1000
)

// Options configures a Client; the zero value gives the defaults.
type Options struct {
	// Token is sent as "Authorization: Bearer <Token>" with every request;
	// empty sends no Authorization header (a writer without tokens).
	Token string
	// HTTPClient sends the requests; nil uses http.DefaultClient. Bound a
	// call's time with its context or with HTTPClient.Timeout.
	HTTPClient *http.Client
}

// Client calls one writer's HTTP API. It is safe for concurrent use.
type Client struct {
	base  string // scheme://host[/path], without a trailing slash
	token string
	http  *http.Client
}

// New returns a Client of the writer at baseURL, such as
// "http://127.0.0.1:8080" (a path, as behind a proxy, is kept). It fails
// only when baseURL is not an absolute http or https URL.
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q is not an absolute http or https URL", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q has a query or fragment", baseURL)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), token: opts.Token, http: hc}, nil
}

// ExpectedVersion is the condition an append sets on the stream's version:
// one of Any, NoStream and StreamExists, or ExpectedVersion(n) for "the
// stream is exactly at version n" (n >= 1).
type ExpectedVersion int64

// The special expected versions of the contract.
const (
	// Any appends whatever the stream's version, creating it if needed.
	Any ExpectedVersion = -1
	// NoStream requires that the stream has no events yet.
	NoStream ExpectedVersion = 0
	// StreamExists requires that the stream has at least one event.
	StreamExists ExpectedVersion = -2
)

// Append stores events at the end of the stream streamID, atomically: all
// of them or none. expected is checked against the stream's version in the
// same transaction; when it does not hold, nothing is stored and the error
// is an *Error with code wrong_expected_version (IsWrongExpectedVersion)
// and the stream's actual version in Actual.
//
// Appending again events whose ids were already stored by a successful
// append of this stream is idempotent: the result is that append's, with
// Replayed set. Any other refusal is an *Error too (invalid_stream_id,
// unknown_event_type, schema_violation with Path and EventIndex, ...);
// other errors come from the transport, and then whether the events were
// stored is unknown: give events ids to make a retry safe.
func (c *Client) Append(ctx context.Context, streamID string, expected ExpectedVersion, events []Event) (AppendResult, error) {
	return c.append(ctx, streamID, appendRequest{ExpectedVersion: expected, Events: events})
}

func (c *Client) append(ctx context.Context, streamID string, req appendRequest) (AppendResult, error) {
	var res AppendResult
	if streamID == "" {
		return res, errors.New("append: the stream id is empty")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return res, fmt.Errorf("append to %s: encoding the events: %w", streamID, err)
	}
	status, err := c.do(ctx, http.MethodPost, "/v1/streams/"+url.PathEscape(streamID)+"/events", nil, body, &res)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", streamID, err)
	}
	res.Replayed = status == http.StatusOK
	return res, nil
}

// ReadStream returns a page of the stream streamID, forward from version
// from (from <= 0 means the first event), with at most limit events
// (limit <= 0 means the writer's default, 100; at most MaxReadLimit). The
// page's Next is the version to pass as from for the next page; a page
// whose last event is at the stream's Version ends the stream. A stream
// that does not exist is an *Error with code stream_not_found
// (IsStreamNotFound).
func (c *Client) ReadStream(ctx context.Context, streamID string, from int64, limit int) (StreamPage, error) {
	return c.readStream(ctx, streamID, from, limit, "")
}

// ReadStreamBackward is ReadStream from version from down (from <= 0 means
// the last event). The page's Next is the version to continue from, and 0
// once the first event has been returned.
func (c *Client) ReadStreamBackward(ctx context.Context, streamID string, from int64, limit int) (StreamPage, error) {
	return c.readStream(ctx, streamID, from, limit, "backward")
}

func (c *Client) readStream(ctx context.Context, streamID string, from int64, limit int, direction string) (StreamPage, error) {
	var page StreamPage
	if streamID == "" {
		return page, errors.New("read stream: the stream id is empty")
	}
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatInt(from, 10))
	}
	setLimit(q, limit)
	if direction != "" {
		q.Set("direction", direction)
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/streams/"+url.PathEscape(streamID)+"/events", q, nil, &page); err != nil {
		return StreamPage{}, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	return page, nil
}

// ReadCategory returns the events of a category (the part of stream ids
// before the first "-", such as "Order") committed after the position
// token after, in position order: empty after means from the beginning;
// pass the page's Next to continue. An empty page means nothing more has
// committed yet; its Next is where to ask again.
func (c *Client) ReadCategory(ctx context.Context, category, after string, limit int) (Page, error) {
	if category == "" {
		return Page{}, errors.New("read category: the category is empty")
	}
	page, err := c.readPage(ctx, "/v1/categories/"+url.PathEscape(category)+"/events", after, limit)
	if err != nil {
		return Page{}, fmt.Errorf("read category %s: %w", category, err)
	}
	return page, nil
}

// ReadAll is ReadCategory over every stream of the store.
func (c *Client) ReadAll(ctx context.Context, after string, limit int) (Page, error) {
	page, err := c.readPage(ctx, "/v1/events", after, limit)
	if err != nil {
		return Page{}, fmt.Errorf("read all: %w", err)
	}
	return page, nil
}

func (c *Client) readPage(ctx context.Context, path, after string, limit int) (Page, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	setLimit(q, limit)
	var page Page
	_, err := c.do(ctx, http.MethodGet, path, q, nil, &page)
	return page, err
}

func setLimit(q url.Values, limit int) {
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// do sends a request with an optional JSON body and decodes a 2xx
// response's JSON into out. Any other status is an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) (int, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() {
		// Drain what is left so that the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return resp.StatusCode, responseError(resp, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("decoding the %d response: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}
