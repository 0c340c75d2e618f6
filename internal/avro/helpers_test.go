package avro

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mustParse parses an event schema or fails the test.
func mustParse(t testing.TB, text string) *Schema {
	t.Helper()
	s, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(%s) = %v", text, err)
	}
	return s
}

// mustParseAny parses a schema of any type or fails the test.
func mustParseAny(t testing.TB, text string) *Schema {
	t.Helper()
	s, err := ParseAny(text)
	if err != nil {
		t.Fatalf("ParseAny(%s) = %v", text, err)
	}
	return s
}

// orderSchema parses one of the example domain's schemas in /schemas.
func orderSchema(t testing.TB, file string) *Schema {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "schemas", file))
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, string(text))
}

// mustFromJSON encodes natural JSON or fails the test.
func mustFromJSON(t testing.TB, s *Schema, input string) []byte {
	t.Helper()
	bin, err := s.FromJSON([]byte(input))
	if err != nil {
		t.Fatalf("FromJSON(%s) = %v", input, err)
	}
	return bin
}

// resolverFor encodes input (natural JSON) with writer and compiles the
// resolution of writer's data as reader.
func resolverFor(t testing.TB, writer, reader *Schema, input string) (*Resolver, []byte) {
	t.Helper()
	bin := mustFromJSON(t, writer, input)
	r, err := NewResolver(writer, reader)
	if err != nil {
		t.Fatalf("NewResolver = %v", err)
	}
	return r, bin
}

// checkJSONRoundTrip checks that ToJSON(bin) is want and that FromJSON
// reads it back as bin.
func checkJSONRoundTrip(t testing.TB, s *Schema, bin []byte, want string) {
	t.Helper()
	out, err := s.ToJSON(bin)
	if err != nil || string(out) != want {
		t.Errorf("ToJSON(%x) = %s, %v, want %s", bin, out, err, want)
	}
	if again, err := s.FromJSON(out); err != nil || !bytes.Equal(again, bin) {
		t.Errorf("FromJSON(%s) = %x, %v, want %x", out, again, err, bin)
	}
}

// loadJSON decodes a testdata file, keeping numbers exact.
func loadJSON(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tag gives a native value the schema-free JSON form that gen_golden.py
// gives Python datums: numbers as json.Number, bytes, decimals, instants and
// times of day as {"$kind": ...} objects.
func tag(v any) any {
	switch v := v.(type) {
	case nil, bool, string:
		return v
	case int32:
		return json.Number(strconv.FormatInt(int64(v), 10))
	case int64:
		return json.Number(strconv.FormatInt(v, 10))
	case float32:
		return tagFloat(float64(v))
	case float64:
		return tagFloat(v)
	case []byte:
		return map[string]any{"$bytes": hex.EncodeToString(v)}
	case Decimal:
		return map[string]any{"$decimal": v.String()}
	case time.Time:
		return map[string]any{"$instant_us": json.Number(strconv.FormatInt(v.UnixMicro(), 10))}
	case time.Duration:
		return map[string]any{"$duration_us": json.Number(strconv.FormatInt(v.Microseconds(), 10))}
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = tag(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = tag(x)
		}
		return out
	}
	return v
}

func tagFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return map[string]any{"$float": "NaN"}
	case math.IsInf(f, 1):
		return map[string]any{"$float": "Infinity"}
	case math.IsInf(f, -1):
		return map[string]any{"$float": "-Infinity"}
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

// exactNumbers compares JSON numbers by value: "5" equals "5.0" and "5e0".
func exactNumbers() cmp.Option {
	return cmp.Comparer(func(a, b json.Number) bool {
		x, okx := new(big.Rat).SetString(string(a))
		y, oky := new(big.Rat).SetString(string(b))
		return okx && oky && x.Cmp(y) == 0
	})
}
