package registry_test

import (
	"testing"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/registry"
)

// The catalog's hot paths beside the codec alone: what the catalog adds
// per event is a map look-up, no lock and no allocation.
//
//	go test -run '^$' -bench Catalog -benchmem ./internal/registry/
func BenchmarkCatalog(b *testing.B) {
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	v1 := mustRegister(b, reg, itemSubject, schemaFile(b, "OrderItemAdded.avsc"))
	cat := registry.NewCatalog(reg, registry.CatalogOptions{})
	fp, bin, err := cat.Encode(ctx, "OrderItemAdded", []byte(itemJSON), nil)
	if err != nil {
		b.Fatal(err)
	}
	mustRegister(b, reg, itemSubject, schemaFile(b, "OrderItemAdded.v2.avsc"))
	s1, _ := avro.Parse(schemaFile(b, "OrderItemAdded.avsc"))
	s2, _ := avro.Parse(schemaFile(b, "OrderItemAdded.v2.avsc"))
	res, _ := avro.NewResolver(s1, s2)
	data := []byte(itemJSON)

	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := cat.Encode(ctx, "OrderItemAdded", data, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FromJSONAlone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s2.FromJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeUpcast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, id, err := cat.Decode(ctx, "OrderItemAdded", fp, bin); err != nil || id != v1.ID {
				b.Fatal(err)
			}
		}
	})
	b.Run("ResolverToJSONAlone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := res.ToJSON(bin); err != nil {
				b.Fatal(err)
			}
		}
	})
}
