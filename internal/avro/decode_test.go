package avro

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// everyType has a field of every type and logical type.
const everyType = `{"type": "record", "name": "All", "namespace": "t", "fields": [
	{"name": "n", "type": "null"},
	{"name": "b", "type": "boolean"},
	{"name": "i", "type": "int"},
	{"name": "l", "type": "long"},
	{"name": "f", "type": "float"},
	{"name": "d", "type": "double"},
	{"name": "by", "type": "bytes"},
	{"name": "s", "type": "string"},
	{"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
	{"name": "fx", "type": {"type": "fixed", "name": "F", "size": 2}},
	{"name": "a", "type": {"type": "array", "items": "long"}},
	{"name": "m", "type": {"type": "map", "values": ["null", "string"]}},
	{"name": "r", "type": {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int"}]}},
	{"name": "u", "type": ["null", "Inner", "string"]},
	{"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
	{"name": "decf", "type": {"type": "fixed", "name": "DF", "size": 16, "logicalType": "decimal", "precision": 38, "scale": 0}},
	{"name": "uuid", "type": {"type": "string", "logicalType": "uuid"}},
	{"name": "date", "type": {"type": "int", "logicalType": "date"}},
	{"name": "tms", "type": {"type": "int", "logicalType": "time-millis"}},
	{"name": "tus", "type": {"type": "long", "logicalType": "time-micros"}},
	{"name": "tsms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
	{"name": "tsus", "type": {"type": "long", "logicalType": "timestamp-micros"}},
	{"name": "lts", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
	{"name": "dur", "type": {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}}]}`

const everyValue = `{"n": null, "b": true, "i": -7, "l": 1099511627776, "f": 0.5, "d": -2.25,
	"by": "AQI=", "s": "z\u00fcrich", "e": "B", "fx": "AAE=", "a": [1, 2, 3], "m": {"k": "v", "z": null},
	"r": {"x": 9}, "u": {"x": 4}, "dec": "-15.99", "decf": "-99999999999999999999999999999999999999",
	"uuid": "123e4567-e89b-12d3-a456-426614174000", "date": "2023-10-27", "tms": "10:00:00.123",
	"tus": "00:00:01.000002", "tsms": "2023-10-27T10:00:00.123Z", "tsus": "1960-01-01T00:00:00.000001Z",
	"lts": "2023-10-27T10:00:00.5", "dur": {"months": 1, "days": 2, "milliseconds": 3}}`

func TestDecodeGivesNativeGoValues(t *testing.T) {
	s := mustParse(t, everyType)
	bin := mustFromJSON(t, s, everyValue)
	got, err := s.Decode(bin)
	if err != nil {
		t.Fatal(err)
	}
	most, _ := new(big.Int).SetString("-99999999999999999999999999999999999999", 10)
	want := map[string]any{
		"n": nil, "b": true, "i": int32(-7), "l": int64(1 << 40), "f": float32(0.5), "d": -2.25,
		"by": []byte{1, 2}, "s": "zürich", "e": "B", "fx": []byte{0, 1}, "a": []any{int64(1), int64(2), int64(3)},
		"m": map[string]any{"k": "v", "z": nil}, "r": map[string]any{"x": int32(9)}, "u": map[string]any{"x": int32(4)},
		"dec": NewDecimalInt64(-1599, 2), "decf": NewDecimal(most, 0),
		"uuid": "123e4567-e89b-12d3-a456-426614174000",
		"date": time.Date(2023, 10, 27, 0, 0, 0, 0, time.UTC),
		"tms":  10*time.Hour + 123*time.Millisecond, "tus": time.Second + 2*time.Microsecond,
		"tsms": time.Date(2023, 10, 27, 10, 0, 0, 123e6, time.UTC),
		"tsus": time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC),
		"lts":  time.Date(2023, 10, 27, 10, 0, 0, 5e8, time.UTC),
		"dur":  Duration{Months: 1, Days: 2, Milliseconds: 3},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Decimal{}), cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	// Encode takes back what Decode gives.
	again, err := s.Encode(got)
	if err != nil || string(again) != string(bin) {
		t.Errorf("Encode(Decode(%x)) = %x, %v", bin, again, err)
	}
	// And the decoded value does not alias the input.
	for i := range bin {
		bin[i] = 0
	}
	if diff := cmp.Diff([]byte{1, 2}, got.(map[string]any)["by"]); diff != "" {
		t.Errorf("decoded bytes changed with the input (-want +got):\n%s", diff)
	}
}

