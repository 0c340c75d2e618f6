package avro

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// schemaParser turns parsed schema JSON into a node graph, following the
// specification's rules for names, namespaces and references.
type schemaParser struct {
	named   map[string]*node // by full name
	records []*node          // every record, for checking defaults once all names exist
}

func parseSchemaJSON(v any) (*node, error) {
	p := schemaParser{named: make(map[string]*node)}
	root, err := p.parse(v, "", "the schema")
	if err != nil {
		return nil, err
	}
	// Defaults are checked after the whole graph exists: a default may
	// contain a value of a recursive type whose fields were not parsed yet.
	for _, rec := range p.records {
		for _, f := range rec.fields {
			if !f.hasDefault {
				continue
			}
			bin, err := encodeDefault(nil, f.typ, f.defaultJSON)
			if err != nil {
				return nil, schemaError("record %s field %q: invalid default: %v", rec.name, f.name, err)
			}
			f.defaultBin = bin
		}
	}
	return root, nil
}

func (p *schemaParser) parse(v any, ns, where string) (*node, error) {
	switch v := v.(type) {
	case string:
		return p.reference(v, ns, where)
	case []any:
		return p.union(v, ns, where)
	case map[string]any:
		return p.object(v, ns, where)
	default:
		return nil, schemaError("%s: want a type name, an object or a union array, got %s", where, describeJSON(v))
	}
}

// reference resolves a primitive name or a previously defined named type.
func (p *schemaParser) reference(name, ns, where string) (*node, error) {
	if k, ok := primitiveKind(name); ok {
		return &node{kind: k, enumDefault: -1}, nil
	}
	full := name
	if !strings.Contains(name, ".") && ns != "" {
		full = ns + "." + name
	}
	if n, ok := p.named[full]; ok {
		return n, nil
	}
	// Like Java's parser, fall back to the null namespace for a simple name.
	if n, ok := p.named[name]; ok && !strings.Contains(name, ".") {
		return n, nil
	}
	return nil, schemaError("%s: unknown type %q", where, name)
}

func (p *schemaParser) union(branches []any, ns, where string) (*node, error) {
	u := &node{kind: kindUnion, enumDefault: -1}
	seen := make(map[string]bool)
	for i, b := range branches {
		bw := fmt.Sprintf("%s union branch %d", where, i)
		n, err := p.parse(b, ns, bw)
		if err != nil {
			return nil, err
		}
		if n.kind == kindUnion {
			return nil, schemaError("%s: a union may not directly contain another union", bw)
		}
		key := n.typeName()
		if seen[key] {
			return nil, schemaError("%s: the union already has a %s branch", bw, key)
		}
		seen[key] = true
		u.branches = append(u.branches, n)
	}
	return u, nil
}

func (p *schemaParser) object(m map[string]any, ns, where string) (*node, error) {
	t, ok := m["type"]
	if !ok {
		return nil, schemaError("%s: missing \"type\"", where)
	}
	ts, ok := t.(string)
	if !ok {
		return nil, schemaError("%s: \"type\" must be a type name, got %s", where, describeJSON(t))
	}
	var n *node
	var err error
	switch ts {
	case "record", "error":
		return p.record(m, ns, where)
	case "enum":
		n, err = p.enum(m, ns, where)
	case "fixed":
		n, err = p.fixed(m, ns, where)
	case "array", "map":
		attr := "items"
		if ts == "map" {
			attr = "values"
		}
		inner, ok := m[attr]
		if !ok {
			return nil, schemaError("%s: %s without %q", where, ts, attr)
		}
		n = &node{kind: kindArray, enumDefault: -1}
		if ts == "map" {
			n.kind = kindMap
		}
		n.items, err = p.parse(inner, ns, where+" "+attr)
	default:
		k, prim := primitiveKind(ts)
		if !prim {
			// {"type": "some.Named"} refers to a defined type.
			return p.reference(ts, ns, where)
		}
		n = &node{kind: k, enumDefault: -1}
	}
	if err != nil {
		return nil, err
	}
	applyLogical(n, m)
	return n, nil
}

// applyLogical records a valid logicalType; an unknown or invalid one is
// ignored, so the value is read as its underlying type (specification,
// "Logical Types").
func applyLogical(n *node, m map[string]any) {
	name, _ := m["logicalType"].(string)
	var l logical
	for i := logicalDecimal; i <= logicalDuration; i++ {
		if logicalNames[i].name == name {
			l = i
		}
	}
	switch l {
	case logicalNone:
		return
	case logicalDecimal:
		if n.kind != kindBytes && n.kind != kindFixed {
			return
		}
		precision, ok := jsonInt(m["precision"])
		if !ok || precision < 1 {
			return
		}
		scale := int64(0)
		if s, present := m["scale"]; present {
			if scale, ok = jsonInt(s); !ok || scale < 0 {
				return
			}
		}
		if scale > precision || (n.kind == kindFixed && precision > int64(maxFixedPrecision(n.size))) {
			return
		}
		n.precision, n.scale = int(precision), int(scale)
	case logicalDuration:
		if n.kind != kindFixed || n.size != 12 {
			return
		}
	default:
		if n.kind != logicalNames[l].underlying {
			return
		}
	}
	n.logical = l
}

// maxFixedPrecision is floor(log10(2^(8*size-1) - 1)), the most decimal
// digits a fixed of that size can hold.
func maxFixedPrecision(size int) int {
	if size < 1 {
		return 0
	}
	if size > 1<<12 { // beyond any sensible decimal; avoids huge big.Ints
		size = 1 << 12
	}
	limit := new(big.Int).Lsh(big.NewInt(1), uint(8*size-1))
	limit.Sub(limit, big.NewInt(1))
	return len(limit.String()) - 1
}

