package avro

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNamesTheEventType(t *testing.T) {
	tests := []struct {
		file, fullName, name, namespace string
	}{
		{"OrderCreated.avsc", "example.orders.OrderCreated", "OrderCreated", "example.orders"},
		{"OrderItemAdded.avsc", "example.orders.OrderItemAdded", "OrderItemAdded", "example.orders"},
		{"OrderItemAdded.v2.avsc", "example.orders.OrderItemAdded", "OrderItemAdded", "example.orders"},
		{"OrderShipped.avsc", "example.orders.OrderShipped", "OrderShipped", "example.orders"},
	}
	for _, tt := range tests {
		t.Run(tt.file+" is "+tt.fullName, func(t *testing.T) {
			s := orderSchema(t, tt.file)
			got := []string{s.FullName(), s.Name(), s.Namespace(), s.Type()}
			want := []string{tt.fullName, tt.name, tt.namespace, "record"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseResolvesNamespacesAsTheSpecificationSays(t *testing.T) {
	// The example of the specification's "Names" section, plus references.
	s := mustParse(t, `{"type": "record", "name": "Example", "fields": [
		{"name": "inheritNull", "type": {"type": "enum", "name": "Simple", "symbols": ["a", "b"]}},
		{"name": "explicitNamespace", "type": {"type": "fixed", "name": "Simple", "namespace": "explicit", "size": 12}},
		{"name": "fullName", "type": {"type": "record", "name": "a.full.Name", "namespace": "ignored", "fields": [
			{"name": "inheritNamespace", "type": {"type": "enum", "name": "Understanding", "symbols": ["d", "e"]}},
			{"name": "sameNamespaceRef", "type": "Understanding"},
			{"name": "nullNamespaceRef", "type": "Simple"}]}},
		{"name": "explicitRef", "type": "explicit.Simple"}]}`)
	want := `{"name":"Example","type":"record","fields":[` +
		`{"name":"inheritNull","type":{"name":"Simple","type":"enum","symbols":["a","b"]}},` +
		`{"name":"explicitNamespace","type":{"name":"explicit.Simple","type":"fixed","size":12}},` +
		`{"name":"fullName","type":{"name":"a.full.Name","type":"record","fields":[` +
		`{"name":"inheritNamespace","type":{"name":"a.full.Understanding","type":"enum","symbols":["d","e"]}},` +
		`{"name":"sameNamespaceRef","type":"a.full.Understanding"},` +
		`{"name":"nullNamespaceRef","type":"Simple"}]}},` +
		`{"name":"explicitRef","type":"explicit.Simple"}]}`
	if s.Canonical() != want {
		t.Errorf("Canonical() = %s\nwant          %s", s.Canonical(), want)
	}
}

func TestParseRejectsInvalidSchemas(t *testing.T) {
	rec := func(fields string) string {
		return `{"type": "record", "name": "R", "fields": [` + fields + `]}`
	}
	tests := []struct {
		name, schema, want string
	}{
		{"text that is not JSON", `{"type": "record"`, "invalid JSON"},
		{"a top-level type that is not a record", `"string"`, "must be a record"},
		{"a top-level enum", `{"type": "enum", "name": "E", "symbols": ["A"]}`, "must be a record"},
		{"a record without a name", `{"type": "record", "fields": []}`, `needs a string "name"`},
		{"a record without fields", `{"type": "record", "name": "R"}`, `"fields" must be an array`},
		{"an unknown type name", rec(`{"name": "a", "type": "Missing"}`), `unknown type "Missing"`},
		{"a field defined twice", rec(`{"name": "a", "type": "int"}, {"name": "a", "type": "long"}`), `field "a" is defined twice`},
		{"an invalid field name", rec(`{"name": "a-b", "type": "int"}`), "invalid name"},
		{"an invalid record name", `{"type": "record", "name": "1R", "fields": []}`, "invalid name"},
		{"a type defined twice", rec(`{"name": "a", "type": {"type": "fixed", "name": "F", "size": 1}}, {"name": "b", "type": {"type": "fixed", "name": "F", "size": 2}}`), `type "F" is defined twice`},
		{"a primitive redefined", rec(`{"name": "a", "type": {"type": "fixed", "name": "int", "size": 1}}`), "redefines a primitive"},
		{"an enum symbol listed twice", rec(`{"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["A", "A"]}}`), `symbol "A" is listed twice`},
		{"an enum default that is not a symbol", rec(`{"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["A"], "default": "B"}}`), "is not one of its symbols"},
		{"an invalid enum symbol", rec(`{"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["a b"]}}`), "invalid symbol"},
		{"a union directly inside a union", rec(`{"name": "a", "type": ["int", ["long"]]}`), "may not directly contain another union"},
		{"a union with two strings", rec(`{"name": "a", "type": ["string", "string"]}`), "already has a string branch"},
		{"a union with a long and a timestamp", rec(`{"name": "a", "type": ["long", {"type": "long", "logicalType": "timestamp-millis"}]}`), "already has a long branch"},
		{"a fractional default for an int", rec(`{"name": "a", "type": "int", "default": 1.5}`), "invalid default"},
		{"a null default for a string", rec(`{"name": "a", "type": "string", "default": null}`), "invalid default"},
		{"a default that matches no union branch", rec(`{"name": "a", "type": ["null", "int"], "default": "x"}`), "invalid default"},
		{"a record default missing a required field", rec(`{"name": "a", "type": {"type": "record", "name": "S", "fields": [{"name": "x", "type": "int"}]}, "default": {}}`), "invalid default"},
		{"an invalid field order", rec(`{"name": "a", "type": "int", "order": "sideways"}`), "order must be"},
		{"a negative fixed size", rec(`{"name": "a", "type": {"type": "fixed", "name": "F", "size": -1}}`), `"size" must be`},
		{"an array without items", rec(`{"name": "a", "type": {"type": "array"}}`), `without "items"`},
		{"a type given as an object", rec(`{"name": "a", "type": {"type": {"type": "int"}}}`), `"type" must be a type name`},
		{"a duplicate key in the schema JSON", `{"type": "record", "name": "R", "name": "S", "fields": []}`, "duplicate key"},
		{"a fixed of size zero, which goavro refuses", rec(`{"name": "a", "type": {"type": "fixed", "name": "F", "size": 0}}`), "goavro rejects it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.schema)
			if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%s) = %v, want an ErrInvalidSchema containing %q", tt.schema, err, tt.want)
			}
		})
	}
}

func TestParseAnyAcceptsEveryTopLevelType(t *testing.T) {
	for _, schema := range []string{
		`"null"`, `"boolean"`, `"int"`, `"long"`, `"float"`, `"double"`, `"bytes"`, `"string"`,
		`{"type": "int", "logicalType": "date"}`,
		`{"type": "enum", "name": "E", "symbols": ["A"]}`,
		`{"type": "fixed", "name": "F", "size": 4}`,
		`{"type": "array", "items": "int"}`,
		`{"type": "map", "values": "int"}`,
		`["null", "int"]`,
	} {
		t.Run(schema, func(t *testing.T) {
			s := mustParseAny(t, schema)
			if _, err := Parse(schema); err == nil {
				t.Errorf("Parse(%s) succeeded; an event schema must be a record", schema)
			}
			if s.Text() != schema {
				t.Errorf("Text() = %s, want %s", s.Text(), schema)
			}
		})
	}
}

func TestParseIgnoresInvalidLogicalTypes(t *testing.T) {
	// The specification: implementations must ignore unknown logical types
	// and should ignore invalid ones, using the underlying type.
	tests := []struct {
		name, typ, input, wantJSON string
	}{
		{"an unknown logical type", `{"type": "long", "logicalType": "nanos-since-lunch"}`, `5`, `5`},
		{"a date on a long", `{"type": "long", "logicalType": "date"}`, `5`, `5`},
		{"a timestamp on an int", `{"type": "int", "logicalType": "timestamp-millis"}`, `5`, `5`},
		{"a decimal on a string", `{"type": "string", "logicalType": "decimal", "precision": 4}`, `"x"`, `"x"`},
		{"a decimal whose precision a fixed cannot hold", `{"type": "fixed", "name": "F", "size": 1, "logicalType": "decimal", "precision": 3}`, `"AQ=="`, `"AQ=="`},
		{"a duration on a fixed of 8 bytes", `{"type": "fixed", "name": "F", "size": 8, "logicalType": "duration"}`, `"AAAAAAAAAAA="`, `"AAAAAAAAAAA="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, `{"type": "record", "name": "R", "fields": [{"name": "v", "type": `+tt.typ+`}]}`)
			bin := mustFromJSON(t, s, `{"v": `+tt.input+`}`)
			got, err := s.ToJSON(bin)
			if want := `{"v":` + tt.wantJSON + `}`; err != nil || string(got) != want {
				t.Errorf("ToJSON = %s, %v, want %s", got, err, want)
			}
		})
	}
}

func TestSchemaIsSafeForConcurrentUse(t *testing.T) {
	v1, v2 := orderSchema(t, "OrderItemAdded.avsc"), orderSchema(t, "OrderItemAdded.v2.avsc")
	r, err := NewResolver(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	input := []byte(`{"orderId": "o1", "itemId": "i1", "quantity": 2, "price": "15.99", "timestamp": "2023-10-27T10:00:00Z"}`)
	want, err := v1.FromJSON(input)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*100)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				bin, err := v1.FromJSON(input)
				if err != nil || string(bin) != string(want) {
					errs <- fmt.Errorf("FromJSON = %x, %v, want %x", bin, err, want)
					continue
				}
				if _, err := r.Decode(bin); err != nil {
					errs <- err
				}
				if _, err := r.ToJSON(bin); err != nil {
					errs <- err
				}
				if _, err := v1.Decode(bin); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
}
