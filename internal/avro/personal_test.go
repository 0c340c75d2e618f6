package avro

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// customer has personal fields at every depth: a plain string, an optional
// one, bytes, and strings inside a nested record, an array and a map.
const customer = `{"type": "record", "name": "CustomerRegistered", "strata.dataSubject": "customerId", "fields": [
	{"name": "customerId", "type": "string"},
	{"name": "name", "type": "string", "strata.personal": true},
	{"name": "phone", "type": ["null", "string"], "strata.personal": true, "default": null},
	{"name": "photo", "type": "bytes", "strata.personal": true},
	{"name": "address", "type": {"type": "record", "name": "Address", "fields": [
		{"name": "street", "type": "string", "strata.personal": true},
		{"name": "country", "type": "string"}]}},
	{"name": "emails", "type": {"type": "array", "items": {"type": "record", "name": "Email", "fields": [
		{"name": "address", "type": "string", "strata.personal": true}, {"name": "verified", "type": "boolean"}]}}},
	{"name": "notes", "type": {"type": "map", "values": ["null", "Address"]}},
	{"name": "tier", "type": "int"}]}`

func TestPersonalPropertiesAreCheckedAtParseTime(t *testing.T) {
	field := func(typ, extra string) string {
		return `{"type": "record", "name": "R", "fields": [{"name": "id", "type": "string"}, {"name": "f", "type": ` + typ + extra + `}]}`
	}
	for _, typ := range []string{`"string"`, `"bytes"`, `["null", "string"]`, `["bytes", "null"]`} {
		s := mustParse(t, field(typ, `, "strata.personal": true`))
		if !s.HasPersonal() || !cmp.Equal(s.PersonalFields(), []string{"f"}) {
			t.Errorf("a personal %s field: HasPersonal %v, PersonalFields %v, want true, [f]", typ, s.HasPersonal(), s.PersonalFields())
		}
	}
	if s := mustParse(t, field(`"string"`, `, "strata.personal": false`)); s.HasPersonal() {
		t.Error(`"strata.personal": false marks the field personal`)
	}
	for _, tc := range []struct{ schema, want string }{
		{field(`"int"`, `, "strata.personal": true`), `record R field "f": strata.personal applies to string and bytes fields (or a union of null with one), not to int`},
		{field(`{"type": "string", "logicalType": "uuid"}`, `, "strata.personal": true`), `not to uuid`},
		{field(`["string", "int"]`, `, "strata.personal": true`), `not to a union of string, int`},
		{field(`{"type": "record", "name": "A", "fields": []}`, `, "strata.personal": true`), `not to record A`},
		{field(`{"type": "array", "items": "string"}`, `, "strata.personal": true`), `not to array`},
		{field(`"string"`, `, "strata.personal": "yes"`), `strata.personal must be true or false, got string`},
		{`{"type": "record", "name": "R", "strata.dataSubject": "who", "fields": [{"name": "id", "type": "string"}]}`,
			`record R: strata.dataSubject names "who", which is not one of its fields`},
		{`{"type": "record", "name": "R", "strata.dataSubject": "n", "fields": [{"name": "n", "type": "long"}]}`,
			`names field "n", a long; the data subject must be a string field`},
		{`{"type": "record", "name": "R", "strata.dataSubject": "n", "fields": [{"name": "n", "type": "string", "strata.personal": true}]}`,
			`names field "n", which is personal`},
		{`{"type": "record", "name": "R", "strata.dataSubject": 7, "fields": [{"name": "n", "type": "string"}]}`,
			`strata.dataSubject must name one of its fields, got`},
	} {
		_, err := Parse(tc.schema)
		if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want ErrInvalidSchema saying %q", tc.schema, err, tc.want)
		}
	}
}

func TestPersonalPropertiesAreInTheCanonicalForm(t *testing.T) {
	marked := mustParse(t, customer)
	plain := mustParse(t, strings.NewReplacer(`, "strata.personal": true`, "", `"strata.dataSubject": "customerId", `, "").Replace(customer))
	if plain.HasPersonal() || strings.Contains(plain.Canonical(), "strata") {
		t.Fatalf("the unmarked schema has personal fields or a strata property in %s", plain.Canonical())
	}
	if marked.Fingerprint() == plain.Fingerprint() {
		t.Error("marking fields personal keeps the fingerprint: encrypted and plaintext data would share a writer schema")
	}
	for _, want := range []string{`{"name":"name","type":"string","strata.personal":true}`, `],"strata.dataSubject":"customerId"}`,
		`{"name":"country","type":"string"}`} {
		if !strings.Contains(marked.Canonical(), want) {
			t.Errorf("canonical form %s lacks %s", marked.Canonical(), want)
		}
	}
	want := []string{"name", "phone", "photo", "address.street", "emails[].address", "notes{}.street"}
	if got := marked.PersonalFields(); !cmp.Equal(got, want) {
		t.Errorf("PersonalFields() = %v, want %v", got, want)
	}
	if marked.DataSubjectField() != "customerId" || plain.DataSubjectField() != "" {
		t.Errorf("DataSubjectField() = %q and %q, want customerId and none", marked.DataSubjectField(), plain.DataSubjectField())
	}
}

