// Package projection is how read models are defined for Strata's projector:
// a Projection names the categories it reads, the tables it keeps and how a
// batch of events changes them.
//
// There are two ways to write one, and neither needs a fork of Strata:
//
//   - A declarative SQL projection is a file (ParseSQL, LoadDir): DDL that
//     sets up its tables, and one parameterised statement per event type,
//     with the event's fields and metadata bound by name. `projector run`
//     loads every *.sql file of STRATA_PROJECTIONS_DIR.
//   - A code projection is a Projection value with an Apply function in
//     Go; a program of your own passes it to projector.Main, which is the
//     whole projector command line.
//
// The runner calls Apply with the events of one poll of the projection's
// topics — one or more partitions, each in order — inside the PostgreSQL
// transaction that also stores those partitions' next offsets: a batch is
// applied exactly once or not at all. Events it has already applied
// (re-published records) are removed before Apply sees them, by a
// per-stream version guard.
//
// Tables are named without a schema: the transaction's search_path is the
// read-model schema ("readmodel" by default), or a fresh schema while
// `projector rebuild` replays a projection beside the one that serves, which
// it then swaps in atomically.
package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/personal"
)

// Projection defines a read model.
type Projection struct {
	// Name identifies the projection: its consumer group is
	// {STRATA_GROUP_PREFIX}{Name}. Lower-case letters, digits and _,
	// starting with a letter, at most 40 characters.
	Name string
	// Categories are the stream categories whose topics it reads.
	Categories []string
	// Setup is the SQL that creates its tables and indexes, run in one
	// transaction before the projection first applies anything and in
	// the fresh schema of a rebuild. It must be idempotent (CREATE ...
	// IF NOT EXISTS) and create only tables and their indexes: the
	// tables it creates are the projection's, which a rebuild replaces.
	Setup string
	// Apply changes the read model for events, in tx. An error rolls the
	// whole batch back; the runner retries it, and finds and handles a
	// poison event by the projection's OnPoison policy.
	Apply ApplyFunc
	// OnPoison is what happens to an event whose Apply keeps failing;
	// the zero value is Halt.
	OnPoison Policy
	// Source says where the projection was defined ("projections/x.sql"
	// for a file), for messages.
	Source string
}

// ApplyFunc applies a batch of events to the read model in tx: the events
// of one or more partitions, each partition's in its order, so each
// stream's events are in version order; none has been applied before. When
// a batch keeps failing, the runner retries its partitions one by one, and
// then their events one by one, to find a poison event.
type ApplyFunc func(ctx context.Context, tx pgx.Tx, events []Event) error

// Policy is what the runner does with a poison event: one whose Apply
// still fails after its retries.
type Policy string

// The policies.
const (
	// Halt stops the projection, visibly (`projector status`, the read
	// API, metrics and logs), until an operator resumes it. Nothing is
	// skipped, so the read model stays exact.
	Halt Policy = "halt"
	// Park records the event and its error in the dead-letter table
	// (readmodel.parked_events) and goes on with the next one.
	Park Policy = "park"
)

// ParsePolicy reads "halt" or "park".
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Halt, Park:
		return p, nil
	}
	return "", fmt.Errorf("poison policy %q is not halt or park", s)
}

// StreamDeletedType is the type of the system event that deleting a
// stream appends to it, as its next version, with the Data
// {"streamId": string, "hard": bool}. It comes through the version guard,
// exactly once and in order, as the stream's other events do. A projection
// that keeps rows per stream should remove them on it (in a file, with
// -- strata:on-stream-deleted; see ParseSQL): a stream deleted softly may
// be written again, and its new events then follow the deletion as
// further versions of the same stream.
const StreamDeletedType = eventstore.StreamDeletedType

// DataSubjectErasedType is the type of the system event that erasing a
// data subject appends to each stream holding events of the subject, with
// the Data {"subjectId": string}. The subject's personal fields read as
// "[erased]" from then on, rebuilds included. A projection that copied
// them should redact its rows of the subject on it (in a file, with
// -- strata:on-erased; see ParseSQL). It comes once per stream of the
// subject, so redacting must be idempotent.
const DataSubjectErasedType = eventstore.DataSubjectErasedType

