package registry_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/registry"
)

func newClient(t *testing.T, url string) *registry.Client {
	t.Helper()
	cl, err := registry.NewClient(url, registry.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestClientIsACatalogSource(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	fake.SeedSchema(itemSubject, 1, 7, avroSchema(schemaFile(t, "OrderItemAdded.avsc")))
	cat := registry.NewCatalog(newClient(t, fake.URL()), registry.CatalogOptions{})
	fp1, bin := encode(t, cat, "OrderItemAdded", itemJSON)

	fake.SeedSchema(itemSubject, 2, 9, avroSchema(schemaFile(t, "OrderItemAdded.v2.avsc")))
	if err := cat.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	out, id, err := cat.Decode(ctx, "OrderItemAdded", fp1, bin)
	if err != nil || string(out) != itemAsV2 || id != 7 {
		t.Errorf("Decode(v1 data) = %s, %d, %v; want %s written with schema 7", out, id, err, itemAsV2)
	}
	if plain, err := cat.DecodeWireJSON(ctx, 7, bin, ""); err != nil || string(plain) != itemAsV1 {
		t.Errorf("DecodeWireJSON(7) = %s, %v", plain, err)
	}
}

func TestClientApply(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	cl := newClient(t, fake.URL())
	files, err := registry.ReadSchemaDir(schemasDir)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cl.Apply(ctx, files, true)
	if err != nil || len(plan) != 4 || !plan[2].New || plan[2].Version != 2 || fake.SubjectExists(itemSubject) {
		t.Fatalf("dry run = %+v, %v; want four new versions and nothing registered", plan, err)
	}
	applied, err := cl.Apply(ctx, files, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range applied {
		got, ok := fake.GetSchema(a.Subject, a.Version)
		if !a.New || !ok || got.ID != a.ID || got.Schema.Schema != files[i].Schema.Text() {
			t.Errorf("%s applied as %+v; the registry holds %+v, %v", a.File.Path, a, got, ok)
		}
	}
	again, err := cl.Apply(ctx, files, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range again {
		if a.New || a.ID != applied[i].ID || a.Version != applied[i].Version {
			t.Errorf("second apply of %s = %+v; want it unchanged, as %+v", a.File.Path, a, applied[i])
		}
	}

	dir := t.TempDir()
	for _, f := range files {
		copyFile(t, f.Path, filepath.Join(dir, filepath.Base(f.Path)))
	}
	if err := os.WriteFile(filepath.Join(dir, "OrderItemAdded.v3.avsc"), []byte(itemQuantityString), 0o644); err != nil {
		t.Fatal(err)
	}
	withV3, err := registry.ReadSchemaDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Apply(ctx, withV3, false)
	if registry.Code(err) != registry.CodeIncompatibleSchema || !contains(err.Error(), "OrderItemAdded.v3.avsc", "TYPE_MISMATCH") {
		t.Errorf("Apply with an incompatible v3 = %v; want 409 naming the file and the rule", err)
	}
	if _, ok := fake.GetSchema(itemSubject, 3); ok {
		t.Errorf("the refused v3 was registered")
	}
}

func TestClientErrors(t *testing.T) {
	fake := srfake.New()
	cl := newClient(t, fake.URL())
	if _, err := cl.SchemaByID(ctx, 99); registry.Code(err) != registry.CodeSchemaNotFound {
		t.Errorf("SchemaByID(99) = %v; want 40403", err)
	}
	fake.Close()
	_, err := cl.Schemas(ctx)
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Schemas from a stopped registry = %v; want unavailable", err)
	}
	if _, err := registry.NewClient("localhost:8081", registry.ClientOptions{}); err == nil {
		t.Errorf("NewClient without a scheme succeeded")
	}
}
