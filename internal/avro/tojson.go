package avro

import (
	"encoding/base64"
	"math"
	"strconv"
)

// ToJSON decodes Avro binary written with this schema into natural JSON,
// the inverse of FromJSON: FromJSON(ToJSON(b)) gives b back for any b that
// FromJSON produced.
//
// Records are objects with their fields in schema order; bytes and fixed are
// base64; timestamps are RFC 3339 in UTC ("2023-10-27T10:00:00.123Z", with
// as many fraction digits as needed), dates "YYYY-MM-DD", times of day
// "HH:MM:SS.fff", except values these forms cannot write (the year 10000,
// a time of day past midnight), which are given as their numbers; NaN and
// infinities are "NaN", "Infinity" and "-Infinity".
//
// Decimals are JSON strings with exactly the schema's scale ("15.90"): a
// JSON number would be read as a float64 by JavaScript and by most JSON
// libraries, which cannot hold 15.9 or an 18-digit price exactly. Clients
// that want numbers can convert; the reverse is not possible.
//
// A union value is written plain, unless FromJSON would read the plain form
// as another branch (5 in ["int","long"], an object that looks like a
// {"branch": value} wrapper): then it is wrapped as {"long": 5}.
//
// Errors are *DecodeError, as for Decode. Safe for concurrent use.
func (s *Schema) ToJSON(bin []byte) ([]byte, error) {
	return jsonWith(nil, s.self, bin)
}

func jsonWith(dst []byte, p *plan, bin []byte) ([]byte, error) {
	in := input{buf: bin}
	out, err := in.json(dst, p)
	if err != nil {
		return nil, finishPath(err)
	}
	if err := in.end(); err != nil {
		return nil, err
	}
	return out, nil
}

func (in *input) json(dst []byte, p *plan) ([]byte, error) {
	switch p.op {
	case opNull:
		return append(dst, "null"...), nil
	case opBoolean:
		b, err := in.boolean()
		return strconv.AppendBool(dst, b), err
	case opInt:
		v, err := in.int()
		switch p.logical {
		case logicalDate:
			return appendTimeJSON(dst, p.logical, int64(v)), err
		case logicalTimeMillis:
			return appendTimeOfDayJSON(dst, p.logical, int64(v)), err
		}
		return strconv.AppendInt(dst, int64(v), 10), err
	case opLong:
		v, err := in.promotedLong(p)
		switch p.logical {
		case logicalNone:
			return strconv.AppendInt(dst, v, 10), err
		case logicalTimeMicros:
			return appendTimeOfDayJSON(dst, p.logical, v), err
		default:
			return appendTimeJSON(dst, p.logical, v), err
		}
	case opFloat:
		f, err := in.promotedFloat(p)
		return appendFloatJSON(dst, float64(float32(f)), 32), err
	case opDouble:
		f, err := in.promotedFloat(p)
		return appendFloatJSON(dst, f, 64), err
	case opBytes:
		b, err := in.bytes()
		if err != nil {
			return dst, err
		}
		if p.logical == logicalDecimal {
			return appendDecimalJSON(dst, decimalFromTwosComplement(b, p.r.scale)), nil
		}
		return appendBase64JSON(dst, b), nil
	case opString:
		b, err := in.text()
		if err != nil {
			return dst, err
		}
		return appendJSONString(dst, string(b)), nil
	case opFixed:
		b, err := in.next(p.w.size)
		if err != nil {
			return dst, err
		}
		switch p.logical {
		case logicalDecimal:
			return appendDecimalJSON(dst, decimalFromTwosComplement(b, p.r.scale)), nil
		case logicalDuration:
			return appendDurationJSON(dst, durationFromBinary(b)), nil
		}
		return appendBase64JSON(dst, b), nil
	case opEnum:
		i, err := in.enumIndex(p)
		if err != nil {
			return dst, err
		}
		return appendJSONString(dst, p.r.symbols[i]), nil
	case opArray, opMap:
		return in.jsonBlocks(dst, p)
	case opRecord:
		return in.jsonRecord(dst, p)
	case opWriterUnion:
		b, err := in.writerBranch(p)
		if err != nil {
			return dst, err
		}
		return in.json(dst, b)
	case opReaderUnion:
		start := len(dst)
		dst, err := in.json(dst, p.inner)
		if err != nil {
			return dst, err
		}
		return wrapIfAmbiguous(dst, start, p.r, p.index), nil
	default:
		return dst, in.fail(p.fail)
	}
}

