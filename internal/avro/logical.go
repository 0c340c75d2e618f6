package avro

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Conversions between logical-type values and their natural JSON and native
// Go forms. Every conversion is exact: a text with more precision than the
// type stores is rejected, never rounded.

// nsPerTick returns the nanoseconds in one unit of a time logical type.
func nsPerTick(l logical) int64 {
	switch l {
	case logicalTimeMillis, logicalTimestampMillis, logicalLocalTimestampMillis:
		return int64(time.Millisecond)
	default:
		return int64(time.Microsecond)
	}
}

// timeToTicks converts an instant to ticks since the Unix epoch; false when
// t has finer precision than a tick or the count overflows an int64.
func timeToTicks(t time.Time, perTick int64) (int64, bool) {
	if int64(t.Nanosecond())%perTick != 0 {
		return 0, false
	}
	perSec := int64(time.Second) / perTick
	sec := t.Unix()
	if sec > math.MaxInt64/perSec-1 || sec < math.MinInt64/perSec+1 {
		return 0, false
	}
	return sec*perSec + int64(t.Nanosecond())/perTick, true
}

// ticksToTime converts ticks since the Unix epoch to a UTC time.
func ticksToTime(v, perTick int64) time.Time {
	perSec := int64(time.Second) / perTick
	sec, rem := v/perSec, v%perSec
	if rem < 0 {
		rem += perSec
		sec--
	}
	return time.Unix(sec, rem*perTick).UTC()
}

// textLayout is the layout of a time logical type's natural JSON text.
func textLayout(l logical) string {
	switch l {
	case logicalTimestampMillis:
		return "2006-01-02T15:04:05.999Z07:00"
	case logicalTimestampMicros:
		return "2006-01-02T15:04:05.999999Z07:00"
	case logicalLocalTimestampMillis:
		return "2006-01-02T15:04:05.999"
	case logicalLocalTimestampMicros:
		return "2006-01-02T15:04:05.999999"
	case logicalDate:
		return time.DateOnly
	}
	return ""
}

// parseTimeText parses the natural JSON text of a timestamp, local
// timestamp or date into ticks (days for a date). RFC 3339 timestamps may
// carry any offset; they are stored as the UTC instant.
func parseTimeText(l logical, s string) (int64, string) {
	layout := time.RFC3339Nano
	switch l {
	case logicalLocalTimestampMillis, logicalLocalTimestampMicros:
		layout = "2006-01-02T15:04:05.999999999"
	case logicalDate:
		layout = time.DateOnly
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return 0, "want " + l.String() + " as " + textLayout(l) + " text or a number"
	}
	if l == logicalDate {
		return t.Unix() / 86400, ""
	}
	v, ok := timeToTicks(t, nsPerTick(l))
	if !ok {
		return 0, "want " + l.String() + ": more precise than the type stores"
	}
	return v, ""
}

// appendTimeJSON writes a timestamp, local timestamp or date as natural
// JSON text; outside the years 0000-9999, which RFC 3339 cannot write, as
// its number.
func appendTimeJSON(dst []byte, l logical, v int64) []byte {
	var t time.Time
	if l == logicalDate {
		t = time.Unix(v*86400, 0).UTC()
	} else {
		t = ticksToTime(v, nsPerTick(l))
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return strconv.AppendInt(dst, v, 10)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, textLayout(l))
	return append(dst, '"')
}

// parseTimeOfDay parses "HH:MM:SS[.fraction]" into ticks after midnight.
func parseTimeOfDay(l logical, s string) (int64, string) {
	msg := "want " + l.String() + " as HH:MM:SS[.fraction] text or a number"
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, msg
	}
	h, err1 := strconv.Atoi(s[0:2])
	m, err2 := strconv.Atoi(s[3:5])
	sec, err3 := strconv.Atoi(s[6:8])
	if err1 != nil || err2 != nil || err3 != nil || h > 23 || m > 59 || sec > 59 ||
		s[0] == '+' || s[0] == '-' || s[3] == '+' || s[3] == '-' || s[6] == '+' || s[6] == '-' {
		return 0, msg
	}
	perSec := int64(time.Second) / nsPerTick(l)
	digits := 3
	if perSec == 1e6 {
		digits = 6
	}
	var frac int64
	if rest := s[8:]; rest != "" {
		if rest[0] != '.' || len(rest) == 1 {
			return 0, msg
		}
		for i, c := range []byte(rest[1:]) {
			if c < '0' || c > '9' {
				return 0, msg
			}
			if i >= digits {
				if c != '0' {
					return 0, "want " + l.String() + ": more precise than the type stores"
				}
				continue
			}
			frac = frac*10 + int64(c-'0')
		}
		for range digits - min(digits, len(rest)-1) {
			frac *= 10
		}
	}
	return (int64(h)*3600+int64(m)*60+int64(sec))*perSec + frac, ""
}

// appendTimeOfDayJSON writes ticks after midnight as "HH:MM:SS[.fraction]",
// or as a number when out of the day's range.
func appendTimeOfDayJSON(dst []byte, l logical, v int64) []byte {
	perSec := int64(time.Second) / nsPerTick(l)
	if v < 0 || v >= 86400*perSec {
		return strconv.AppendInt(dst, v, 10)
	}
	t := time.Unix(0, v*nsPerTick(l)).UTC()
	layout := "15:04:05.999"
	if perSec == 1e6 {
		layout = "15:04:05.999999"
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, layout)
	return append(dst, '"')
}

