package eventstore

import (
	"fmt"
	"time"
)

// Limits on appends and reads.
const (
	// MaxAppendEvents is the most events one append may carry.
	MaxAppendEvents = 1000
	// MaxTypeLength bounds an event type name.
	MaxTypeLength = 255
	// DefaultReadLimit is the page size when a reader gives none.
	DefaultReadLimit = 100
	// MaxReadLimit is the largest page a reader may ask for.
	MaxReadLimit = 1000
)

// Fingerprint identifies the Avro schema an event's data was written with:
// the schema's CRC-64-AVRO fingerprint of its canonical form. It does not
// depend on any registry, so a store can move between registries.
type Fingerprint uint64

// String returns the fingerprint as 16 hex digits.
func (f Fingerprint) String() string { return fmt.Sprintf("%016x", uint64(f)) }

// Metadata travels with an event. Empty fields are not stored.
type Metadata struct {
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	UserID        string `json:"userId,omitempty"`
	TenantID      string `json:"tenantId,omitempty"`
	// DataSubject is the person the event's personal data is about: the
	// key of its personal fields (see package personal), and what erasure
	// and access requests find it by.
	DataSubject string            `json:"dataSubject,omitempty"`
	Custom      map[string]string `json:"custom,omitempty"`
	// TraceParent and TraceState are the W3C trace context of the append
	// (see package tracing), empty for none. They travel to Kafka's
	// headers, not to the API's answers.
	TraceParent string `json:"-"`
	TraceState  string `json:"-"`
}

// IsZero reports whether m holds nothing.
func (m Metadata) IsZero() bool {
	return m.CorrelationID == "" && m.CausationID == "" && m.UserID == "" && m.TenantID == "" && m.DataSubject == "" && len(m.Custom) == 0
}

// EventData is an event to append.
type EventData struct {
	// ID identifies the event; the zero UUID asks the store for a new
	// version 7 UUID. Appending the same ids again is idempotent.
	ID UUID
	// Type is the name of the event's Avro record, such as "OrderCreated".
	Type string
	// Schema is the fingerprint of the schema Data was written with.
	Schema Fingerprint
	// Data is the event's Avro binary encoding.
	Data     []byte
	Metadata Metadata
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID       UUID
	StreamID StreamID
	Type     string
	// Version is the event's place in its stream: 1, 2, 3, ...
	Version int64
	// GlobalPosition is the event's unique insertion number. Events become
	// readable in an order that can differ from it, so it is for reference
	// only: page through $all and categories with a Cursor.
	GlobalPosition int64
	RecordedAt     time.Time
	Schema         Fingerprint
	Data           []byte
	Metadata       Metadata
}

// AppendedEvent is what an append reports about each event it stored.
type AppendedEvent struct {
	ID             UUID
	Version        int64
	GlobalPosition int64
}

// AppendResult reports a successful append.
type AppendResult struct {
	Stream       StreamID
	FirstVersion int64
	LastVersion  int64
	Events       []AppendedEvent
	// Replayed is true when every event was already stored by an earlier
	// append with the same ids: nothing was stored this time, and the
	// result is that of the earlier append.
	Replayed bool
}

// ValidateAppend checks an append's arguments before any I/O: the stream id,
// the expected version, the number of events, their types and ids. Stores
// call it first so that bad input changes nothing.
func ValidateAppend(stream StreamID, expected ExpectedVersion, events []EventData) error {
	if stream.IsZero() {
		return Errorf(CodeInvalidStreamID, "the stream id is missing")
	}
	if err := expected.Validate(); err != nil {
		return err
	}
	switch {
	case len(events) == 0:
		return Errorf(CodeInvalidRequest, "an append needs at least one event")
	case len(events) > MaxAppendEvents:
		return Errorf(CodeTooLarge, "an append may carry at most %d events; this one has %d", MaxAppendEvents, len(events))
	}
	var seen map[UUID]int // ids of the events before, for appends of more than one
	if len(events) > 1 {
		seen = make(map[UUID]int, len(events))
	}
	for i, e := range events {
		if err := ValidateTypeName(e.Type); err != nil {
			return Errorf(CodeInvalidRequest, "events[%d].type: %s", i, err.(*Error).Message)
		}
		if e.ID.IsZero() || seen == nil {
			continue
		}
		if j, dup := seen[e.ID]; dup {
			return Errorf(CodeInvalidRequest, "events[%d].id: %s is also the id of events[%d]", i, e.ID, j)
		}
		seen[e.ID] = i
	}
	return nil
}

// ValidateTypeName checks that t can be an Avro record's simple name.
func ValidateTypeName(t string) error {
	if t == "" {
		return Errorf(CodeInvalidRequest, "the event type is empty")
	}
	if len(t) > MaxTypeLength {
		return Errorf(CodeInvalidRequest, "the event type is longer than %d characters", MaxTypeLength)
	}
	if !isLetter(t[0]) && t[0] != '_' {
		return Errorf(CodeInvalidRequest, "the event type %q does not start with a letter or _", t)
	}
	for i := 1; i < len(t); i++ {
		if b := t[i]; !isLetter(b) && !isDigit(b) && b != '_' {
			return Errorf(CodeInvalidRequest, "the event type %q has %s; an Avro name has only letters, digits and _", t, describeByte(t, i))
		}
	}
	return nil
}

// AssignIDs returns events with a new version 7 UUID wherever the id is
// zero. It does not modify its argument.
func AssignIDs(events []EventData) []EventData {
	out := make([]EventData, len(events))
	for i, e := range events {
		if e.ID.IsZero() {
			e.ID = NewUUIDv7()
		}
		out[i] = e
	}
	return out
}