func TestEncodeAcceptsNativeGoValues(t *testing.T) {
	s := mustParse(t, `{"type": "record", "name": "R", "fields": [
		{"name": "i", "type": "int"}, {"name": "l", "type": "long"}, {"name": "d", "type": "double"},
		{"name": "p", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
		{"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
		{"name": "u", "type": ["int", "long"]}]}`)
	fromJSON := mustFromJSON(t, s, `{"i": 1, "l": 2, "d": 3, "p": "4.50", "at": "2023-10-27T10:00:00Z", "u": {"long": 6}}`)
	at := time.Date(2023, 10, 27, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name  string
		value map[string]any
	}{
		{"Go ints, a big.Rat and a time.Time", map[string]any{"i": 1, "l": uint8(2), "d": 3, "p": big.NewRat(9, 2), "at": at, "u": int64(6)}},
		{"the types Decode gives", map[string]any{"i": int32(1), "l": int64(2), "d": float64(3), "p": NewDecimalInt64(45, 1), "at": at.UTC(), "u": int64(6)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin, err := s.Encode(tt.value)
			if err != nil || string(bin) != string(fromJSON) {
				t.Errorf("Encode(%v) = %x, %v, want %x", tt.value, bin, err, fromJSON)
			}
		})
	}
	rejects := []struct {
		name, field string
		value       any
		message     string
	}{
		{"a float64 for a decimal", "p", 4.5, "want decimal(9,2), got float64: a binary float cannot hold most decimals exactly; use a string or json.Number"},
		{"a big.Rat that needs more scale", "p", big.NewRat(1, 3), "want decimal(9,2), got *big.Rat: has more than 2 digits after the decimal point"},
		{"a time.Time with nanoseconds", "at", at.Add(1), "want timestamp-millis: 2023-10-27 12:00:00.000000001 +0200 CEST is more precise than the type stores or out of range"},
		{"an int64 beyond an int", "i", int64(1) << 40, "want int, got int64: out of range"},
		{"a uint64 beyond a long", "l", uint64(1) << 63, "want long, got uint64: out of range"},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			v := map[string]any{"i": 1, "l": 2, "d": 3, "p": "4.50", "at": at, "u": int64(6), tt.field: tt.value}
			_, err := s.Encode(v)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Path != tt.field || ve.Message != tt.message {
				t.Errorf("Encode = %v, want %s: %s", err, tt.field, tt.message)
			}
		})
	}
}

func TestDecodeRejectsMalformedBinary(t *testing.T) {
	record := `{"type": "record", "name": "R", "fields": [{"name": "s", "type": "string"}, {"name": "u", "type": ["null", "int"]}]}`
	tests := []struct {
		name, schema string
		bin          []byte
		want         string
	}{
		{"truncated data", record, []byte{0x06, 'a'}, "byte length out of range"},
		{"bytes left over", record, []byte{0x02, 'a', 0x00, 0x00}, "1 bytes left after the value"},
		{"a union index out of range", record, []byte{0x02, 'a', 0x04}, "union branch index out of range"},
		{"a negative union index", record, []byte{0x02, 'a', 0x01}, "union branch index out of range"},
		{"a string that is not UTF-8", record, []byte{0x02, 0xff, 0x00}, "string is not valid UTF-8"},
		{"a boolean that is neither 0 nor 1", `"boolean"`, []byte{0x02}, "invalid boolean byte"},
		{"an int beyond 32 bits", `"int"`, []byte{0x80, 0x80, 0x80, 0x80, 0x10}, "value overflows an int"},
		{"a varint of eleven bytes", `"long"`, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "varint overflows a long"},
		{"an enum index out of range", `{"type": "enum", "name": "E", "symbols": ["A"]}`, []byte{0x02}, "enum index out of range"},
		{"a block count beyond the data", `{"type": "array", "items": "long"}`, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00}, "block count exceeds the data"},
		{"a billion nulls", `{"type": "array", "items": "null"}`, []byte{0x80, 0xa8, 0xd6, 0xb9, 0x07, 0x00}, "block count exceeds the data"},
		{"a negative byte length", `"bytes"`, []byte{0x01}, "byte length out of range"},
		{"nesting deeper than the limit", `{"type": "record", "name": "L", "fields": [{"name": "next", "type": ["null", "L"]}]}`,
			[]byte(strings.Repeat("\x02", maxDepth+1) + "\x00"), "data nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParseAny(t, tt.schema)
			for op, fn := range map[string]func([]byte) error{
				"Decode": func(b []byte) error { _, err := s.Decode(b); return err },
				"ToJSON": func(b []byte) error { _, err := s.ToJSON(b); return err },
			} {
				err := fn(tt.bin)
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ErrDecode) || de.Message != tt.want {
					t.Errorf("%s(%x) = %v, want a *DecodeError %q", op, tt.bin, err, tt.want)
				}
			}
		})
	}
}
