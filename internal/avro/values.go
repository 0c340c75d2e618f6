package avro

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
)

// Conversions of natural JSON and native Go values into the numbers and
// durations that the encoder writes, and the messages that name a value.

// Reasons a value does not convert, appended to "want T, got V: ". The
// reason errWrongType, a value of the wrong JSON or Go type, adds nothing.
var (
	errWrongType    = errors.New("wrong type")
	errOutOfRange   = errors.New("out of range")
	errNotInteger   = errors.New("not an integer")
	errInexactFloat = errors.New("a binary float cannot hold most decimals exactly; use a string or json.Number")
)

// wantGot reports that v is not a valid what, and why.
func wantGot(what string, v any, reason error) error {
	if reason == errWrongType {
		return violation("want %s, got %s", what, describeValue(v))
	}
	return violation("want %s, got %s: %v", what, describeValue(v), reason)
}

// intValue converts an integral value to an int64 that fits bits.
func intValue(v any, bits int) (int64, error) {
	var i int64
	switch v := v.(type) {
	case json.Number:
		return exactInt(string(v), bits)
	case int:
		i = int64(v)
	case int8:
		i = int64(v)
	case int16:
		i = int64(v)
	case int32:
		i = int64(v)
	case int64:
		i = v
	case uint8:
		i = int64(v)
	case uint16:
		i = int64(v)
	case uint32:
		i = int64(v)
	case uint:
		if uint64(v) > math.MaxInt64 {
			return 0, errOutOfRange
		}
		i = int64(v)
	case uint64:
		if v > math.MaxInt64 {
			return 0, errOutOfRange
		}
		i = int64(v)
	default:
		return 0, errWrongType
	}
	if bits == 32 && (i < math.MinInt32 || i > math.MaxInt32) {
		return 0, errOutOfRange
	}
	return i, nil
}

// exactInt parses a JSON number that must be an integer fitting bits; 2.0
// and 1e2 are integers, 2.5 is not.
func exactInt(s string, bits int) (int64, error) {
	if i, err := strconv.ParseInt(s, 10, bits); err == nil {
		return i, nil
	}
	t, ok := parseDecimalText(s)
	switch {
	case !ok:
		return 0, errWrongType
	case !t.isInteger():
		return 0, errNotInteger
	}
	digits, err := t.atScale(0, 19)
	if err != nil {
		return 0, errOutOfRange
	}
	if digits == "" {
		return 0, nil
	}
	if t.neg {
		digits = "-" + digits
	}
	i, err := strconv.ParseInt(digits, 10, bits)
	if err != nil {
		return 0, errOutOfRange
	}
	return i, nil
}

// floatValue converts a number to a float64 that a float of bits holds.
func floatValue(v any, bits int) (float64, error) {
	var f float64
	switch v := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(v), bits); err != nil {
			return 0, errOutOfRange
		}
		return f, nil
	case string:
		switch v {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return 0, errWrongType
	case float32:
		return float64(v), nil
	case float64:
		f = v
	default:
		i, err := intValue(v, 64)
		if err != nil {
			return 0, errWrongType
		}
		f = float64(i)
	}
	if bits == 32 && !math.IsInf(f, 0) && math.IsInf(float64(float32(f)), 0) {
		return 0, errOutOfRange
	}
	return f, nil
}

// durationValue accepts a Duration or its natural JSON form,
// {"months": m, "days": d, "milliseconds": ms}, each an unsigned 32-bit integer.
func durationValue(v any) (Duration, bool) {
	switch v := v.(type) {
	case Duration:
		return v, true
	case map[string]any:
		var d Duration
		if len(v) != 3 {
			return d, false
		}
		parts := [3]*uint32{&d.Months, &d.Days, &d.Milliseconds}
		for i, k := range [3]string{"months", "days", "milliseconds"} {
			x, ok := v[k]
			if !ok {
				return d, false
			}
			n, err := intValue(x, 64)
			if err != nil || n < 0 || n > math.MaxUint32 {
				return d, false
			}
			*parts[i] = uint32(n)
		}
		return d, true
	}
	return Duration{}, false
}

// decimalValue converts v to a Decimal at exactly the given scale.
func decimalValue(v any, scale, precision int) (Decimal, error) {
	var text string
	switch v := v.(type) {
	case Decimal:
		if v.scale == scale && v.big == nil {
			if v.digitCount() > precision {
				return Decimal{}, tooManyDigits(precision)
			}
			return v, nil
		}
		text = v.String()
	case *big.Rat:
		if v == nil {
			return Decimal{}, errWrongType
		}
		x := new(big.Int).Mul(v.Num(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
		q, r := new(big.Int).QuoRem(x, v.Denom(), new(big.Int))
		if r.Sign() != 0 {
			return Decimal{}, fmt.Errorf("has more than %d digits after the decimal point", scale)
		}
		text = q.String() + "e-" + strconv.Itoa(scale)
	case json.Number:
		text = string(v)
	case string:
		text = v
	case float32, float64:
		return Decimal{}, errInexactFloat
	default:
		i, err := intValue(v, 64)
		if err != nil {
			return Decimal{}, errWrongType
		}
		text = strconv.FormatInt(i, 10)
	}
	t, ok := parseDecimalText(text)
	if !ok {
		return Decimal{}, errWrongType
	}
	digits, err := t.atScale(scale, precision)
	if err != nil {
		return Decimal{}, err
	}
	return decimalFromDigits(t.neg, digits, scale), nil
}

// describeValue names a value for error messages.
func describeValue(v any) string {
	switch v := v.(type) {
	case json.Number:
		if len(v) > 40 {
			return string(v[:40]) + "..."
		}
		return string(v)
	case string:
		if len(v) > 40 {
			return strconv.Quote(v[:40]) + "..."
		}
		return strconv.Quote(v)
	case nil, bool, []any, map[string]any:
		return describeJSON(v)
	case Decimal:
		return "decimal " + v.String()
	default:
		return fmt.Sprintf("%T", v)
	}
}
