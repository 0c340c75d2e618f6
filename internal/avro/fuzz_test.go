package avro

import (
	"bytes"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// fuzzSchemas are the schemas the fuzz targets pick from with their first
// byte. The last one has unions whose native values can be ambiguous (a
// record and a map in one union both decode to map[string]any), so only the
// others are held to Encode(Decode(b)) == b.
var fuzzSchemas = [...]string{
	everyType,
	`{"type": "record", "name": "OrderItemAdded", "namespace": "example.orders", "fields": [
		{"name": "orderId", "type": "string"}, {"name": "itemId", "type": "string"}, {"name": "quantity", "type": "int"},
		{"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
		{"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}},
		{"name": "currency", "type": "string", "default": "USD"}]}`,
	`{"type": "record", "name": "U", "fields": [
		{"name": "u", "type": ["null", "int", "long", "string", "bytes", {"type": "array", "items": "double"},
			{"type": "record", "name": "P", "fields": [{"name": "x", "type": ["null", "float"], "default": null}]}]},
		{"name": "m", "type": {"type": "map", "values": ["null", "P", {"type": "map", "values": "boolean"}]}, "default": {}},
		{"name": "d", "type": ["null", {"type": "fixed", "name": "D", "size": 3, "logicalType": "decimal", "precision": 6, "scale": 3}], "default": null},
		{"name": "t", "type": ["null", {"type": "int", "logicalType": "date"}, {"type": "long", "logicalType": "timestamp-micros"}], "default": null},
		{"name": "next", "type": ["null", "U"], "default": null}]}`,
}

func fuzzSeeds(f *testing.F) {
	for _, seed := range []struct {
		schema byte
		json   string
	}{
		{0, everyValue},
		{1, itemJSON},
		{1, `{"orderId": "", "itemId": "\u0000", "quantity": -2147483648, "price": -9999999999999999.99, "timestamp": -1, "currency": "EUR"}`},
		{1, `{"orderId": "a", "itemId": "b", "quantity": 1e2, "price": "1.5e-2", "timestamp": "1969-12-31T23:59:59.999-01:00"}`},
		{2, `{"u": null}`},
		{2, `{"u": {"long": 5}, "m": {"a": {"x": 1.5}, "b": {"map": {"t": true}}, "c": null}}`},
		{2, `{"u": "aGk=", "d": "-8.388", "t": {"date": 1}}`},
		{2, `{"u": [1, "NaN", -0.0, 1e308], "t": "2023-10-27T10:00:00.000001Z", "next": {"u": {"x": null}}}`},
		{2, `{"u": {"P": {}}, "m": {"k": {"map": {}}}}`},
	} {
		f.Add(append([]byte{seed.schema}, seed.json...))
	}
}

// FuzzFromJSON checks that FromJSON never panics, and that whatever it
// accepts is valid Avro (goavro decodes it) that round-trips exactly through
// ToJSON → FromJSON and through Decode → Encode.
func FuzzFromJSON(f *testing.F) {
	fuzzSeeds(f)
	schemas := make([]*Schema, len(fuzzSchemas))
	codecs := make([]*goavro.Codec, len(fuzzSchemas))
	for i, text := range fuzzSchemas {
		schemas[i] = mustParse(f, text)
		c, err := goavro.NewCodec(text)
		if err != nil {
			f.Fatal(err)
		}
		codecs[i] = c
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		i := int(data[0]) % len(schemas)
		s, input := schemas[i], data[1:]
		bin, err := s.FromJSON(input)
		if err != nil {
			return
		}
		if _, rest, err := codecs[i].NativeFromBinary(bin); err != nil || len(rest) != 0 {
			t.Fatalf("goavro cannot decode FromJSON(%s) = %x: %v (%d bytes left)", input, bin, err, len(rest))
		}
		out, err := s.ToJSON(bin)
		if err != nil {
			t.Fatalf("ToJSON(FromJSON(%s)) = %v", input, err)
		}
		again, err := s.FromJSON(out)
		if err != nil || !bytes.Equal(again, bin) {
			t.Fatalf("FromJSON(ToJSON(FromJSON(%s))):\n ToJSON = %s\n got  %x, %v\n want %x", input, out, again, err, bin)
		}
		native, err := s.Decode(bin)
		if err != nil {
			t.Fatalf("Decode(%x) = %v", bin, err)
		}
		if enc, err := s.Encode(native); i < len(schemas)-1 && (err != nil || !bytes.Equal(enc, bin)) {
			t.Fatalf("Encode(Decode(%x)) = %x, %v", bin, enc, err)
		}
	})
}

// FuzzDecode checks that arbitrary bytes never make Decode, ToJSON or a
// resolving Transcode panic, and that Decode and ToJSON agree on what is valid.
func FuzzDecode(f *testing.F) {
	schemas := make([]*Schema, len(fuzzSchemas))
	for i, text := range fuzzSchemas {
		schemas[i] = mustParse(f, text)
	}
	for i, text := range []string{everyValue, itemJSON} {
		bin, err := schemas[i].FromJSON([]byte(text))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{byte(i)}, bin...))
	}
	f.Add([]byte{2, 0x0c, 0x04, 0x02, 0x06, 0x00})
	v1 := mustParse(f, `{"type": "record", "name": "OrderItemAdded", "namespace": "example.orders", "fields": [
		{"name": "orderId", "type": "string"}, {"name": "itemId", "type": "string"}, {"name": "quantity", "type": "int"},
		{"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
		{"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}`)
	up, err := NewResolver(v1, schemas[1])
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		s, bin := schemas[int(data[0])%len(schemas)], data[1:]
		_, decodeErr := s.Decode(bin)
		_, jsonErr := s.ToJSON(bin)
		if (decodeErr == nil) != (jsonErr == nil) {
			t.Fatalf("Decode(%x) = %v but ToJSON = %v", bin, decodeErr, jsonErr)
		}
		if out, err := up.Transcode(bin); err == nil {
			if _, err := schemas[1].Decode(out); err != nil {
				t.Fatalf("Transcode(%x) = %x, which v2 cannot decode: %v", bin, out, err)
			}
		}
	})
}