func TestMapPersonalRewritesOnlyPersonalValues(t *testing.T) {
	s := mustParse(t, customer)
	in := `{"customerId": "c-1", "name": "Ada", "phone": "555", "photo": "AQI=",
		"address": {"street": "42 Secret Lane", "country": "UK"},
		"emails": [{"address": "ada@x.org", "verified": true}, {"address": "a@y.org", "verified": false}],
		"notes": {"home": {"street": "1 High St", "country": "FR"}, "none": null}, "tier": 3}`
	bin := mustFromJSON(t, s, in)
	var seen []string
	out, err := s.MapPersonal(bin, func(v []byte) ([]byte, error) {
		seen = append(seen, string(v))
		return append([]byte("<"+strings.Repeat("x", 200)+">"), v...), nil // longer than 127: lengths take two bytes
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Ada", "555", "\x01\x02", "42 Secret Lane", "ada@x.org", "a@y.org", "1 High St"}
	if !cmp.Equal(seen, want) {
		t.Errorf("MapPersonal saw %q, want %q", seen, want)
	}
	v, err := s.Decode(out)
	if err != nil {
		t.Fatalf("the rewritten data does not decode: %v", err)
	}
	rec := v.(map[string]any)
	pre := "<" + strings.Repeat("x", 200) + ">"
	if rec["name"] != pre+"Ada" || rec["customerId"] != "c-1" || rec["tier"] != int32(3) ||
		rec["address"].(map[string]any)["street"] != pre+"42 Secret Lane" || rec["address"].(map[string]any)["country"] != "UK" {
		t.Errorf("rewritten record = %v", rec)
	}
	back, err := s.MapPersonal(out, func(v []byte) ([]byte, error) { return bytes.TrimPrefix(v, []byte(pre)), nil })
	if err != nil || !bytes.Equal(back, bin) {
		t.Errorf("undoing the rewrite gives %x, %v; want the original %x", back, err, bin)
	}
	if subject, ok, err := s.DataSubject(out); subject != "c-1" || !ok || err != nil {
		t.Errorf("DataSubject = %q, %v, %v; want c-1", subject, ok, err)
	}

	t.Run("a bad replacement of a string, an error of the function and bad data are errors", func(t *testing.T) {
		if _, err := s.MapPersonal(bin, func([]byte) ([]byte, error) { return []byte{0xff}, nil }); err == nil || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("an invalid UTF-8 replacement gives %v", err)
		}
		boom := errors.New("boom")
		if _, err := s.MapPersonal(bin, func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Errorf("the function's error gives %v", err)
		}
		for _, bad := range [][]byte{bin[:len(bin)-1], append(bytes.Clone(bin), 0)} {
			if _, err := s.MapPersonal(bad, func(v []byte) ([]byte, error) { return v, nil }); !errors.Is(err, ErrDecode) {
				t.Errorf("MapPersonal(%x) = %v, want ErrDecode", bad, err)
			}
		}
	})

	t.Run("data of a schema without personal fields is returned as it is", func(t *testing.T) {
		plain := orderSchema(t, "OrderCreated.avsc")
		bin := mustFromJSON(t, plain, `{"orderId": "1", "customerId": "c", "timestamp": 1}`)
		out, err := plain.MapPersonal(bin, func([]byte) ([]byte, error) { t.Fatal("called"); return nil, nil })
		if err != nil || &out[0] != &bin[0] {
			t.Errorf("MapPersonal of a schema without personal fields copied or failed: %v", err)
		}
	})

	t.Run("a block that states its size is rewritten without it", func(t *testing.T) {
		arr := mustParse(t, `{"type": "record", "name": "R", "fields": [{"name": "a", "type": {"type": "array", "items": "string"}},
			{"name": "p", "type": {"type": "array", "items": {"type": "record", "name": "P", "fields": [{"name": "s", "type": "string", "strata.personal": true}]}}}]}`)
		// a: one sized block of ["z"]; p: a sized block of two records, then the end.
		sized := []byte{0x01, 0x04, 0x02, 'z', 0x00, 0x03, 0x08, 0x02, 'a', 0x02, 'b', 0x00}
		out, err := arr.MapPersonal(sized, func(v []byte) ([]byte, error) { return bytes.Repeat(v, 2), nil })
		if err != nil {
			t.Fatal(err)
		}
		v, err := arr.Decode(out)
		if err != nil {
			t.Fatalf("rewritten sized blocks do not decode: %v (%x)", err, out)
		}
		want := map[string]any{"a": []any{"z"}, "p": []any{map[string]any{"s": "aa"}, map[string]any{"s": "bb"}}}
		if diff := cmp.Diff(want, v); diff != "" {
			t.Errorf("rewritten sized blocks (-want +got):\n%s", diff)
		}
	})
}
