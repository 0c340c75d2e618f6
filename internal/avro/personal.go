package avro

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Strata's schema properties for personal data. Avro keeps unknown
// properties and leaves them out of the Parsing Canonical Form, so they
// change neither a schema's fingerprint nor what other readers make of it.
const (
	// PersonalProperty, a field property, marks a field that holds
	// personal data: the writer encrypts its values with the key of the
	// event's data subject. It applies to string and bytes fields, and to
	// unions of null with one of them (null stays null).
	PersonalProperty = "strata.personal"
	// DataSubjectProperty, a property of the event's record, names the
	// string field that holds the data subject of its personal fields.
	DataSubjectProperty = "strata.dataSubject"
)

// personalProperty reads a field's strata.personal property.
func personalProperty(fm map[string]any, typ *node) (bool, error) {
	v, present := fm[PersonalProperty]
	if !present {
		return false, nil
	}
	on, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s must be true or false, got %s", PersonalProperty, describeJSON(v))
	}
	if on && personalKind(typ) == nil {
		return false, fmt.Errorf("%s applies to string and bytes fields (or a union of null with one), not to %s", PersonalProperty, describeType(typ))
	}
	return on, nil
}

// personalKind returns the string or bytes node that a personal field of
// type n holds, or nil when n cannot be personal. Logical types (uuid,
// decimal) are refused: their values have a form that ciphertext breaks.
func personalKind(n *node) *node {
	plain := func(n *node) bool { return (n.kind == kindString || n.kind == kindBytes) && n.logical == logicalNone }
	switch {
	case plain(n):
		return n
	case n.kind == kindUnion && len(n.branches) == 2 && n.nullIndex() >= 0 && plain(n.branches[1-n.nullIndex()]):
		return n.branches[1-n.nullIndex()]
	}
	return nil
}

// describeType names a type for the personal property's errors.
func describeType(n *node) string {
	if n.kind != kindUnion {
		return n.describe()
	}
	s := "a union of"
	for i, b := range n.branches {
		if i > 0 {
			s += ","
		}
		s += " " + b.describe()
	}
	return s
}

// dataSubjectProperty reads a record's strata.dataSubject property: the
// name of one of its string fields that is not itself personal.
func dataSubjectProperty(n *node, m map[string]any) error {
	v, present := m[DataSubjectProperty]
	if !present {
		return nil
	}
	name, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s must name one of its fields, got %s", DataSubjectProperty, describeJSON(v))
	}
	i, ok := n.fieldIndex[name]
	if !ok {
		return fmt.Errorf("%s names %q, which is not one of its fields", DataSubjectProperty, name)
	}
	f := n.fields[i]
	if f.typ.kind != kindString || f.typ.logical != logicalNone && f.typ.logical != logicalUUID {
		return fmt.Errorf("%s names field %q, a %s; the data subject must be a string field", DataSubjectProperty, name, describeType(f.typ))
	}
	if f.personal {
		return fmt.Errorf("%s names field %q, which is personal: the subject must be readable to find its key", DataSubjectProperty, name)
	}
	n.dataSubject = name
	return nil
}

// personalNodes returns the nodes whose values hold personal fields.
func personalNodes(root *node) map[*node]bool {
	holds := make(map[*node]bool)
	var visit func(n *node, seen map[*node]bool) bool
	visit = func(n *node, seen map[*node]bool) bool {
		if seen[n] {
			return holds[n]
		}
		seen[n] = true
		found := false
		switch n.kind {
		case kindRecord:
			for _, f := range n.fields {
				if visit(f.typ, seen) || f.personal {
					found = true
				}
			}
		case kindArray, kindMap:
			found = visit(n.items, seen)
		case kindUnion:
			for _, b := range n.branches {
				if visit(b, seen) {
					found = true
				}
			}
		}
		if found {
			holds[n] = true
		}
		return found
	}
	// A recursive type is found to hold personal fields only once a cycle
	// is closed: visit until nothing more is learnt.
	for n := -1; n != len(holds); {
		n = len(holds)
		visit(root, make(map[*node]bool))
	}
	return holds
}

// HasPersonal reports whether the schema has personal fields.
func (s *Schema) HasPersonal() bool { return len(s.personal) > 0 }

// DataSubjectField returns the field that the event's record names as its
// data subject (strata.dataSubject), or "".
func (s *Schema) DataSubjectField() string { return s.root.dataSubject }

