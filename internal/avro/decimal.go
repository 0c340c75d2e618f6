package avro

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Decimal is an exact decimal number, unscaled × 10^-scale: the native value
// of the decimal logical type. The zero value is 0 with scale 0. Decimals are
// immutable values, safe to copy and to share between goroutines.
type Decimal struct {
	small int64    // the unscaled value, when big is nil
	big   *big.Int // the unscaled value, when it does not fit an int64; never modified
	scale int
}

// NewDecimal returns unscaled × 10^-scale. It copies unscaled. It panics if
// scale is negative.
func NewDecimal(unscaled *big.Int, scale int) Decimal {
	if scale < 0 {
		panic("avro: negative decimal scale")
	}
	if unscaled.IsInt64() {
		return Decimal{small: unscaled.Int64(), scale: scale}
	}
	return Decimal{big: new(big.Int).Set(unscaled), scale: scale}
}

// NewDecimalInt64 returns unscaled × 10^-scale. It panics if scale is negative.
func NewDecimalInt64(unscaled int64, scale int) Decimal {
	if scale < 0 {
		panic("avro: negative decimal scale")
	}
	return Decimal{small: unscaled, scale: scale}
}

// ParseDecimal parses a decimal number such as "15.99", "-0.5", "+7" or
// "1.5e3", exactly. The scale is the number of digits after the point,
// adjusted by the exponent ("15.90" has scale 2, "1.5e3" scale 0).
func ParseDecimal(s string) (Decimal, error) {
	t, ok := parseDecimalText(s)
	if !ok {
		return Decimal{}, fmt.Errorf("avro: invalid decimal %q", s)
	}
	scale := 0
	digits := t.digits
	if t.exp < 0 {
		scale = -t.exp
	} else if t.digits != "" {
		if t.exp > 1000 {
			return Decimal{}, fmt.Errorf("avro: decimal %q is too large", s)
		}
		digits += strings.Repeat("0", t.exp)
	}
	return decimalFromDigits(t.neg, digits, scale), nil
}

// Unscaled returns the unscaled integer value (a new big.Int).
func (d Decimal) Unscaled() *big.Int {
	if d.big != nil {
		return new(big.Int).Set(d.big)
	}
	return big.NewInt(d.small)
}

// Scale returns the number of digits after the decimal point.
func (d Decimal) Scale() int { return d.scale }

// Rat returns the value as a new big.Rat (goavro's native decimal type).
func (d Decimal) Rat() *big.Rat {
	return new(big.Rat).SetFrac(d.Unscaled(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.scale)), nil))
}

// Cmp compares the values of d and e (not their scales): -1, 0 or +1.
func (d Decimal) Cmp(e Decimal) int { return d.Rat().Cmp(e.Rat()) }

// String formats the value with exactly Scale digits after the point,
// e.g. "15.90", "-0.05", "42".
func (d Decimal) String() string { return string(d.appendText(nil)) }

// MarshalJSON encodes the decimal as a JSON string such as "15.90": exact,
// and safe from the float64 rounding of JSON numbers in JavaScript clients.
func (d Decimal) MarshalJSON() ([]byte, error) {
	b := append([]byte{'"'}, d.appendText(nil)...)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts a JSON number or a numeric string, exactly.
func (d *Decimal) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(data), `"`)
	v, err := ParseDecimal(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func (d Decimal) appendText(dst []byte) []byte {
	var digits []byte
	neg := false
	if d.big != nil {
		neg = d.big.Sign() < 0
		digits = new(big.Int).Abs(d.big).Append(nil, 10)
	} else {
		neg = d.small < 0
		u := uint64(d.small)
		if neg {
			u = -u
		}
		digits = strconv.AppendUint(nil, u, 10)
	}
	if neg {
		dst = append(dst, '-')
	}
	if d.scale == 0 {
		return append(dst, digits...)
	}
	if len(digits) <= d.scale {
		dst = append(dst, '0', '.')
		for range d.scale - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	point := len(digits) - d.scale
	dst = append(dst, digits[:point]...)
	dst = append(dst, '.')
	return append(dst, digits[point:]...)
}

// decimalText is a parsed decimal literal: (-1 if neg) × digits × 10^exp,
// with digits free of leading zeros ("" for zero).
type decimalText struct {
	neg    bool
	digits string
	exp    int
}

// parseDecimalText accepts [+-]digits[.digits][(e|E)[+-]digits], with at
// least one digit before or after the point. Exponents beyond ±1e9 are
// rejected rather than allowed to overflow.
func parseDecimalText(s string) (decimalText, bool) {
	var t decimalText
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		t.neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[intStart:i]
	frac := ""
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fracStart:i]
	}
	if intPart == "" && frac == "" {
		return t, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		expStart := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		e, err := strconv.Atoi(s[expStart:i])
		if err != nil || e > 1e9 {
			return t, false
		}
		if expNeg {
			e = -e
		}
		exp = e
	}
	if i != len(s) {
		return t, false
	}
	t.digits = strings.TrimLeft(intPart+frac, "0")
	t.exp = exp - len(frac)
	return t, true
}

