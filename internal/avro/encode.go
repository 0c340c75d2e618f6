package avro

import (
	"encoding/base64"
	"slices"
	"strings"
	"unicode/utf8"
)

// FromJSON validates natural JSON (CONTRACT.md §2) against the schema and
// returns its Avro binary encoding.
//
// The rules, type by type:
//   - record: a JSON object. A missing field takes its default, or is an
//     error without one; an unknown field is an error.
//   - null, boolean, string: the JSON value. Strings must be valid UTF-8; a
//     uuid string must have the 8-4-4-4-12 hex form.
//   - int, long: an integral JSON number within range (2.5 and 1e10 for an
//     int are errors; 2.0 and 1e2 are accepted).
//   - float, double: a JSON number (rounded to the nearest float or double,
//     an overflow is an error), or "NaN", "Infinity", "-Infinity".
//   - bytes, fixed: a base64 string (standard alphabet, padding optional);
//     a fixed must decode to exactly its size.
//   - enum: a symbol string.
//   - array, map: a JSON array, a JSON object. Map entries are written in
//     key order, so equal JSON always gives equal bytes.
//   - decimal (bytes or fixed): a JSON number or a numeric string such as
//     "15.99" or "-1.5e2", stored exactly: a value with more digits after the
//     point than the scale (other than trailing zeros) or more significant
//     digits than the precision is an error, never rounded.
//   - timestamp-millis, timestamp-micros: RFC 3339 text with any offset (the
//     instant is stored) or an integral number of ms/µs since the epoch;
//     text more precise than the type is an error.
//   - local-timestamp-millis/-micros: "2006-01-02T15:04:05.999999" without
//     an offset, or a number.
//   - date: "YYYY-MM-DD" or a number of days since 1970-01-01.
//   - time-millis, time-micros: "HH:MM:SS[.fraction]" or a number.
//   - duration: {"months": m, "days": d, "milliseconds": ms}.
//   - union: null selects the null branch. An object with exactly one key
//     that names a branch ("string", "long", "array", "map", or a named
//     type's full name, or its simple name when no other branch shares it)
//     and whose value fits that branch is that branch, as in Avro's JSON
//     encoding. Otherwise the plain value is tried against every branch: if
//     exactly one branch accepts it, that branch is used; if several do
//     (5 for ["int","long"], "abcd" for ["string","bytes"]) it is an error
//     that asks for the {"branch": value} form.
//
// Errors: a *ValidationError (errors.Is ErrSchemaViolation) naming the path
// of the offending value, or an error wrapping ErrInvalidJSON when data is
// not well-formed JSON. Safe for concurrent use.
func (s *Schema) FromJSON(data []byte) ([]byte, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	bin, err := encoder{}.encode(nil, s.root, v)
	if err != nil {
		return nil, finishPath(err)
	}
	return bin, nil
}

// Encode returns the Avro binary encoding of a native Go value. It accepts
// what Decode returns, and everything parsed natural JSON is made of (nil,
// bool, json.Number, string, []any, map[string]any), with the FromJSON rules.
// In detail:
//   - int, long: any Go integer type, range-checked; float, double:
//     float32, float64 or an integer;
//   - bytes, fixed: []byte (or a base64 string);
//   - record: map[string]any; map: map[string]any; array: []any;
//   - decimal: Decimal, *big.Rat, a Go integer, or a numeric string or
//     json.Number (never a float64, which cannot hold most decimals exactly);
//   - timestamps, local timestamps: time.Time (a local timestamp uses its
//     wall clock); date: time.Time at midnight UTC; time-millis/-micros:
//     time.Duration; duration: Duration; uuid: string;
//   - union: an int32, int64, float32 or float64 goes to the int, long,
//     float or double branch; other values follow the FromJSON rules. So
//     Encode(Decode(b)) gives b back, except for the values of a union that
//     holds both a record and a map, or both a string and an enum, which
//     decode to the same Go type: give those as {"branch": value}.
//
// A time.Time or time.Duration more precise than the type stores is an
// error, as in FromJSON: nothing is silently truncated. Errors are
// *ValidationError. Safe for concurrent use.
func (s *Schema) Encode(v any) ([]byte, error) {
	bin, err := encoder{}.encode(nil, s.root, v)
	if err != nil {
		return nil, finishPath(err)
	}
	return bin, nil
}

// encodeDefault encodes a field default as the specification defines
// defaults: bytes and fixed as strings of code points 0-255, a union by the
// first branch the value fits, and logical types as their underlying type.
func encodeDefault(dst []byte, n *node, v any) ([]byte, error) {
	bin, err := encoder{defaults: true}.encode(dst, n, v)
	return bin, finishPath(err)
}

// encoder converts natural JSON or native values to Avro binary.
type encoder struct {
	defaults bool // field-default rules instead of natural JSON
}

func mismatch(n *node, v any) error {
	return violation("want %s, got %s", n.describe(), describeValue(v))
}