// Erased is what a personal field of an erased data subject reads as: the
// text "[erased]" (in a bytes field, its UTF-8 bytes). Redactions write
// it too, so that rebuilt rows equal redacted ones.
const Erased = personal.Erased

// Event is an event as a projection sees it: decoded from its Kafka record
// and resolved to the latest registered schema of its type, so that events
// written with older versions of a type read like new ones (an added field
// takes its default).
type Event struct {
	ID             string    // the event's UUID
	StreamID       string    // e.g. "Order-123"
	Category       string    // e.g. "Order"
	Version        int64     // 1 for a stream's first event
	Type           string    // the event type, e.g. "OrderCreated"
	GlobalPosition int64     // position in the store's $all
	RecordedAt     time.Time // when the store committed it
	Metadata       Metadata
	// Data holds the fields of the event's record. Values are:
	//
	//	null → nil              boolean → bool          int → int32
	//	long → int64            float → float32         double → float64
	//	bytes, fixed → []byte   string → string         enum → string
	//	array → []any           map, record → map[string]any
	//	decimal → Decimal       timestamp-*, date → time.Time (UTC)
	//	a union → its branch's value
	Data map[string]any
	// SchemaID is the registry id of the schema the event was written
	// with (before resolution).
	SchemaID int
	// Where the record was read.
	Topic     string
	Partition int32
	Offset    int64
}

// Metadata is an event's metadata; absent fields are empty.
type Metadata struct {
	CorrelationID string
	CausationID   string
	UserID        string
	TenantID      string
	DataSubject   string // the person its personal fields are about
	Custom        map[string]string
}

// Decimal is the value of an Avro decimal: exact. Its String gives the
// digits ("15.90"), Rat a *big.Rat.
type Decimal = avro.Decimal

// Text returns the string field name of e's data, or "" when it is absent
// or not a string.
func (e Event) Text(name string) string {
	s, _ := e.Data[name].(string)
	return s
}

// Int returns the int or long field name of e's data, or 0.
func (e Event) Int(name string) int64 {
	switch v := e.Data[name].(type) {
	case int32:
		return int64(v)
	case int64:
		return v
	}
	return 0
}

// Decimal returns the decimal field name of e's data, or zero.
func (e Event) Decimal(name string) Decimal {
	d, _ := e.Data[name].(Decimal)
	return d
}

// Time returns the timestamp field name of e's data, or the zero time.
func (e Event) Time(name string) time.Time {
	t, _ := e.Data[name].(time.Time)
	return t
}

// Validate checks p's definition: its name, categories and policy, and
// that it has an Apply.
func (p *Projection) Validate() error {
	if err := ValidateName(p.Name); err != nil {
		return err
	}
	if len(p.Categories) == 0 {
		return fmt.Errorf("projection %s reads no category", p.Name)
	}
	for _, c := range p.Categories {
		if c == "" {
			return fmt.Errorf("projection %s: empty category", p.Name)
		}
	}
	if p.Apply == nil {
		return fmt.Errorf("projection %s has no Apply", p.Name)
	}
	if p.OnPoison != "" {
		if _, err := ParsePolicy(string(p.OnPoison)); err != nil {
			return fmt.Errorf("projection %s: %w", p.Name, err)
		}
	}
	return nil
}

// Policy returns p's poison policy, Halt by default.
func (p *Projection) Policy() Policy {
	if p.OnPoison == "" {
		return Halt
	}
	return p.OnPoison
}

// ValidateName checks a projection name: lower-case letters, digits and _,
// starting with a letter, at most 40 characters (it becomes part of
// PostgreSQL identifiers).
func ValidateName(name string) error {
	if name == "" {
		return errors.New("a projection needs a name")
	}
	if len(name) > 40 {
		return fmt.Errorf("projection name %q is longer than 40 characters", name)
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r == '_' && i > 0 || r >= '0' && r <= '9' && i > 0) {
			return fmt.Errorf("projection name %q must be lower-case letters, digits and _, starting with a letter", name)
		}
	}
	return nil
}
