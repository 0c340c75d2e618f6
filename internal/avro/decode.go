package avro

import (
	"fmt"
	"time"
)

// Decode decodes Avro binary written with this schema into native Go
// values:
//
//	null → nil              boolean → bool          int → int32
//	long → int64            float → float32         double → float64
//	bytes, fixed → []byte   string → string         enum → string (the symbol)
//	array → []any           map, record → map[string]any
//	union → the branch's value, unwrapped (nil for null)
//	decimal → Decimal       uuid → string           duration → Duration
//	date, timestamp-*, local-timestamp-* → time.Time in UTC (midnight for a date)
//	time-millis, time-micros → time.Duration since midnight
//
// The result never aliases bin. Encode accepts every value Decode returns.
// For natural JSON use ToJSON, which also keeps field order and union
// branches. Errors are *DecodeError: truncated or trailing bytes, a bad
// union index or enum index, invalid UTF-8 in a string. Safe for concurrent use.
func (s *Schema) Decode(bin []byte) (any, error) {
	return decodeWith(s.self, bin)
}

func decodeWith(p *plan, bin []byte) (any, error) {
	in := input{buf: bin}
	v, err := in.decode(p)
	if err != nil {
		return nil, finishPath(err)
	}
	if err := in.end(); err != nil {
		return nil, err
	}
	return v, nil
}

// end fails when bytes are left over after the value.
func (in *input) end() error {
	if in.pos != len(in.buf) {
		return in.fail(fmt.Sprintf("%d bytes left after the value", len(in.buf)-in.pos))
	}
	return nil
}

func (in *input) decode(p *plan) (any, error) {
	switch p.op {
	case opNull:
		return nil, nil
	case opBoolean:
		b, err := in.boolean()
		if err != nil {
			return nil, err
		}
		return b, nil
	case opInt:
		v, err := in.int()
		if err != nil {
			return nil, err
		}
		switch p.logical {
		case logicalDate:
			return time.Unix(int64(v)*86400, 0).UTC(), nil
		case logicalTimeMillis:
			return time.Duration(v) * time.Millisecond, nil
		}
		return v, nil
	case opLong:
		v, err := in.promotedLong(p)
		if err != nil {
			return nil, err
		}
		switch p.logical {
		case logicalNone:
			return v, nil
		case logicalTimeMicros:
			return time.Duration(v) * time.Microsecond, nil
		default: // timestamps and local timestamps
			return ticksToTime(v, nsPerTick(p.logical)), nil
		}
	case opFloat:
		f, err := in.promotedFloat(p)
		if err != nil {
			return nil, err
		}
		return float32(f), nil
	case opDouble:
		return in.promotedFloat(p)
	case opBytes:
		b, err := in.bytes()
		if err != nil {
			return nil, err
		}
		if p.logical == logicalDecimal {
			return decimalFromTwosComplement(b, p.r.scale), nil
		}
		return append([]byte{}, b...), nil
	case opString:
		b, err := in.text()
		if err != nil {
			return nil, err
		}
		return string(b), nil
	case opFixed:
		b, err := in.next(p.w.size)
		if err != nil {
			return nil, err
		}
		switch p.logical {
		case logicalDecimal:
			return decimalFromTwosComplement(b, p.r.scale), nil
		case logicalDuration:
			return durationFromBinary(b), nil
		}
		return append([]byte{}, b...), nil
	case opEnum:
		i, err := in.enumIndex(p)
		if err != nil {
			return nil, err
		}
		return p.r.symbols[i], nil
	case opArray, opMap:
		return in.decodeBlocks(p)
	case opRecord:
		return in.decodeRecord(p)
	case opWriterUnion:
		b, err := in.writerBranch(p)
		if err != nil {
			return nil, err
		}
		return in.decode(b)
	case opReaderUnion:
		return in.decode(p.inner)
	default:
		return nil, in.fail(p.fail)
	}
}

// promotedLong reads an int or a long.
func (in *input) promotedLong(p *plan) (int64, error) {
	if p.from == kindInt {
		v, err := in.int()
		return int64(v), err
	}
	return in.long()
}

// promotedFloat reads an int, long, float or double as a float64.
func (in *input) promotedFloat(p *plan) (float64, error) {
	switch p.from {
	case kindInt, kindLong:
		v, err := in.promotedLong(p)
		return float64(v), err
	case kindFloat:
		f, err := in.float()
		return float64(f), err
	default:
		return in.double()
	}
}

// enumIndex reads a writer symbol and maps it to the reader's.
func (in *input) enumIndex(p *plan) (int, error) {
	at := in.pos
	i, err := in.int()
	if err != nil {
		return 0, err
	}
	if i < 0 || int(i) >= len(p.enumMap) {
		in.pos = at
		return 0, in.fail("enum index out of range")
	}
	j := p.enumMap[i]
	if j < 0 {
		in.pos = at
		return 0, in.fail(fmt.Sprintf("symbol %s is not in the reader's enum %s, which has no default", p.w.symbols[i], p.r.name))
	}
	return j, nil
}

// decodeBlocks decodes an array into []any or a map into map[string]any.
func (in *input) decodeBlocks(p *plan) (any, error) {
	if err := in.enter(); err != nil {
		return nil, err
	}
	var items []any
	var m map[string]any
	if p.op == opMap {
		m = make(map[string]any)
	}
	for i := 0; ; {
		n, err := in.blockCount(p.minItem)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		if m == nil && items == nil {
			items = make([]any, 0, n)
		}
		for ; n > 0; n-- {
			key, err := in.item(p)
			if err != nil {
				return nil, err
			}
			v, err := in.decode(p.elem)
			if err != nil {
				return nil, withPath(err, itemSeg(p, i, key))
			}
			if m != nil {
				m[string(key)] = v
			} else {
				items = append(items, v)
			}
			i++
		}
	}
	in.depth--
	if m != nil {
		return m, nil
	}
	if items == nil {
		items = []any{}
	}
	return items, nil
}

func (in *input) decodeRecord(p *plan) (any, error) {
	if err := in.enter(); err != nil {
		return nil, err
	}
	m := make(map[string]any, p.nfields)
	for i := range p.steps {
		st := &p.steps[i]
		if st.plan == nil {
			if err := in.skip(st.skip); err != nil {
				return nil, err
			}
			continue
		}
		v, err := in.decode(st.plan)
		if err != nil {
			return nil, withPath(err, st.name)
		}
		m[st.name] = v
	}
	for _, f := range p.fills {
		if f.shared {
			m[f.name] = f.value
			continue
		}
		v, err := decodeWith(f.plan, f.bin)
		if err != nil {
			return nil, err
		}
		m[f.name] = v
	}
	in.depth--
	return m, nil
}
