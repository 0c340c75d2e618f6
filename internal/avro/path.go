package avro

import "strings"

// FieldType looks up the field at a dotted path such as "address.city" in
// a record schema, going into nested records and into optional records (a
// union of null and one record). It returns how messages name the field's
// type ("string", "decimal", "timestamp-millis",
// "record example.orders.Address", "null or string") and true, or "" and
// false when the schema has no field at that path.
func (s *Schema) FieldType(path string) (string, bool) {
	n := s.root
	for name := range strings.SplitSeq(path, ".") {
		rec := n
		if rec.kind == kindUnion {
			rec = optionalRecord(rec)
		}
		if rec == nil || rec.kind != kindRecord {
			return "", false
		}
		i, ok := rec.fieldIndex[name]
		if !ok {
			return "", false
		}
		n = rec.fields[i].typ
	}
	if n.kind != kindUnion {
		return n.describe(), true
	}
	names := make([]string, len(n.branches))
	for i, b := range n.branches {
		names[i] = b.describe()
	}
	return strings.Join(names, " or "), true
}

// optionalRecord returns the record branch of a union of null and one
// record, or nil.
func optionalRecord(u *node) *node {
	if len(u.branches) != 2 || u.nullIndex() < 0 {
		return nil
	}
	return u.branches[1-u.nullIndex()]
}