// isInteger reports whether the value has no nonzero digit after the point.
func (t decimalText) isInteger() bool {
	return t.exp >= 0 || strings.TrimRight(t.digits[max(0, len(t.digits)+t.exp):], "0") == ""
}

// atScale returns the digits of the unscaled value at the given scale, or
// why the value cannot be represented exactly within precision.
func (t decimalText) atScale(scale, precision int) (string, error) {
	digits := t.digits
	if digits == "" {
		return "", nil
	}
	shift := t.exp + scale
	if shift < 0 {
		// Only zeros may be dropped: anything else would be rounding.
		drop := -shift
		if drop > len(digits) || strings.TrimRight(digits[len(digits)-drop:], "0") != "" {
			return "", fmt.Errorf("has more than %d digits after the decimal point", scale)
		}
		digits = digits[:len(digits)-drop]
	} else {
		if len(digits)+shift > precision {
			return "", tooManyDigits(precision)
		}
		digits += strings.Repeat("0", shift)
	}
	if len(digits) > precision {
		return "", tooManyDigits(precision)
	}
	return digits, nil
}

func tooManyDigits(precision int) error {
	return fmt.Errorf("has more than %d significant digits", precision)
}

func decimalFromDigits(neg bool, digits string, scale int) Decimal {
	if digits == "" {
		return Decimal{scale: scale}
	}
	if len(digits) <= 18 {
		v, _ := strconv.ParseInt(digits, 10, 64)
		if neg {
			v = -v
		}
		return Decimal{small: v, scale: scale}
	}
	b, _ := new(big.Int).SetString(digits, 10)
	if neg {
		b.Neg(b)
	}
	if b.IsInt64() {
		return Decimal{small: b.Int64(), scale: scale}
	}
	return Decimal{big: b, scale: scale}
}

// appendTwosComplement appends the minimal big-endian two's-complement form
// of the unscaled value, as bytes decimals store it (and as Java's
// BigInteger.toByteArray gives it).
func (d Decimal) appendTwosComplement(dst []byte) []byte {
	if d.big == nil {
		v := d.small
		n := 8
		// Drop leading bytes that only repeat the sign of the next one.
		for n > 1 {
			top, next := byte(v>>(8*(n-1))), byte(v>>(8*(n-2)))
			if (top != 0 || next >= 0x80) && (top != 0xff || next < 0x80) {
				break
			}
			n--
		}
		for i := n - 1; i >= 0; i-- {
			dst = append(dst, byte(v>>(8*i)))
		}
		return dst
	}
	if d.big.Sign() >= 0 {
		b := d.big.Bytes()
		if b[0]&0x80 != 0 {
			dst = append(dst, 0)
		}
		return append(dst, b...)
	}
	// For x < 0, x = ^y with y = -x-1 >= 0.
	y := new(big.Int).Neg(d.big)
	y.Sub(y, big.NewInt(1))
	b := y.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		dst = append(dst, 0xff)
	}
	for _, c := range b {
		dst = append(dst, ^c)
	}
	return dst
}

// appendFixedTwosComplement appends the unscaled value sign-extended to
// size bytes; false if it does not fit.
func (d Decimal) appendFixedTwosComplement(dst []byte, size int) ([]byte, bool) {
	start := len(dst)
	dst = d.appendTwosComplement(dst)
	n := len(dst) - start
	if n > size {
		return dst[:start], false
	}
	pad := byte(0)
	if dst[start]&0x80 != 0 {
		pad = 0xff
	}
	dst = append(dst, make([]byte, size-n)...)
	copy(dst[start+size-n:], dst[start:start+n])
	for i := start; i < start+size-n; i++ {
		dst[i] = pad
	}
	return dst, true
}

// decimalFromTwosComplement reads a big-endian two's-complement unscaled value.
func decimalFromTwosComplement(b []byte, scale int) Decimal {
	if len(b) == 0 {
		return Decimal{scale: scale}
	}
	if len(b) <= 8 {
		v := int64(int8(b[0]))
		for _, c := range b[1:] {
			v = v<<8 | int64(c)
		}
		return Decimal{small: v, scale: scale}
	}
	x := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if x.IsInt64() {
		return Decimal{small: x.Int64(), scale: scale}
	}
	return Decimal{big: x, scale: scale}
}

// digitCount returns the number of decimal digits of the unscaled value
// (0 for zero).
func (d Decimal) digitCount() int {
	if d.big != nil {
		return len(new(big.Int).Abs(d.big).String())
	}
	if d.small == 0 {
		return 0
	}
	u := uint64(d.small)
	if d.small < 0 {
		u = -u
	}
	var buf [20]byte
	return len(strconv.AppendUint(buf[:0], u, 10))
}