func (e encoder) encode(dst []byte, n *node, v any) ([]byte, error) {
	if n.logical != logicalNone && !e.defaults {
		return e.logicalValue(dst, n, v)
	}
	switch n.kind {
	case kindNull:
		if v != nil {
			return dst, mismatch(n, v)
		}
		return dst, nil
	case kindBoolean:
		b, ok := v.(bool)
		if !ok {
			return dst, mismatch(n, v)
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case kindInt, kindLong:
		bits := 32
		if n.kind == kindLong {
			bits = 64
		}
		i, err := intValue(v, bits)
		if err != nil {
			return dst, wantGot(n.kind.String(), v, err)
		}
		return appendLong(dst, i), nil
	case kindFloat:
		f, err := floatValue(v, 32)
		if err != nil {
			return dst, wantGot("float", v, err)
		}
		return appendFloat(dst, float32(f)), nil
	case kindDouble:
		f, err := floatValue(v, 64)
		if err != nil {
			return dst, wantGot("double", v, err)
		}
		return appendDouble(dst, f), nil
	case kindBytes:
		b, ok := e.bytesValue(v)
		if !ok {
			return dst, mismatch(n, v)
		}
		return appendBytes(dst, b), nil
	case kindFixed:
		b, ok := e.bytesValue(v)
		if !ok {
			return dst, mismatch(n, v)
		}
		if len(b) != n.size {
			return dst, violation("want %d bytes for fixed %s, got %d", n.size, n.name, len(b))
		}
		return append(dst, b...), nil
	case kindString:
		s, ok := v.(string)
		if !ok {
			return dst, mismatch(n, v)
		}
		if !utf8.ValidString(s) {
			return dst, violation("invalid UTF-8 in string")
		}
		return appendString(dst, s), nil
	case kindEnum:
		s, ok := v.(string)
		if !ok {
			return dst, mismatch(n, v)
		}
		i, ok := n.symbolIndex[s]
		if !ok {
			return dst, violation("want a symbol of enum %s, got %q", n.name, s)
		}
		return appendLong(dst, int64(i)), nil
	case kindArray:
		return e.array(dst, n, v)
	case kindMap:
		return e.mapValue(dst, n, v)
	case kindRecord:
		return e.record(dst, n, v)
	case kindUnion:
		if e.defaults {
			return e.defaultUnion(dst, n, v)
		}
		return e.union(dst, n, v)
	}
	return dst, violation("unsupported type %s", n.kind)
}

func (e encoder) array(dst []byte, n *node, v any) ([]byte, error) {
	items, ok := v.([]any)
	if !ok {
		return dst, mismatch(n, v)
	}
	if len(items) > 0 {
		dst = appendLong(dst, int64(len(items)))
		for i, item := range items {
			var err error
			if dst, err = e.encode(dst, n.items, item); err != nil {
				return dst, withPath(err, indexSeg(i))
			}
		}
	}
	return append(dst, 0), nil
}

func (e encoder) mapValue(dst []byte, n *node, v any) ([]byte, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return dst, mismatch(n, v)
	}
	if len(m) > 0 {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = appendLong(dst, int64(len(keys)))
		for _, k := range keys {
			if !utf8.ValidString(k) {
				return dst, violationAt(keySeg(k), "invalid UTF-8 in map key")
			}
			dst = appendString(dst, k)
			var err error
			if dst, err = e.encode(dst, n.items, m[k]); err != nil {
				return dst, withPath(err, keySeg(k))
			}
		}
	}
	return append(dst, 0), nil
}

func (e encoder) record(dst []byte, n *node, v any) ([]byte, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return dst, mismatch(n, v)
	}
	matched := 0
	for _, f := range n.fields {
		fv, present := m[f.name]
		var err error
		switch {
		case present:
			matched++
			dst, err = e.encode(dst, f.typ, fv)
		case !f.hasDefault:
			err = violation("required field missing")
		case e.defaults:
			// A record default may leave out fields that have defaults.
			dst, err = e.encode(dst, f.typ, f.defaultJSON)
		default:
			dst = append(dst, f.defaultBin...)
		}
		if err != nil {
			return dst, withPath(err, f.name)
		}
	}
	if matched < len(m) {
		var unknown []string
		for k := range m {
			if _, ok := n.fieldIndex[k]; !ok {
				unknown = append(unknown, k)
			}
		}
		slices.Sort(unknown)
		return dst, violationAt(fieldSeg(unknown[0]), "unknown field")
	}
	return dst, nil
}

// bytesValue accepts []byte, or a string: base64 in natural JSON, code
// points 0-255 in defaults.
func (e encoder) bytesValue(v any) ([]byte, bool) {
	switch v := v.(type) {
	case []byte:
		return v, true
	case string:
		if e.defaults {
			b := make([]byte, 0, len(v))
			for _, r := range v {
				if r > 0xff {
					return nil, false
				}
				b = append(b, byte(r))
			}
			return b, true
		}
		return decodeBase64(v)
	}
	return nil, false
}

func decodeBase64(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") { // which the standard decoder would skip
		return nil, false
	}
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	return b, err == nil
}
