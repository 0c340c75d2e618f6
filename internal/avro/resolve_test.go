package avro

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const itemJSON = `{"orderId": "a1b2c3d4", "itemId": "sku-42", "quantity": 3, "price": "15.99", "timestamp": "2023-10-27T10:00:00Z"}`

func TestResolverReadsOrderItemAddedV1AsV2(t *testing.T) {
	v1, v2 := orderSchema(t, "OrderItemAdded.avsc"), orderSchema(t, "OrderItemAdded.v2.avsc")
	r, bin := resolverFor(t, v1, v2, itemJSON)
	got, err := r.Decode(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"orderId": "a1b2c3d4", "itemId": "sku-42", "quantity": int32(3),
		"price": NewDecimalInt64(1599, 2), "timestamp": time.Date(2023, 10, 27, 10, 0, 0, 0, time.UTC), "currency": "USD"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Decimal{})); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	js, err := r.ToJSON(bin)
	wantJSON := `{"orderId":"a1b2c3d4","itemId":"sku-42","quantity":3,"price":"15.99","timestamp":"2023-10-27T10:00:00Z","currency":"USD"}`
	if err != nil || string(js) != wantJSON {
		t.Errorf("ToJSON = %s, %v, want %s", js, err, wantJSON)
	}
	v2bin, err := r.Transcode(bin)
	if err != nil {
		t.Fatal(err)
	}
	if fromV2, err := v2.FromJSON([]byte(wantJSON)); err != nil || string(fromV2) != string(v2bin) {
		t.Errorf("Transcode = %x, want v2's encoding %x (%v)", v2bin, fromV2, err)
	}
	// And back: v1 reads v2 data by skipping the currency.
	back, err := NewResolver(v2, v1)
	if err != nil {
		t.Fatal(err)
	}
	if v1bin, err := back.Transcode(v2bin); err != nil || string(v1bin) != string(bin) {
		t.Errorf("v2 → v1 Transcode = %x, %v, want %x", v1bin, err, bin)
	}
}

func TestResolverReordersFields(t *testing.T) {
	w := mustParse(t, `{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}, {"name": "gone", "type": "string"}, {"name": "b", "type": "string"}]}`)
	r := mustParse(t, `{"type": "record", "name": "R", "fields": [{"name": "new", "type": "long", "default": 7}, {"name": "b", "type": "string"}, {"name": "a", "type": "long"}]}`)
	res, bin := resolverFor(t, w, r, `{"a": 1, "gone": "x", "b": "y"}`)
	js, err := res.ToJSON(bin)
	if want := `{"new":7,"b":"y","a":1}`; err != nil || string(js) != want {
		t.Errorf("ToJSON = %s, %v, want %s", js, err, want)
	}
	out, err := res.Transcode(bin)
	if want, _ := r.FromJSON(js); err != nil || string(out) != string(want) {
		t.Errorf("Transcode = %x, %v, want %x", out, err, want)
	}
}

