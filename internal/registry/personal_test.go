package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/registry"
)

const (
	contactSubject = "example.crm.ContactAdded"
	// contactV1 has no personal field; v2 marks email; v3 adds an
	// optional personal phone; v4 removes the phone again and adds a field.
	contactV1 = `{"type": "record", "name": "ContactAdded", "namespace": "example.crm", "fields": [
		{"name": "contactId", "type": "string"}, {"name": "email", "type": "string"}]}`
	contactV2 = `{"type": "record", "name": "ContactAdded", "namespace": "example.crm", "strata.dataSubject": "contactId", "fields": [
		{"name": "contactId", "type": "string"}, {"name": "email", "type": "string", "strata.personal": true}]}`
	contactV3 = `{"type": "record", "name": "ContactAdded", "namespace": "example.crm", "strata.dataSubject": "contactId", "fields": [
		{"name": "contactId", "type": "string"}, {"name": "email", "type": "string", "strata.personal": true},
		{"name": "phone", "type": ["null", "string"], "default": null, "strata.personal": true}]}`
	contactV4 = `{"type": "record", "name": "ContactAdded", "namespace": "example.crm", "strata.dataSubject": "contactId", "fields": [
		{"name": "contactId", "type": "string"}, {"name": "email", "type": "string", "strata.personal": true},
		{"name": "source", "type": "string", "default": "web"}]}`
)

// The schema evolution rules hold with personal fields: marking a field,
// adding or removing an optional personal one, are compatible versions;
// every event reads in the latest shape, decrypted where it was written
// encrypted, and erased alike whatever version wrote it.
func TestPersonalFieldsEvolve(t *testing.T) {
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	cipher := personal.NewCipher(&personal.MemoryKeys{}, personal.Options{})
	type written struct {
		fp  eventstore.Fingerprint
		bin []byte
	}
	var events []written
	write := func(schema, data string) {
		t.Helper()
		mustRegister(t, reg, contactSubject, schema)
		cat := registry.NewCatalog(reg, registry.CatalogOptions{Personal: cipher})
		var meta eventstore.Metadata
		fp, bin, err := cat.Encode(ctx, "ContactAdded", []byte(data), &meta)
		if err != nil {
			t.Fatalf("Encode(%s) with %s: %v", data, schema, err)
		}
		if strings.Contains(string(bin), "@") != (schema == contactV1) {
			t.Errorf("the email written with %s is stored as %q", schema, bin)
		}
		events = append(events, written{fp, bin})
	}
	write(contactV1, `{"contactId": "c-1", "email": "one@example.org"}`)
	write(contactV2, `{"contactId": "c-1", "email": "two@example.org"}`)
	write(contactV3, `{"contactId": "c-1", "email": "three@example.org", "phone": "555-0100"}`)
	write(contactV3, `{"contactId": "c-2", "email": "other@example.org", "phone": null}`)
	write(contactV4, `{"contactId": "c-1", "email": "four@example.org", "source": "shop"}`)
	if versions := len(mustVersions(t, reg, contactSubject)); versions != 4 {
		t.Fatalf("%d versions registered, want 4: marking a field personal makes a version of its own", versions)
	}

	read := func() []string {
		cat := registry.NewCatalog(reg, registry.CatalogOptions{Personal: cipher})
		var out []string
		for _, e := range events {
			js, _, err := cat.Decode(ctx, "ContactAdded", e.fp, e.bin)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			out = append(out, string(js))
		}
		return out
	}
	want := []string{
		`{"contactId":"c-1","email":"one@example.org","source":"web"}`, // plaintext: written before the field was marked
		`{"contactId":"c-1","email":"two@example.org","source":"web"}`,
		`{"contactId":"c-1","email":"three@example.org","source":"web"}`, // the latest shape has no phone
		`{"contactId":"c-2","email":"other@example.org","source":"web"}`,
		`{"contactId":"c-1","email":"four@example.org","source":"shop"}`,
	}
	if got := read(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the events read as the latest version:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := cipher.Destroy(ctx, "c-1"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2, 4} {
		want[i] = strings.Replace(want[i], want[i][strings.Index(want[i], `"email":`):strings.Index(want[i], `,"source"`)], `"email":"[erased]"`, 1)
	}
	if got := read(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after c-1's erasure the events read:\n%s\nwant\n%s (the first was never encrypted)", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTheRegistryRefusesAMisplacedPersonalProperty(t *testing.T) {
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	_, err := reg.Register(ctx, "example.crm.Scored", `{"type": "record", "name": "Scored", "namespace": "example.crm", "fields": [
		{"name": "score", "type": "int", "strata.personal": true}]}`)
	var re *registry.Error
	if !errors.As(err, &re) || re.Code != registry.CodeInvalidSchema ||
		!strings.Contains(err.Error(), `field "score": strata.personal applies to string and bytes fields (or a union of null with one), not to int`) {
		t.Errorf("registering a personal int = %v, want invalid_schema naming the field and the rule", err)
	}
}

func mustVersions(t *testing.T, reg *registry.Registry, subject string) []int {
	t.Helper()
	v, err := reg.Versions(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