// isUUID reports whether s has the RFC 4122 text form 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// Duration is the native value of the duration logical type: months, days
// and milliseconds, which do not convert into one another.
type Duration struct {
	Months       uint32 `json:"months"`
	Days         uint32 `json:"days"`
	Milliseconds uint32 `json:"milliseconds"`
}

func (d Duration) appendBinary(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, d.Months)
	dst = binary.LittleEndian.AppendUint32(dst, d.Days)
	return binary.LittleEndian.AppendUint32(dst, d.Milliseconds)
}

func durationFromBinary(b []byte) Duration {
	return Duration{
		Months:       binary.LittleEndian.Uint32(b[0:4]),
		Days:         binary.LittleEndian.Uint32(b[4:8]),
		Milliseconds: binary.LittleEndian.Uint32(b[8:12]),
	}
}

func appendDurationJSON(dst []byte, d Duration) []byte {
	dst = append(dst, `{"months":`...)
	dst = strconv.AppendUint(dst, uint64(d.Months), 10)
	dst = append(dst, `,"days":`...)
	dst = strconv.AppendUint(dst, uint64(d.Days), 10)
	dst = append(dst, `,"milliseconds":`...)
	dst = strconv.AppendUint(dst, uint64(d.Milliseconds), 10)
	return append(dst, '}')
}

// logicalValue encodes a value of a type with a logical type.
func (e encoder) logicalValue(dst []byte, n *node, v any) ([]byte, error) {
	switch n.logical {
	case logicalDecimal:
		return e.decimal(dst, n, v)
	case logicalUUID:
		s, ok := v.(string)
		if !ok || !isUUID(s) {
			return dst, violation("want uuid, got %s", describeValue(v))
		}
		return appendString(dst, s), nil
	case logicalDuration:
		d, ok := durationValue(v)
		if !ok {
			return dst, violation(`want duration as {"months": m, "days": d, "milliseconds": ms}, got %s`, describeValue(v))
		}
		return d.appendBinary(dst), nil
	case logicalTimeMillis, logicalTimeMicros:
		return e.timeOfDay(dst, n, v)
	default: // dates and timestamps
		return e.instant(dst, n, v)
	}
}

// instant encodes a date, timestamp or local timestamp from its text, a
// time.Time or an epoch number.
func (e encoder) instant(dst []byte, n *node, v any) ([]byte, error) {
	var ticks int64
	switch t := v.(type) {
	case string:
		var msg string
		if ticks, msg = parseTimeText(n.logical, t); msg != "" {
			return dst, violation("%s, got %q", msg, t)
		}
	case time.Time:
		var ok bool
		switch n.logical {
		case logicalDate:
			ticks, ok = t.Unix()/86400, t.Unix()%86400 == 0 && t.Nanosecond() == 0
		case logicalLocalTimestampMillis, logicalLocalTimestampMicros:
			wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
			ticks, ok = timeToTicks(wall, nsPerTick(n.logical))
		default:
			ticks, ok = timeToTicks(t, nsPerTick(n.logical))
		}
		if !ok {
			return dst, violation("want %s: %v is more precise than the type stores or out of range", n.logical, t)
		}
	default:
		return e.encodeUnderlying(dst, n, v)
	}
	if n.kind == kindInt && (ticks < math.MinInt32 || ticks > math.MaxInt32) {
		return dst, violation("want %s, got a date out of range", n.logical)
	}
	return appendLong(dst, ticks), nil
}

// timeOfDay encodes a time-millis or time-micros from its text, a
// time.Duration since midnight or a number.
func (e encoder) timeOfDay(dst []byte, n *node, v any) ([]byte, error) {
	var ticks int64
	switch t := v.(type) {
	case string:
		var msg string
		if ticks, msg = parseTimeOfDay(n.logical, t); msg != "" {
			return dst, violation("%s, got %q", msg, t)
		}
	case time.Duration:
		per := time.Duration(nsPerTick(n.logical))
		if t%per != 0 {
			return dst, violation("want %s: %v is more precise than the type stores", n.logical, t)
		}
		ticks = int64(t / per)
	default:
		return e.encodeUnderlying(dst, n, v)
	}
	if n.kind == kindInt && (ticks < math.MinInt32 || ticks > math.MaxInt32) {
		return dst, violation("want %s, got a value out of range", n.logical)
	}
	return appendLong(dst, ticks), nil
}

// encodeUnderlying encodes v as the int or long under a date, time or
// timestamp (an epoch number), keeping the logical type's name in errors.
func (e encoder) encodeUnderlying(dst []byte, n *node, v any) ([]byte, error) {
	bits := 64
	if n.kind == kindInt {
		bits = 32
	}
	i, err := intValue(v, bits)
	if err != nil {
		return dst, wantGot(n.logical.String()+" as text or a number", v, err)
	}
	return appendLong(dst, i), nil
}

// decimal encodes a decimal exactly at the schema's scale and precision.
func (e encoder) decimal(dst []byte, n *node, v any) ([]byte, error) {
	d, err := decimalValue(v, n.scale, n.precision)
	if err != nil {
		return dst, wantGot(fmt.Sprintf("decimal(%d,%d)", n.precision, n.scale), v, err)
	}
	if n.kind == kindFixed {
		out, ok := d.appendFixedTwosComplement(dst, n.size)
		if !ok {
			return dst, violation("want decimal that fits fixed %s of %d bytes", n.name, n.size)
		}
		return out, nil
	}
	var small [16]byte
	return appendBytes(dst, d.appendTwosComplement(small[:0])), nil
}