// PersonalFields returns the paths of the personal fields, in schema
// order ("address.street", "contacts[].email", "phones{}"), for messages.
func (s *Schema) PersonalFields() []string {
	var paths []string
	seen := make(map[*node]bool)
	var walk func(n *node, path string)
	walk = func(n *node, path string) {
		if !s.personal[n] || seen[n] {
			return
		}
		seen[n] = true
		defer delete(seen, n)
		switch n.kind {
		case kindRecord:
			for _, f := range n.fields {
				p := f.name
				if path != "" {
					p = path + "." + f.name
				}
				if f.personal {
					paths = append(paths, p)
				}
				walk(f.typ, p)
			}
		case kindArray:
			walk(n.items, path+"[]")
		case kindMap:
			walk(n.items, path+"{}")
		case kindUnion:
			for _, b := range n.branches {
				walk(b, path)
			}
		}
	}
	walk(s.root, "")
	return paths
}

// DataSubject returns the value of the data-subject field of bin, data
// written with this schema; ok is false when the schema names none.
func (s *Schema) DataSubject(bin []byte) (subject string, ok bool, err error) {
	name := s.root.dataSubject
	if name == "" {
		return "", false, nil
	}
	in := input{buf: bin}
	for _, f := range s.root.fields {
		if f.name == name {
			b, err := in.text()
			if err != nil {
				return "", false, err
			}
			return string(b), true, nil
		}
		if err := in.skip(f.typ); err != nil {
			return "", false, err
		}
	}
	return "", false, errors.New("the data subject field is missing") // unreachable: checked at parse time
}

// MapPersonal returns bin, data written with this schema, with the value
// of every personal field replaced by fn's result for it: how personal
// fields are encrypted after encoding and decrypted before decoding. A
// string field's replacement must be valid UTF-8. Everything else is
// copied byte for byte; data of a schema without personal fields is bin
// itself. The value given to fn is part of bin: fn must not modify it. Errors are fn's, and decoding errors (errors.Is ErrDecode).
func (s *Schema) MapPersonal(bin []byte, fn func(value []byte) ([]byte, error)) ([]byte, error) {
	if !s.HasPersonal() {
		return bin, nil
	}
	m := mapper{input: input{buf: bin}, holds: s.personal, fn: fn, out: make([]byte, 0, len(bin)+64)}
	if err := m.value(s.root, false); err != nil {
		return nil, err
	}
	if err := m.end(); err != nil {
		return nil, err
	}
	return append(m.out, bin[m.last:]...), nil
}

// mapper rewrites the personal values of a binary value: out holds what
// is rewritten so far, and buf[last:pos] what is read but not yet copied.
type mapper struct {
	input
	holds map[*node]bool
	fn    func([]byte) ([]byte, error)
	out   []byte
	last  int
}

// flush copies what is read up to at into out.
func (m *mapper) flush(at int) {
	m.out = append(m.out, m.buf[m.last:at]...)
	m.last = at
}

func (m *mapper) value(n *node, personal bool) error {
	if personal {
		return m.personalValue(n)
	}
	if !m.holds[n] {
		return m.skip(n)
	}
	switch n.kind {
	case kindRecord:
		if err := m.enter(); err != nil {
			return err
		}
		for _, f := range n.fields {
			if err := m.value(f.typ, f.personal); err != nil {
				return err
			}
		}
		m.depth--
		return nil
	case kindArray, kindMap:
		return m.blocks(n)
	case kindUnion:
		i, err := m.unionIndex(len(n.branches))
		if err != nil {
			return err
		}
		return m.value(n.branches[i], false)
	}
	return m.skip(n)
}

// personalValue rewrites the value of a personal field of type n.
func (m *mapper) personalValue(n *node) error {
	if n.kind == kindUnion {
		i, err := m.unionIndex(len(n.branches))
		if err != nil {
			return err
		}
		if n = n.branches[i]; n.kind == kindNull {
			return nil
		}
	}
	at := m.pos
	v, err := m.bytes()
	if err != nil {
		return err
	}
	nv, err := m.fn(v)
	if err != nil {
		return err
	}
	if n.kind == kindString && !utf8.Valid(nv) {
		return errors.New("a personal string field's new value is not valid UTF-8")
	}
	m.flush(at)
	m.out = appendBytes(m.out, nv)
	m.last = m.pos
	return nil
}

// blocks rewrites an array's or a map's blocks. A block that states its
// size in bytes is rewritten without it (its size changes with its values).
func (m *mapper) blocks(n *node) error {
	if err := m.enter(); err != nil {
		return err
	}
	for {
		at := m.pos
		count, err := m.long()
		switch {
		case err != nil:
			return err
		case count == 0:
			m.depth--
			return nil
		case count < 0:
			if _, err := m.long(); err != nil {
				return err
			}
			count = -count
			m.flush(at)
			m.out = appendLong(m.out, count)
			m.last = m.pos
		}
		if err := m.spend(count, 0); err != nil {
			m.pos = at
			return err
		}
		for range count {
			if n.kind == kindMap {
				if _, err := m.bytes(); err != nil {
					return err
				}
			}
			if err := m.value(n.items, false); err != nil {
				return err
			}
		}
	}
}
