package avro

import (
	"strconv"
	"strings"
)

// canonicalForm renders the Parsing Canonical Form of a schema graph
// (specification, "Transforming into Parsing Canonical Form"), with one
// extension: Strata's personal-data properties (PersonalProperty after a
// field's type, DataSubjectProperty after a record's fields) are kept.
// They decide whether data written with a schema is encrypted, so two
// schemas that differ in them are different writer schemas, with their
// own fingerprints. A schema without them has its standard form.
//
// It is built from the parsed graph rather than by editing the schema text,
// which gets each rule for free: names are already full (FULLNAMES), only
// name, type, fields, symbols, items, values and size are written, in that
// order (STRIP, ORDER), a primitive is always its bare name, even when it
// carries a logicalType (PRIMITIVES), strings are written unescaped except
// where JSON requires it (STRINGS), sizes are plain integers (INTEGERS), and
// nothing adds whitespace (WHITESPACE). A named type is written in full the
// first time it appears, depth first and left to right, and as its full name
// afterwards.
//
// goavro's CanonicalSchema is not compliant: it concatenates nested
// namespaces ("a.b" + "c" gives "a.b.c.S" instead of "c.S"), ignores the
// namespace implied by a dotted record name, keeps {"type":"bytes"} for
// logical types and adds a made-up name ("bytes.decimal") to decimals, and
// prints large fixed sizes as 1e+06. Python's avro 1.11 also keeps
// {"type":"bytes"} for a primitive that carries a logicalType.
func canonicalForm(root *node) string {
	var b strings.Builder
	writeCanonical(&b, root, make(map[*node]bool))
	return b.String()
}

func writeCanonical(b *strings.Builder, n *node, seen map[*node]bool) {
	switch n.kind {
	case kindRecord, kindEnum, kindFixed:
		if seen[n] {
			writeJSONString(b, n.name)
			return
		}
		seen[n] = true
		b.WriteString(`{"name":`)
		writeJSONString(b, n.name)
		b.WriteString(`,"type":`)
		writeJSONString(b, n.kind.String())
		switch n.kind {
		case kindRecord:
			b.WriteString(`,"fields":[`)
			for i, f := range n.fields {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"name":`)
				writeJSONString(b, f.name)
				b.WriteString(`,"type":`)
				writeCanonical(b, f.typ, seen)
				if f.personal {
					b.WriteString(`,"` + PersonalProperty + `":true`)
				}
				b.WriteByte('}')
			}
			b.WriteByte(']')
			if n.dataSubject != "" {
				b.WriteString(`,"` + DataSubjectProperty + `":`)
				writeJSONString(b, n.dataSubject)
			}
		case kindEnum:
			b.WriteString(`,"symbols":[`)
			for i, s := range n.symbols {
				if i > 0 {
					b.WriteByte(',')
				}
				writeJSONString(b, s)
			}
			b.WriteByte(']')
		case kindFixed:
			b.WriteString(`,"size":`)
			b.WriteString(strconv.Itoa(n.size))
		}
		b.WriteByte('}')
	case kindArray:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, n.items, seen)
		b.WriteByte('}')
	case kindMap:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, n.items, seen)
		b.WriteByte('}')
	case kindUnion:
		b.WriteByte('[')
		for i, br := range n.branches {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, br, seen)
		}
		b.WriteByte(']')
	default:
		writeJSONString(b, n.kind.String())
	}
}

// writeJSONString writes s as a JSON string literal, escaping only what JSON
// requires, so UTF-8 stays UTF-8 as the [STRINGS] rule asks.
func writeJSONString(b *strings.Builder, s string) {
	b.Write(appendJSONString(nil, s))
}