// definedName computes and registers the full name of a named type.
func (p *schemaParser) definedName(n *node, m map[string]any, ns, where string) (string, error) {
	name, ok := m["name"].(string)
	if !ok {
		return "", schemaError("%s: a %s needs a string \"name\"", where, n.kind)
	}
	full := name
	if !strings.Contains(name, ".") {
		if v, present := m["namespace"]; present {
			s, ok := v.(string)
			if !ok {
				return "", schemaError("%s: \"namespace\" must be a string", where)
			}
			ns = s
		}
		if ns != "" {
			full = ns + "." + name
		}
	}
	if err := checkFullName(full); err != nil {
		return "", schemaError("%s: %v", where, err)
	}
	if _, prim := primitiveKind(simpleName(full)); prim {
		return "", schemaError("%s: %q redefines a primitive type", where, full)
	}
	if _, dup := p.named[full]; dup {
		return "", schemaError("%s: type %q is defined twice", where, full)
	}
	n.name = full
	p.named[full] = n
	aliases, err := stringList(m["aliases"])
	if err != nil {
		return "", schemaError("%s: aliases: %v", where, err)
	}
	for _, a := range aliases {
		if !strings.Contains(a, ".") && namespaceOf(full) != "" {
			a = namespaceOf(full) + "." + a
		}
		n.aliases = append(n.aliases, a)
	}
	return full, nil
}

func (p *schemaParser) record(m map[string]any, ns, where string) (*node, error) {
	n := &node{kind: kindRecord, enumDefault: -1, fieldIndex: make(map[string]int)}
	full, err := p.definedName(n, m, ns, where)
	if err != nil {
		return nil, err
	}
	raw, ok := m["fields"].([]any)
	if !ok {
		return nil, schemaError("record %s: \"fields\" must be an array", full)
	}
	inner := namespaceOf(full)
	for i, rf := range raw {
		fm, ok := rf.(map[string]any)
		if !ok {
			return nil, schemaError("record %s field %d: want an object", full, i)
		}
		name, ok := fm["name"].(string)
		if !ok || !isName(name) {
			return nil, schemaError("record %s field %d: invalid name %v", full, i, fm["name"])
		}
		if _, dup := n.fieldIndex[name]; dup {
			return nil, schemaError("record %s: field %q is defined twice", full, name)
		}
		t, ok := fm["type"]
		if !ok {
			return nil, schemaError("record %s field %q: missing \"type\"", full, name)
		}
		typ, err := p.parse(t, inner, fmt.Sprintf("record %s field %q", full, name))
		if err != nil {
			return nil, err
		}
		f := &field{name: name, typ: typ}
		f.defaultJSON, f.hasDefault = fm["default"]
		if f.aliases, err = stringList(fm["aliases"]); err != nil {
			return nil, schemaError("record %s field %q: aliases: %v", full, name, err)
		}
		if o, present := fm["order"]; present && o != "ascending" && o != "descending" && o != "ignore" {
			return nil, schemaError("record %s field %q: order must be ascending, descending or ignore", full, name)
		}
		if f.personal, err = personalProperty(fm, typ); err != nil {
			return nil, schemaError("record %s field %q: %v", full, name, err)
		}
		n.fieldIndex[name] = len(n.fields)
		n.fields = append(n.fields, f)
	}
	if err := dataSubjectProperty(n, m); err != nil {
		return nil, schemaError("record %s: %v", full, err)
	}
	p.records = append(p.records, n)
	return n, nil
}

func (p *schemaParser) enum(m map[string]any, ns, where string) (*node, error) {
	n := &node{kind: kindEnum, enumDefault: -1, symbolIndex: make(map[string]int)}
	full, err := p.definedName(n, m, ns, where)
	if err != nil {
		return nil, err
	}
	symbols, err := stringList(m["symbols"])
	if err != nil || m["symbols"] == nil {
		return nil, schemaError("enum %s: \"symbols\" must be an array of strings", full)
	}
	for i, s := range symbols {
		if !isName(s) {
			return nil, schemaError("enum %s: invalid symbol %q", full, s)
		}
		if _, dup := n.symbolIndex[s]; dup {
			return nil, schemaError("enum %s: symbol %q is listed twice", full, s)
		}
		n.symbolIndex[s] = i
	}
	n.symbols = symbols
	// "default": null is read as no default (Postel, as Doug Cutting put it on AVRO-1340).
	if d, present := m["default"]; present && d != nil {
		s, ok := d.(string)
		i, found := n.symbolIndex[s]
		if !ok || !found {
			return nil, schemaError("enum %s: default %v is not one of its symbols", full, d)
		}
		n.enumDefault = i
	}
	return n, nil
}

func (p *schemaParser) fixed(m map[string]any, ns, where string) (*node, error) {
	n := &node{kind: kindFixed, enumDefault: -1}
	full, err := p.definedName(n, m, ns, where)
	if err != nil {
		return nil, err
	}
	size, ok := jsonInt(m["size"])
	if !ok || size < 0 || size > 1<<30 {
		return nil, schemaError("fixed %s: \"size\" must be a non-negative integer", full)
	}
	n.size = int(size)
	return n, nil
}

// jsonInt reads an integral JSON number.
func jsonInt(v any) (int64, bool) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := exactInt(string(num), 64)
	return i, err == nil
}

func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want an array of strings")
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("want an array of strings")
		}
		out[i] = s
	}
	return out, nil
}

// isName reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func checkFullName(full string) error {
	for _, part := range strings.Split(full, ".") {
		if !isName(part) {
			return fmt.Errorf("invalid name %q", full)
		}
	}
	return nil
}

// describeJSON names the JSON type of a parsed value for messages.
func describeJSON(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number " + string(v)
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