func TestResolverFailsOnlyTheDataItCannotRead(t *testing.T) {
	w := mustParse(t, `{"type": "record", "name": "R", "fields": [
		{"name": "items", "type": {"type": "array", "items": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}}},
		{"name": "v", "type": ["null", "string", "int"]}]}`)
	r := mustParse(t, `{"type": "record", "name": "R", "fields": [
		{"name": "items", "type": {"type": "array", "items": {"type": "enum", "name": "E", "symbols": ["A", "B"]}}},
		{"name": "v", "type": ["null", "string"]}]}`)
	res, err := NewResolver(w, r)
	if err != nil {
		t.Fatalf("NewResolver = %v, want success: only some data is unreadable", err)
	}
	if err := CheckCompatibility(r, w); !errors.Is(err, ErrIncompatible) {
		t.Errorf("CheckCompatibility = %v, want incompatible for all data", err)
	}
	tests := []struct {
		name, input, path, message string
	}{
		{"data it can read", `{"items": ["A", "B"], "v": "x"}`, "", ""},
		{"a symbol the reader lacks", `{"items": ["A", "B", "C"], "v": null}`, "items[2]", "symbol C is not in the reader's enum E, which has no default"},
		{"a union branch the reader lacks", `{"items": [], "v": 5}`, "v", "the writer's int branch has no match in the reader's union"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := mustFromJSON(t, w, tt.input)
			_, err = res.Decode(bin)
			if tt.message == "" {
				if err != nil {
					t.Errorf("Decode = %v", err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Path != tt.path || de.Message != tt.message {
				t.Errorf("Decode = %v, want %s: %s", err, tt.path, tt.message)
			}
			if _, err := res.ToJSON(bin); !errors.Is(err, ErrDecode) {
				t.Errorf("ToJSON = %v, want an ErrDecode", err)
			}
			if _, err := res.Transcode(bin); !errors.Is(err, ErrDecode) {
				t.Errorf("Transcode = %v, want an ErrDecode", err)
			}
		})
	}
}

func TestNewResolverRejectsWhatNoDatumSurvives(t *testing.T) {
	v1 := orderSchema(t, "OrderItemAdded.avsc")
	noDefault := mustParse(t, strings.Replace(orderSchema(t, "OrderItemAdded.v2.avsc").Text(), `"default": "USD",`, "", 1))
	_, err := NewResolver(v1, noDefault)
	var ce *CompatibilityError
	if !errors.As(err, &ce) || !errors.Is(err, ErrIncompatible) {
		t.Fatalf("NewResolver = %v, want a *CompatibilityError", err)
	}
	want := []Incompatibility{{Type: ReaderFieldMissingDefaultValue, Location: "/fields/5", Message: "currency"}}
	if diff := cmp.Diff(want, ce.Incompatibilities); diff != "" {
		t.Errorf("incompatibilities (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "READER_FIELD_MISSING_DEFAULT_VALUE at /fields/5: currency") {
		t.Errorf("error = %q, want the incompatibility spelled out", err)
	}
}

func TestResolverFallsBackToTheUnderlyingTypeWhenLogicalTypesDiffer(t *testing.T) {
	field := func(typ string) *Schema {
		return mustParse(t, `{"type": "record", "name": "R", "fields": [{"name": "v", "type": `+typ+`}]}`)
	}
	tests := []struct {
		name, writer, reader, input string
		want                        any
		wantJSON                    string
	}{
		{"a decimal of another scale gives its bytes",
			`{"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}`,
			`{"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 3}`,
			`"1.50"`, []byte{0x00, 0x96}, `"AJY="`},
		{"a decimal of another precision gives its bytes",
			`{"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}`,
			`{"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}`,
			`"1.50"`, []byte{0x00, 0x96}, `"AJY="`},
		{"the same decimal stays a decimal",
			`{"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}`,
			`{"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}`,
			`"1.50"`, NewDecimalInt64(150, 2), `"1.50"`},
		{"a plain long read as a timestamp stays a long",
			`"long"`, `{"type": "long", "logicalType": "timestamp-millis"}`, `5`, int64(5), `5`},
		{"millis read as micros stay a long",
			`{"type": "long", "logicalType": "timestamp-millis"}`, `{"type": "long", "logicalType": "timestamp-micros"}`,
			`1000`, int64(1000), `1000`},
		{"a date promoted to long is a long", `{"type": "int", "logicalType": "date"}`, `"long"`, `"1970-01-02"`, int64(1), `1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, bin := resolverFor(t, field(tt.writer), field(tt.reader), `{"v": `+tt.input+`}`)
			got, err := res.Decode(bin)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.(map[string]any)["v"], cmp.AllowUnexported(Decimal{})); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
			if js, err := res.ToJSON(bin); err != nil || string(js) != `{"v":`+tt.wantJSON+`}` {
				t.Errorf("ToJSON = %s, %v, want {\"v\":%s}", js, err, tt.wantJSON)
			}
		})
	}
}

func TestResolverHandlesRecursiveTypes(t *testing.T) {
	w := mustParse(t, `{"type": "record", "name": "Node", "fields": [{"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"]}]}`)
	r := mustParse(t, `{"type": "record", "name": "Node", "fields": [{"name": "v", "type": "double"}, {"name": "next", "type": ["null", "Node"]}, {"name": "tag", "type": "string", "default": "-"}]}`)
	res, bin := resolverFor(t, w, r, `{"v": 1, "next": {"v": 2, "next": {"v": 3, "next": null}}}`)
	js, err := res.ToJSON(bin)
	want := `{"v":1,"next":{"v":2,"next":{"v":3,"next":null,"tag":"-"},"tag":"-"},"tag":"-"}`
	if err != nil || string(js) != want {
		t.Errorf("ToJSON = %s, %v, want %s", js, err, want)
	}
}
