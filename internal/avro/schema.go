package avro

import (
	"fmt"

	"github.com/linkedin/goavro/v2"
)

// Schema is a parsed Avro schema: its text, Parsing Canonical Form,
// CRC-64-AVRO fingerprint, and the compiled programs that convert between
// natural JSON, native Go values and Avro binary.
//
// A *Schema is immutable and safe for concurrent use by multiple goroutines.
type Schema struct {
	text        string
	root        *node
	canonical   string
	fingerprint uint64
	self        *plan // the identity resolution, for Decode and ToJSON
	// personal holds the nodes whose values hold personal fields.
	personal map[*node]bool
}

// Parse parses an event schema: a JSON Avro schema whose top-level type is a
// record. It fails, wrapping ErrInvalidSchema, when the text is not a valid
// Avro schema, when the top-level type is not a record, or when goavro (which
// other parts of Strata use to encode and decode) rejects it.
func Parse(text string) (*Schema, error) {
	s, err := ParseAny(text)
	if err != nil {
		return nil, err
	}
	if s.root.kind != kindRecord {
		return nil, schemaError("the top-level type is %s; an event schema must be a record", s.root.kind)
	}
	return s, nil
}

// ParseAny parses a schema of any Avro type (a Confluent registry client
// may register "string" as a key schema, for instance). Errors are as for
// Parse, except that any top-level type is accepted.
//
// Beyond goavro's checks it enforces the specification where goavro is lax:
// unique enum symbols, enum defaults that are symbols, field defaults that
// fit the field's type, no union directly inside a union, valid field order.
// Invalid or unknown logical types are ignored, as the specification says.
func ParseAny(text string) (*Schema, error) {
	v, err := parseJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	root, err := parseSchemaJSON(v)
	if err != nil {
		return nil, err
	}
	if _, err := goavro.NewCodec(text); err != nil {
		return nil, schemaError("goavro rejects it: %v", err)
	}
	s := &Schema{text: text, root: root}
	s.canonical = canonicalForm(root)
	s.fingerprint = Fingerprint64([]byte(s.canonical))
	s.self = compilePlan(root, root)
	s.personal = personalNodes(root)
	return s, nil
}

// FullName returns the full name of the top-level named type (for an event
// schema, its record), e.g. "example.orders.OrderCreated"; "" for unnamed types.
func (s *Schema) FullName() string { return s.root.name }

// Name returns the unqualified name of the top-level named type, e.g.
// "OrderCreated" (the event type); "" for unnamed types.
func (s *Schema) Name() string { return simpleName(s.root.name) }

// Namespace returns the namespace of the top-level named type, "" for none.
func (s *Schema) Namespace() string { return namespaceOf(s.root.name) }

// Type returns the top-level type's kind, e.g. "record" or "string".
func (s *Schema) Type() string { return s.root.kind.String() }

// Text returns the schema text exactly as given to Parse.
func (s *Schema) Text() string { return s.text }

// Canonical returns the Parsing Canonical Form (specification, "Parsing
// Canonical Form for Schemas"). Two schemas with equal canonical forms read
// and write the same bytes. Strata's personal-data properties are kept in
// it (see PersonalProperty): a schema with them has a form, and a
// fingerprint, of its own.
func (s *Schema) Canonical() string { return s.canonical }

// Fingerprint returns the CRC-64-AVRO (Rabin) fingerprint of the canonical
// form, the identifier used by Avro's single-object encoding.
func (s *Schema) Fingerprint() uint64 { return s.fingerprint }

// String returns the canonical form.
func (s *Schema) String() string { return s.canonical }
