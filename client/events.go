package client

import (
	"encoding/json"
	"net/url"
	"time"
)

// Event is an event to append.
type Event struct {
	// ID is the event's UUID; empty has the writer make a version 7 UUID.
	// Appending the same ids to the same stream again is idempotent, so an
	// id makes a retry after a lost response safe.
	ID string `json:"id,omitempty"`
	// Type is the name of the event's Avro record, such as "OrderCreated".
	Type string `json:"type"`
	// Data is the event's fields in natural JSON (CONTRACT.md §2): a
	// json.RawMessage holding a JSON object, or any value encoding/json
	// turns into one, such as a struct or a map[string]any. Decimals may
	// be numbers or strings, timestamps RFC 3339 strings.
	Data any `json:"data"`
	// Metadata travels with the event. A writer token with a principal
	// replaces UserID with it.
	Metadata Metadata `json:"metadata,omitzero"`
}

// Metadata travels with an event. Empty fields are not stored.
type Metadata struct {
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	UserID        string `json:"userId,omitempty"`
	TenantID      string `json:"tenantId,omitempty"`
	// DataSubject is the person the event's personal fields are about:
	// their key, and what an erasure finds them by. An event type whose
	// schema names a data-subject field sets it from that field.
	DataSubject string            `json:"dataSubject,omitempty"`
	Custom      map[string]string `json:"custom,omitempty"`
}

// appendRequest is the body of POST /v1/streams/{streamId}/events.
type appendRequest struct {
	ExpectedVersion ExpectedVersion `json:"expectedVersion"`
	Events          []Event         `json:"events"`
	Reserve         []Reservation   `json:"reserve,omitempty"`
	Release         []Reservation   `json:"release,omitempty"`
}

// AppendResult is the writer's answer to a successful append.
type AppendResult struct {
	StreamID string `json:"streamId"`
	// FirstVersion and LastVersion are the versions of the first and the
	// last event stored; LastVersion is the stream's version after it.
	FirstVersion int64           `json:"firstVersion"`
	LastVersion  int64           `json:"lastVersion"`
	Events       []AppendedEvent `json:"events"`
	// Position names the last event stored, for read-your-writes: pass it
	// to a projector's read API as waitForPosition (see WaitFor). It is
	// not a cursor to read from.
	Position string `json:"position"`
	// Replayed is true when every event had been stored before by an
	// append with the same ids (the writer answered 200, not 201): nothing
	// was stored this time, and the result is the earlier append's.
	Replayed bool `json:"-"`
}

// AppendedEvent is what an append reports about each event it stored.
type AppendedEvent struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	// GlobalPosition is the event's unique insertion number, for
	// reference only: page through categories and $all with Page.Next.
	GlobalPosition int64 `json:"globalPosition"`
}

// RecordedEvent is a stored event as reads return it.
type RecordedEvent struct {
	ID       string `json:"id"`
	StreamID string `json:"streamId"`
	Type     string `json:"type"`
	// Version is the event's place in its stream: 1, 2, 3, ...
	Version        int64     `json:"version"`
	GlobalPosition int64     `json:"globalPosition"`
	RecordedAt     time.Time `json:"recordedAt"`
	// SchemaID is the registry id of the schema the event was written
	// with; Data is upcast to the type's latest schema.
	SchemaID int `json:"schemaId"`
	// Data is the event's fields in natural JSON; decimals read back as
	// strings such as "15.99", timestamps as RFC 3339 strings.
	Data     json.RawMessage `json:"data"`
	Metadata Metadata        `json:"metadata"`
}

// StreamPage is a page of a stream read.
type StreamPage struct {
	Events []RecordedEvent `json:"events"`
	// Next is the version to read from to continue in the same direction:
	// forward, one past the last event returned; backward, one before it,
	// and 0 once the first event has been returned.
	Next int64 `json:"next"`
	// Version is the stream's version when it was read.
	Version int64 `json:"version"`
}

// Page is a page of a category or of all events, in position order.
type Page struct {
	Events []RecordedEvent `json:"events"`
	// Next is the opaque position token to pass as after to continue.
	Next string `json:"next"`
}

// WaitFor returns the query parameters that make a projector's read API
// answer only once the projections behind the route have applied the
// appends of results (read-your-writes): add them to the read's URL. The
// read answers 504 wait_timeout when they have not within its timeout
// (a timeout parameter, 5s by default, at most 30s) and 503
// projection_halted at once when a projection is halted. A result with
// nothing appended adds nothing.
func WaitFor(results ...AppendResult) url.Values {
	q := url.Values{}
	for _, r := range results {
		if r.Position != "" {
			q.Add("waitForPosition", r.Position)
		}
	}
	return q
}
