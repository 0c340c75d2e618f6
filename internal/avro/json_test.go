package avro

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"
)

func TestFromJSONEncodesEveryType(t *testing.T) {
	const (
		dec      = `{"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}`
		withDflt = `{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": "x"}]}`
	)
	tests := []struct {
		name   string
		schema string
		input  string
		hex    string
		output string // ToJSON of the binary; "" when it is the input
	}{
		{"null", `"null"`, `null`, ``, ``},
		{"a boolean", `"boolean"`, `true`, `01`, ``},
		{"an int", `"int"`, `-1`, `01`, ``},
		{"the largest int", `"int"`, `2147483647`, `feffffff0f`, ``},
		{"an int written as 2.0", `"int"`, `2.0`, `04`, `2`},
		{"an int written with an exponent", `"int"`, `1e2`, `c801`, `100`},
		{"the smallest long", `"long"`, `-9223372036854775808`, `ffffffffffffffffff01`, ``},
		{"a float", `"float"`, `1.5`, `0000c03f`, ``},
		{"a float rounded to 32 bits", `"float"`, `0.1`, `cdcccc3d`, ``},
		{"a double", `"double"`, `0.1`, `9a9999999999b93f`, ``},
		{"a tiny double", `"double"`, `1e-7`, `48afbc9af2d77a3e`, ``},
		{"a NaN double, canonical as Java writes it", `"double"`, `"NaN"`, `000000000000f87f`, ``},
		{"a NaN float", `"float"`, `"NaN"`, `0000c07f`, ``},
		{"an infinite double", `"double"`, `"-Infinity"`, `000000000000f0ff`, ``},
		{"bytes as base64", `"bytes"`, `"AAEC"`, `06000102`, ``},
		{"bytes as unpadded base64", `"bytes"`, `"AAE"`, `040001`, `"AAE="`},
		{"a fixed", `{"type": "fixed", "name": "F", "size": 2}`, `"AAE="`, `0001`, ``},
		{"a string with escapes", `"string"`, `"h\u00e9llo\n\"q\""`, `1468c3a96c6c6f0a227122`, `"héllo\n\"q\""`},
		{"a string with a surrogate pair", `"string"`, `"\ud83d\ude00"`, `08f09f9880`, `"😀"`},
		{"an enum", `{"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}`, `"C"`, `04`, ``},
		{"an array", `{"type": "array", "items": "int"}`, `[1, 2]`, `04020400`, `[1,2]`},
		{"an empty array", `{"type": "array", "items": "int"}`, `[]`, `00`, ``},
		{"a map, written in key order", `{"type": "map", "values": "int"}`, `{"b": 2, "a": 1}`, `0402610202620400`, `{"a":1,"b":2}`},
		{"a record field taking its default", withDflt, `{"a": 1}`, `020278`, `{"a":1,"b":"x"}`},
		{"a record with every field", withDflt, `{"b": "y", "a": 1}`, `020279`, `{"a":1,"b":"y"}`},
		{"a nullable union holding null", `["null", "string"]`, `null`, `00`, ``},
		{"a nullable union holding a value", `["null", "string"]`, `"x"`, `020278`, ``},
		{"a union value that fits one branch", `["null", "string", "long"]`, `5`, `040a`, ``},
		{"a union value in the wrapper form", `["int", "long"]`, `{"long": 5}`, `020a`, ``},
		{"a record in a union by its simple name", `["null", {"type": "record", "name": "ns.P", "fields": [{"name": "x", "type": "int"}]}]`, `{"P": {"x": 1}}`, `0202`, `{"x":1}`},
		{"a decimal from a string", dec, `"15.99"`, `04063f`, ``},
		{"a decimal from a number", dec, `15.99`, `04063f`, `"15.99"`},
		{"a decimal with an exponent", dec, `"1.5e1"`, `0405dc`, `"15.00"`},
		{"a decimal with trailing zeros beyond the scale", dec, `"15.990"`, `04063f`, `"15.99"`},
		{"a negative decimal", dec, `"-1.28"`, `0280`, ``},
		{"a zero decimal", dec, `0`, `0200`, `"0.00"`},
		{"the largest decimal(18,2)", dec, `"9999999999999999.99"`, `100de0b6b3a763ffff`, ``},
		{"a decimal in a fixed", `{"type": "fixed", "name": "M", "size": 4, "logicalType": "decimal", "precision": 9, "scale": 2}`, `"-1.28"`, `ffffff80`, ``},
		{"a timestamp with an offset", `{"type": "long", "logicalType": "timestamp-millis"}`, `"2023-10-27T12:00:00.123+02:00"`, `f6b59c89ee62`, `"2023-10-27T10:00:00.123Z"`},
		{"a timestamp as epoch milliseconds", `{"type": "long", "logicalType": "timestamp-millis"}`, `1698400800123`, `f6b59c89ee62`, `"2023-10-27T10:00:00.123Z"`},
		{"a timestamp in microseconds", `{"type": "long", "logicalType": "timestamp-micros"}`, `"2023-10-27T10:00:00.000001Z"`, `82a0f685f8ab8406`, ``},
		{"a timestamp beyond RFC 3339's years", `{"type": "long", "logicalType": "timestamp-millis"}`, `253402300800000`, `80f0fea1fa9d73`, ``},
		{"a local timestamp", `{"type": "long", "logicalType": "local-timestamp-millis"}`, `"2023-10-27T10:00:00.5"`, `e8bb9c89ee62`, ``},
		{"a date", `{"type": "int", "logicalType": "date"}`, `"2023-10-27"`, `92b302`, ``},
		{"a date before 1970", `{"type": "int", "logicalType": "date"}`, `"1969-12-31"`, `01`, ``},
		{"a time in milliseconds", `{"type": "int", "logicalType": "time-millis"}`, `"10:00:00.123"`, `f6c5aa22`, ``},
		{"a time in microseconds", `{"type": "long", "logicalType": "time-micros"}`, `"23:59:59.999999"`, `feffbadd8305`, ``},
		{"a uuid", `{"type": "string", "logicalType": "uuid"}`, `"123e4567-e89b-12d3-a456-426614174000"`, "48" + hex.EncodeToString([]byte("123e4567-e89b-12d3-a456-426614174000")), ``},
		{"a duration", `{"type": "fixed", "name": "D", "size": 12, "logicalType": "duration"}`, `{"months": 1, "days": 2, "milliseconds": 3}`, `010000000200000003000000`, `{"months":1,"days":2,"milliseconds":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParseAny(t, tt.schema)
			bin := mustFromJSON(t, s, tt.input)
			if got := hex.EncodeToString(bin); got != tt.hex {
				t.Errorf("FromJSON(%s) = %s, want %s", tt.input, got, tt.hex)
			}
			want := tt.output
			if want == "" {
				want = compactJSON(tt.input)
			}
			checkJSONRoundTrip(t, s, bin, want)
			// goavro, an independent implementation, reads our bytes.
			codec, err := goavro.NewCodec(tt.schema)
			if err != nil {
				t.Fatal(err)
			}
			if _, rest, err := codec.NativeFromBinary(bin); err != nil || len(rest) != 0 {
				t.Errorf("goavro NativeFromBinary(%x) = %v with %d bytes left", bin, err, len(rest))
			}
		})
	}
}

// compactJSON removes the spaces after ':' and ',' that the test inputs use.
func compactJSON(s string) string {
	return strings.NewReplacer(": ", ":", ", ", ",").Replace(s)
}

func TestFromJSONRejectsDataThatDoesNotFit(t *testing.T) {
	order := `{"type": "record", "name": "Order", "fields": [
		{"name": "id", "type": "string"},
		{"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
			{"name": "sku", "type": "string"},
			{"name": "quantity", "type": "int"},
			{"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}}]}}},
		{"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}},
		{"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}, "default": "RED"},
		{"name": "note", "type": ["null", "string"], "default": null},
		{"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}, "default": 0},
		{"name": "day", "type": {"type": "int", "logicalType": "date"}, "default": 0},
		{"name": "hash", "type": {"type": "fixed", "name": "H", "size": 2}, "default": "ab"},
		{"name": "blob", "type": "bytes", "default": ""},
		{"name": "ratio", "type": "float", "default": 0},
		{"name": "id2", "type": {"type": "string", "logicalType": "uuid"}, "default": "00000000-0000-0000-0000-000000000000"},
		{"name": "either", "type": ["null", "int", "long"], "default": null}]}`
	item := func(price string) string {
		return `{"id": "o1", "items": [{"sku": "a", "quantity": 1, "price": "1.00"}, {"sku": "b", "quantity": 1, "price": "1.00"}, {"sku": "c", "quantity": 1, "price": ` + price + `}]}`
	}
	field := func(name, value string) string {
		return `{"id": "o1", "items": [], "` + name + `": ` + value + `}`
	}
	tests := []struct {
		name, input, path, message string
	}{
		{"a price that is not a number", item(`true`), "items[2].price", "want decimal(6,2), got boolean"},
		{"a price with too many decimals", item(`"1.999"`), "items[2].price", `want decimal(6,2), got "1.999": has more than 2 digits after the decimal point`},
		{"a price beyond the precision", item(`10000`), "items[2].price", "want decimal(6,2), got 10000: has more than 6 significant digits"},
		{"a price in a non-numeric string", item(`"1,5"`), "items[2].price", `want decimal(6,2), got "1,5"`},
		{"a fractional quantity", `{"id": "o1", "items": [{"sku": "a", "quantity": 2.5, "price": 1}]}`, "items[0].quantity", "want int, got 2.5: not an integer"},
		{"a quantity beyond an int", `{"id": "o1", "items": [{"sku": "a", "quantity": 2147483648, "price": 1}]}`, "items[0].quantity", "want int, got 2147483648: out of range"},
		{"a quantity given as a string", `{"id": "o1", "items": [{"sku": "a", "quantity": "2", "price": 1}]}`, "items[0].quantity", `want int, got "2"`},
		{"a missing required field", `{"items": []}`, "id", "required field missing"},
		{"an unknown field", `{"id": "o1", "items": [], "colour": "RED"}`, "colour", "unknown field"},
		{"an unknown field that is no valid name", `{"id": "o1", "items": [], "a.b": 1}`, `["a.b"]`, "unknown field"},
		{"an unknown field in a nested record", `{"id": "o1", "items": [{"sku": "a", "quantity": 1, "price": 1, "size": 2}]}`, "items[0].size", "unknown field"},
		{"a record that is an array", `[]`, "", "want record Order, got array"},
		{"a null for a required string", `{"id": null, "items": []}`, "id", "want string, got null"},
		{"a string with invalid UTF-8", "{\"id\": \"o\xff1\", \"items\": []}", "id", "invalid UTF-8 in string"},
		{"a string with an unpaired surrogate", `{"id": "\ud800", "items": []}`, "id", "invalid UTF-8 in string"},
		{"a map value of the wrong type", field("tags", `{"a": 1}`), `tags["a"]`, "want string, got 1"},
		{"a map key with invalid UTF-8", field("tags", "{\"\xff\": \"x\"}"), "tags[\"\\xff\"]", "invalid UTF-8 in map key"},
		{"an unknown enum symbol", field("color", `"BLUE"`), "color", `want a symbol of enum Color, got "BLUE"`},
		{"a nullable union holding the wrong type", field("note", `5`), "note", "want string, got 5"},
		{"an ambiguous union value", field("either", `5`), "either", `ambiguous: the value fits both int and long of the union; write it as {"int": ...} or {"long": ...}`},
		{"a union value no branch takes", field("either", `"x"`), "either", `want one of [null, int, long], got "x"`},
		{"a timestamp more precise than milliseconds", field("at", `"2023-10-27T10:00:00.0001Z"`), "at", `want timestamp-millis: more precise than the type stores, got "2023-10-27T10:00:00.0001Z"`},
		{"a timestamp that is not RFC 3339", field("at", `"27/10/2023"`), "at", `want timestamp-millis as 2006-01-02T15:04:05.999Z07:00 text or a number, got "27/10/2023"`},
		{"a fractional epoch timestamp", field("at", `1.5`), "at", "want timestamp-millis as text or a number, got 1.5: not an integer"},
		{"an impossible date", field("day", `"2023-02-30"`), "day", `want date as 2006-01-02 text or a number, got "2023-02-30"`},
		{"a fixed of the wrong size", field("hash", `"AAAA"`), "hash", "want 2 bytes for fixed H, got 3"},
		{"bytes that are not base64", field("blob", `"not base64!"`), "blob", `want bytes, got "not base64!"`},
		{"a float beyond float range", field("ratio", `1e39`), "ratio", "want float, got 1e39: out of range"},
		{"a malformed uuid", field("id2", `"1234"`), "id2", `want uuid, got "1234"`},
	}
	s := mustParse(t, order)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.FromJSON([]byte(tt.input))
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrSchemaViolation) {
				t.Fatalf("FromJSON(%s) = %v, want a *ValidationError", tt.input, err)
			}
			if diff := cmp.Diff([]string{tt.path, tt.message}, []string{ve.Path, ve.Message}); diff != "" {
				t.Errorf("FromJSON(%s) error (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestFromJSONRejectsMalformedJSON(t *testing.T) {
	s := mustParse(t, `{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}`)
	for _, input := range []string{
		``, `{`, `{"a": 1,}`, `{"a": 01}`, `{"a": 1} x`, `{"a": .5}`, `{"a": +1}`, `{'a': 1}`,
		`{"a": 1, "a": 2}`, "{\"a\": \"\x01\"}", `{"a": "\x"}`, `{"a": tru}`, `[1 2]`, `{"a": 1e}`,
		strings.Repeat("[", maxDepth+1),
	} {
		t.Run("input "+input[:min(len(input), 20)], func(t *testing.T) {
			if _, err := s.FromJSON([]byte(input)); !errors.Is(err, ErrInvalidJSON) {
				t.Errorf("FromJSON(%q) = %v, want an ErrInvalidJSON", input, err)
			}
		})
	}
}

func TestToJSONWrapsUnionValuesThatWouldBeMisread(t *testing.T) {
	tests := []struct {
		name, schema, input, output string
	}{
		{"a long that an int branch would take", `["int", "long"]`, `{"long": 5}`, `{"long":5}`},
		{"an int, the first branch that fits", `["int", "long"]`, `{"int": 5}`, `{"int":5}`},
		{"a string that is also valid base64", `["string", "bytes"]`, `{"string": "abcd"}`, `{"string":"abcd"}`},
		{"a string that is not base64", `["string", "bytes"]`, `"a b"`, `"a b"`},
		{"a map that looks like a wrapper", `["string", {"type": "map", "values": "string"}]`, `{"map": {"string": "x"}}`, `{"map":{"string":"x"}}`},
		{"a map whose key names a branch its value does not fit", `["null", {"type": "map", "values": "string"}]`, `{"null": "x"}`, `{"null":"x"}`},
		{"a map that names no branch", `["null", {"type": "map", "values": "string"}]`, `{"k": "x"}`, `{"k":"x"}`},
		{"a double that looks like an int", `["int", "double"]`, `{"double": 5}`, `{"double":5}`},
		{"an enum symbol that is also a string", `["string", {"type": "enum", "name": "E", "symbols": ["A"]}]`, `{"E": "A"}`, `{"E":"A"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParseAny(t, tt.schema)
			bin := mustFromJSON(t, s, tt.input)
			checkJSONRoundTrip(t, s, bin, tt.output)
		})
	}
}
