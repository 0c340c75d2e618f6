package avro

import "strings"

// kind is the Avro type of a schema node.
type kind uint8

const (
	kindNull kind = iota
	kindBoolean
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindBytes
	kindString
	kindRecord
	kindEnum
	kindArray
	kindMap
	kindUnion
	kindFixed
)

// kindNames are the type names as written in schemas.
var kindNames = [...]string{
	kindNull: "null", kindBoolean: "boolean", kindInt: "int", kindLong: "long",
	kindFloat: "float", kindDouble: "double", kindBytes: "bytes", kindString: "string",
	kindRecord: "record", kindEnum: "enum", kindArray: "array", kindMap: "map",
	kindUnion: "union", kindFixed: "fixed",
}

func (k kind) String() string { return kindNames[k] }

func (k kind) named() bool { return k == kindRecord || k == kindEnum || k == kindFixed }

// primitiveKind returns the kind of a primitive type name.
func primitiveKind(name string) (kind, bool) {
	for k := kindNull; k <= kindString; k++ {
		if kindNames[k] == name {
			return k, true
		}
	}
	return 0, false
}

// logical is a logical type that this package honours. Unknown or invalid
// logical types are dropped at parse time, as the specification requires.
type logical uint8

const (
	logicalNone logical = iota
	logicalDecimal
	logicalUUID
	logicalDate
	logicalTimeMillis
	logicalTimeMicros
	logicalTimestampMillis
	logicalTimestampMicros
	logicalLocalTimestampMillis
	logicalLocalTimestampMicros
	logicalDuration
)

// logicalNames maps logicalType attribute values to logical types, with the
// underlying kind each one requires (decimal, which allows two, is checked apart).
var logicalNames = [...]struct {
	name       string
	underlying kind
}{
	logicalDecimal:              {"decimal", kindBytes},
	logicalUUID:                 {"uuid", kindString},
	logicalDate:                 {"date", kindInt},
	logicalTimeMillis:           {"time-millis", kindInt},
	logicalTimeMicros:           {"time-micros", kindLong},
	logicalTimestampMillis:      {"timestamp-millis", kindLong},
	logicalTimestampMicros:      {"timestamp-micros", kindLong},
	logicalLocalTimestampMillis: {"local-timestamp-millis", kindLong},
	logicalLocalTimestampMicros: {"local-timestamp-micros", kindLong},
	logicalDuration:             {"duration", kindFixed},
}

func (l logical) String() string {
	if l == logicalNone {
		return ""
	}
	return logicalNames[l].name
}

// node is one type of a parsed schema. Nodes form a graph (a recursive
// record refers back to itself) and are never modified after parsing, which
// is what makes *Schema safe for concurrent use.
type node struct {
	kind    kind
	logical logical
	// decimal
	precision, scale int

	// named types (record, enum, fixed)
	name    string   // full name
	aliases []string // full names

	// record
	fields     []*field
	fieldIndex map[string]int
	// dataSubject names the field that holds the data subject of the
	// record's personal fields ("strata.dataSubject"); "" for none.
	dataSubject string

	// enum
	symbols     []string
	symbolIndex map[string]int
	enumDefault int // index into symbols, -1 when there is none

	// array items or map values
	items *node

	// union
	branches []*node

	// fixed
	size int
}

// field is one record field.
type field struct {
	name       string
	aliases    []string
	typ        *node
	hasDefault bool
	// defaultJSON is the default as parsed from the schema (Avro's default
	// encoding: bytes as code points, unions as the first matching branch);
	// defaultBin is its binary encoding.
	defaultJSON any
	defaultBin  []byte
	// personal marks a field that holds personal data ("strata.personal":
	// true): a string or bytes, or a union of null with one.
	personal bool
}

// simpleName returns the unqualified part of a full name.
func simpleName(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// namespaceOf returns the namespace part of a full name ("" for none).
func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

// typeName is how a node is named in messages and union wrappers: the full
// name of a named type, the kind otherwise (the underlying type for logical types).
func (n *node) typeName() string {
	if n.kind.named() {
		return n.name
	}
	return n.kind.String()
}

// describe names a node for error messages, including its logical type.
func (n *node) describe() string {
	switch {
	case n.logical == logicalDecimal:
		return "decimal"
	case n.logical != logicalNone:
		return n.logical.String()
	case n.kind.named():
		return n.kind.String() + " " + n.name
	default:
		return n.kind.String()
	}
}

// nullIndex returns the index of the null branch of a union, or -1.
func (n *node) nullIndex() int {
	for i, b := range n.branches {
		if b.kind == kindNull {
			return i
		}
	}
	return -1
}
