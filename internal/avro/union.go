package avro

import "strings"

// Union values: which branch FromJSON and Encode choose for a value, and
// when ToJSON must write the {"branch": value} form so that FromJSON chooses
// the same branch again. The rules are documented on FromJSON.

// defaultUnion encodes a default with the first branch it fits.
func (e encoder) defaultUnion(dst []byte, n *node, v any) ([]byte, error) {
	mark := len(dst)
	for i, b := range n.branches {
		out, err := e.encode(appendLong(dst, int64(i)), b, v)
		if err == nil {
			return out, nil
		}
		dst = dst[:mark]
	}
	return dst, violation("want one of %s, got %s", branchList(n), describeValue(v))
}

// union encodes a value of a union with the rules documented on FromJSON.
func (e encoder) union(dst []byte, n *node, v any) ([]byte, error) {
	mark := len(dst)
	if v == nil {
		if i := n.nullIndex(); i >= 0 {
			return appendLong(dst, int64(i)), nil
		}
		return dst, violation("want one of %s, got null", branchList(n))
	}
	var wrapErr error
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, inner := range m {
			if i := n.branchByName(k); i >= 0 {
				out, err := e.encode(appendLong(dst, int64(i)), n.branches[i], inner)
				if err == nil {
					return out, nil
				}
				wrapErr = err
				dst = dst[:mark]
			}
		}
	}
	if i := nativeBranch(n, v); i >= 0 {
		return e.encode(appendLong(dst, int64(i)), n.branches[i], v)
	}
	chosen, tried := -1, 0
	var firstErr error
	var scratch []byte
	for i, b := range n.branches {
		if b.kind == kindNull {
			continue
		}
		tried++
		if chosen < 0 {
			out, err := e.encode(appendLong(dst, int64(i)), b, v)
			if err != nil {
				dst = dst[:mark]
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			chosen, dst = i, out
			continue
		}
		if _, err := e.encode(scratch[:0], b, v); err == nil {
			a, c := n.branches[chosen].typeName(), b.typeName()
			return dst[:mark], violation("ambiguous: the value fits both %s and %s of the union; write it as {%q: ...} or {%q: ...}", a, c, a, c)
		}
	}
	switch {
	case chosen >= 0:
		return dst, nil
	case wrapErr != nil:
		return dst, wrapErr
	case tried == 1:
		return dst, firstErr // a nullable union: the one branch's reason is the useful one
	default:
		return dst, violation("want one of %s, got %s", branchList(n), describeValue(v))
	}
}

// nativeBranch returns the branch whose Decode type is exactly v's Go type
// (int32 for int, int64 for long, float32 for float, float64 for double),
// or -1. It lets values from Decode go back through Encode into the branch
// they came from, where a JSON number would be ambiguous in ["int","long"].
func nativeBranch(n *node, v any) int {
	var k kind
	switch v.(type) {
	case int32:
		k = kindInt
	case int64:
		k = kindLong
	case float32:
		k = kindFloat
	case float64:
		k = kindDouble
	default:
		return -1
	}
	for i, b := range n.branches {
		if b.kind == k && b.logical == logicalNone {
			return i
		}
	}
	return -1
}

// branchByName returns the index of the branch a union wrapper key names, or -1.
func (n *node) branchByName(key string) int {
	found := -1
	for i, b := range n.branches {
		switch {
		case b.typeName() == key:
			return i
		case b.kind.named() && simpleName(b.name) == key:
			if found >= 0 {
				return -1 // ambiguous simple name; the full name is needed
			}
			found = i
		}
	}
	return found
}

func branchList(n *node) string {
	names := make([]string, len(n.branches))
	for i, b := range n.branches {
		names[i] = b.typeName()
	}
	return "[" + strings.Join(names, ", ") + "]"
}

// wrapIfAmbiguous wraps the JSON of a union value, dst[start:], as
// {"branch": value} when FromJSON would not read it back as branch index of
// union u (see FromJSON for the rules this mirrors).
func wrapIfAmbiguous(dst []byte, start int, u *node, index int) []byte {
	seg := dst[start:]
	if !mayBeMisread(u, index, seg) {
		return dst
	}
	if v, err := parseJSON(seg); err == nil {
		if bin, err := (encoder{}).union(nil, u, v); err == nil {
			got := input{buf: bin}
			if i, err := got.long(); err == nil && int(i) == index {
				return dst
			}
		}
	}
	wrapped := append([]byte{'{'}, appendJSONString(nil, u.branches[index].typeName())...)
	wrapped = append(wrapped, ':')
	wrapped = append(wrapped, seg...)
	wrapped = append(wrapped, '}')
	return append(dst[:start], wrapped...)
}

// mayBeMisread is a cheap test that rules out most union values before the
// full check: seg can only be misread if another branch accepts its kind of
// JSON value, or if it is an object whose first key names a branch (the
// wrapper form). Without it, values nested through unions (a linked list)
// would be re-parsed at every level, in quadratic time.
func mayBeMisread(u *node, index int, seg []byte) bool {
	kind := seg[0]
	if kind == '{' && len(seg) > 2 && seg[1] == '"' {
		p := jsonParser{data: seg, pos: 1}
		if key, err := p.string(); err == nil && u.branchByName(key) >= 0 {
			return true
		}
	}
	for i, b := range u.branches {
		if i != index && acceptsJSON(b, kind) {
			return true
		}
	}
	return false
}

// acceptsJSON reports whether FromJSON may accept, for type b, a JSON value
// starting with the byte first. It may say yes too often, never too rarely.
func acceptsJSON(b *node, first byte) bool {
	switch {
	case first == 'n':
		return b.kind == kindNull
	case first == 't' || first == 'f':
		return b.kind == kindBoolean
	case first == '[':
		return b.kind == kindArray
	case first == '{':
		return b.kind == kindRecord || b.kind == kindMap || b.logical == logicalDuration
	case first == '"':
		return b.kind != kindNull && b.kind != kindBoolean && b.kind != kindArray && b.kind != kindMap &&
			b.kind != kindRecord && b.logical != logicalDuration &&
			((b.kind != kindInt && b.kind != kindLong) || b.logical != logicalNone)
	default: // a number
		switch b.kind {
		case kindInt, kindLong, kindFloat, kindDouble:
			return true
		}
		return b.logical == logicalDecimal
	}
}
