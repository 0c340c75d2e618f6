package avro

import (
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// Avro binary encoding primitives (specification, "Binary Encoding").

func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63) // zig-zag
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// appendFloat writes a float as Java's floatToIntBits does, as the
// specification requires: every NaN becomes the canonical 0x7fc00000.
func appendFloat(dst []byte, f float32) []byte {
	bits := math.Float32bits(f)
	if f != f {
		bits = 0x7fc00000
	}
	return binary.LittleEndian.AppendUint32(dst, bits)
}

// appendDouble writes a double as Java's doubleToLongBits does: every NaN
// becomes the canonical 0x7ff8000000000000 (Go's math.NaN() is not it).
func appendDouble(dst []byte, f float64) []byte {
	bits := math.Float64bits(f)
	if f != f {
		bits = 0x7ff8000000000000
	}
	return binary.LittleEndian.AppendUint64(dst, bits)
}

func appendBytes(dst, b []byte) []byte {
	return append(appendLong(dst, int64(len(b))), b...)
}

func appendString(dst []byte, s string) []byte {
	return append(appendLong(dst, int64(len(s))), s...)
}

// input is a cursor over Avro binary. Its methods fail with *DecodeError.
type input struct {
	buf   []byte
	pos   int
	depth int
	items int64 // array and map items announced so far, see blockCount
}

func (in *input) fail(msg string) error {
	return &DecodeError{Offset: in.pos, Message: msg}
}

func (in *input) long() (int64, error) {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if in.pos >= len(in.buf) {
			return 0, in.fail("unexpected end of data")
		}
		c := in.buf[in.pos]
		in.pos++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if shift == 63 && c > 1 {
				break
			}
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, in.fail("varint overflows a long")
}

func (in *input) int() (int32, error) {
	v, err := in.long()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, in.fail("value overflows an int")
	}
	return int32(v), nil
}

func (in *input) boolean() (bool, error) {
	if in.pos >= len(in.buf) {
		return false, in.fail("unexpected end of data")
	}
	c := in.buf[in.pos]
	if c > 1 {
		return false, in.fail("invalid boolean byte")
	}
	in.pos++
	return c == 1, nil
}

// next returns the following n bytes without copying them.
func (in *input) next(n int) ([]byte, error) {
	if n < 0 || n > len(in.buf)-in.pos {
		return nil, in.fail("unexpected end of data")
	}
	b := in.buf[in.pos : in.pos+n]
	in.pos += n
	return b, nil
}

func (in *input) float() (float32, error) {
	b, err := in.next(4)
	if err != nil {
		return 0, err
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
}

func (in *input) double() (float64, error) {
	b, err := in.next(8)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
}

// bytes reads a length-prefixed byte string, without copying it.
func (in *input) bytes() ([]byte, error) {
	n, err := in.long()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(len(in.buf)-in.pos) {
		return nil, in.fail("byte length out of range")
	}
	return in.next(int(n))
}

// text reads a length-prefixed string that must be valid UTF-8.
func (in *input) text() ([]byte, error) {
	start := in.pos
	b, err := in.bytes()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		in.pos = start
		return nil, in.fail("string is not valid UTF-8")
	}
	return b, nil
}

// blockCount reads the item count of the next array or map block; 0 ends
// the sequence. A negative count is followed by the block's size in bytes,
// which is read and ignored.
func (in *input) blockCount(minItemSize int) (int, error) {
	at := in.pos
	n, err := in.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			in.pos = at
			return 0, in.fail("invalid block count")
		}
		n = -n
		if _, err := in.long(); err != nil {
			return 0, err
		}
	}
	if err := in.spend(n, minItemSize); err != nil {
		in.pos = at
		return 0, err
	}
	return int(n), nil
}

// spend checks a block's item count against the bytes left (at least
// minItemSize each) and against a budget for the whole input, so that a
// hostile count can neither make us allocate nor loop without end.
func (in *input) spend(n int64, minItemSize int) error {
	in.items += n
	if (minItemSize > 0 && n > int64(len(in.buf)-in.pos)/int64(minItemSize)) ||
		in.items > int64(len(in.buf))+maxZeroSizeItems {
		return in.fail("block count exceeds the data")
	}
	return nil
}