// jsonBlocks writes an array as a JSON array, a map as a JSON object.
func (in *input) jsonBlocks(dst []byte, p *plan) ([]byte, error) {
	if err := in.enter(); err != nil {
		return dst, err
	}
	opening, closing := byte('['), byte(']')
	if p.op == opMap {
		opening, closing = '{', '}'
	}
	dst = append(dst, opening)
	for i := 0; ; {
		n, err := in.blockCount(p.minItem)
		if err != nil {
			return dst, err
		}
		if n == 0 {
			break
		}
		for ; n > 0; n-- {
			key, err := in.item(p)
			if err != nil {
				return dst, err
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			if p.op == opMap {
				dst = appendJSONString(dst, string(key))
				dst = append(dst, ':')
			}
			if dst, err = in.json(dst, p.elem); err != nil {
				return dst, withPath(err, itemSeg(p, i, key))
			}
			i++
		}
	}
	in.depth--
	return append(dst, closing), nil
}

func (in *input) jsonRecord(dst []byte, p *plan) ([]byte, error) {
	if err := in.enter(); err != nil {
		return dst, err
	}
	dst = append(dst, '{')
	mark := len(dst)
	var spans [][2]int
	if !p.ordered {
		spans = make([][2]int, p.nfields)
	}
	comma := false
	for i := range p.steps {
		st := &p.steps[i]
		if st.plan == nil {
			if err := in.skip(st.skip); err != nil {
				return dst, err
			}
			continue
		}
		start := len(dst)
		dst = appendMember(dst, st.name, comma && p.ordered)
		comma = true
		var err error
		if dst, err = in.json(dst, st.plan); err != nil {
			return dst, withPath(err, st.name)
		}
		if spans != nil {
			spans[st.index] = [2]int{start, len(dst)}
		}
	}
	for _, f := range p.fills {
		start := len(dst)
		dst = appendMember(dst, f.name, comma && p.ordered)
		comma = true
		dst = append(dst, f.json...)
		if spans != nil {
			spans[f.index] = [2]int{start, len(dst)}
		}
	}
	if spans != nil {
		dst = reorder(dst, mark, spans, ',')
	}
	in.depth--
	return append(dst, '}'), nil
}

// appendMember starts an object member: a comma if one is due, the key, a colon.
func appendMember(dst []byte, name string, comma bool) []byte {
	if comma {
		dst = append(dst, ',')
	}
	dst = appendJSONString(dst, name)
	return append(dst, ':')
}

// reorder rewrites dst[mark:], which holds the spans in the order they were
// written, as the spans in slice order joined by sep (0 for none).
func reorder(dst []byte, mark int, spans [][2]int, sep byte) []byte {
	end := len(dst)
	for i, s := range spans {
		if i > 0 && sep != 0 {
			dst = append(dst, sep)
		}
		dst = append(dst, dst[s[0]:s[1]]...)
	}
	n := copy(dst[mark:], dst[end:])
	return dst[:mark+n]
}

// appendFloatJSON writes a float like encoding/json (the shortest text that
// reads back as the same value), with NaN and infinities as strings.
func appendFloatJSON(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' { // 1e-07 → 1e-7
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

func appendDecimalJSON(dst []byte, d Decimal) []byte {
	dst = append(dst, '"')
	dst = d.appendText(dst)
	return append(dst, '"')
}

func appendBase64JSON(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendJSONString writes s as a JSON string, escaping only quotes,
// backslashes and control characters. s must be valid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