// maxZeroSizeItems bounds how many items that take no bytes (null, an empty
// record) one input may hold: the data length cannot bound their count.
const maxZeroSizeItems = 1 << 20

func (in *input) enter() error {
	in.depth++
	if in.depth > maxDepth {
		return in.fail("data nested too deeply")
	}
	return nil
}

// minSize is the fewest bytes a value of the type occupies, used to bound
// block counts.
func minSize(n *node) int {
	return minSizeSeen(n, make(map[*node]bool))
}

func minSizeSeen(n *node, seen map[*node]bool) int {
	switch n.kind {
	case kindNull:
		return 0
	case kindFloat:
		return 4
	case kindDouble:
		return 8
	case kindFixed:
		return n.size
	case kindRecord:
		if seen[n] {
			return 0
		}
		seen[n] = true
		total := 0
		for _, f := range n.fields {
			total += minSizeSeen(f.typ, seen)
		}
		delete(seen, n)
		return total
	default: // boolean, int, long, bytes, string, enum, array, map, union: at least one byte
		return 1
	}
}

// skip advances past one value of type n.
func (in *input) skip(n *node) error {
	switch n.kind {
	case kindNull:
		return nil
	case kindBoolean:
		_, err := in.boolean()
		return err
	case kindInt, kindEnum:
		_, err := in.int()
		return err
	case kindLong:
		_, err := in.long()
		return err
	case kindFloat:
		_, err := in.next(4)
		return err
	case kindDouble:
		_, err := in.next(8)
		return err
	case kindBytes, kindString:
		_, err := in.bytes()
		return err
	case kindFixed:
		_, err := in.next(n.size)
		return err
	case kindRecord:
		if err := in.enter(); err != nil {
			return err
		}
		for _, f := range n.fields {
			if err := in.skip(f.typ); err != nil {
				return err
			}
		}
		in.depth--
		return nil
	case kindArray, kindMap:
		return in.skipBlocks(n)
	case kindUnion:
		i, err := in.unionIndex(len(n.branches))
		if err != nil {
			return err
		}
		return in.skip(n.branches[i])
	}
	return in.fail("unknown type")
}

func (in *input) skipBlocks(n *node) error {
	if err := in.enter(); err != nil {
		return err
	}
	for {
		at := in.pos
		count, err := in.long()
		switch {
		case err != nil:
			return err
		case count == 0:
			in.depth--
			return nil
		case count < 0: // a block that states its size: jump over it
			size, err := in.long()
			if err != nil {
				return err
			}
			if size < 0 || size > int64(len(in.buf)-in.pos) {
				return in.fail("invalid block size")
			}
			in.pos += int(size)
			continue
		}
		if err := in.spend(count, 0); err != nil {
			in.pos = at
			return err
		}
		for range count {
			if n.kind == kindMap {
				if _, err := in.bytes(); err != nil {
					return err
				}
			}
			if err := in.skip(n.items); err != nil {
				return err
			}
		}
	}
}

func (in *input) unionIndex(branches int) (int, error) {
	at := in.pos
	i, err := in.long()
	if err != nil {
		return 0, err
	}
	if i < 0 || i >= int64(branches) {
		in.pos = at
		return 0, in.fail("union branch index out of range")
	}
	return int(i), nil
}

// writerBranch reads a writer union's branch index and returns the plan for
// that branch.
func (in *input) writerBranch(p *plan) (*plan, error) {
	i, err := in.unionIndex(len(p.w.branches))
	if err != nil {
		return nil, err
	}
	return p.branches[i], nil
}

// itemSeg is the path segment of an array item or map entry.
func itemSeg(p *plan, i int, key []byte) string {
	if p.op == opMap {
		return keySeg(string(key))
	}
	return indexSeg(i)
}

// item reads the key of a map entry (nil for an array item), for the
// array and map loops of the three plan interpreters.
func (in *input) item(p *plan) ([]byte, error) {
	if p.op != opMap {
		return nil, nil
	}
	return in.text()
}
