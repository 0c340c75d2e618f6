package registry_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/registry"
)

func TestRegistryRules(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tests := []struct {
				name       string
				level      string // global level, "" for the default
				subject    string
				schema     string
				wantCode   int
				wantInText []string
			}{
				{"a compatible new version is registered", "", itemSubject, schemaFile(t, "OrderItemAdded.v2.avsc"), 0, nil},
				{"a field added without a default breaks FULL_TRANSITIVE", "", itemSubject, itemV3NoDefault,
					registry.CodeIncompatibleSchema, []string{"READER_FIELD_MISSING_DEFAULT_VALUE", "discount", "FULL_TRANSITIVE"}},
				{"a changed field type breaks it too", "", itemSubject, itemQuantityString,
					registry.CodeIncompatibleSchema, []string{"TYPE_MISMATCH", "/fields/2"}},
				{"level NONE lets an incompatible version through", "NONE", itemSubject, itemQuantityString, 0, nil},
				{"an event type is unique across namespaces", "", "example.returns.OrderItemAdded", otherItemAdded,
					registry.CodeInvalidSchema, []string{"OrderItemAdded", "already registered", itemSubject}},
				{"a record-name subject takes only its own record", "NONE", itemSubject, schemaFile(t, "OrderCreated.avsc"),
					registry.CodeInvalidSchema, []string{"record-name strategy", "example.orders.OrderCreated"}},
				{"another subject may hold any schema, as in Confluent's registry", "", "orders-value", schemaFile(t, "OrderCreated.avsc"), 0, nil},
				{"a key schema need not be a record", "", "orders-key", `"string"`, 0, nil},
				{"text that is not Avro is an invalid schema", "", "orders-value", `{"type": "record"}`, registry.CodeInvalidSchema, []string{"Invalid schema"}},
				{"an empty subject is invalid", "", "", schemaFile(t, "OrderCreated.avsc"), registry.CodeInvalidSubject, nil},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					reg := registry.New(b.new(t), registry.Options{})
					mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.avsc"))
					if tt.level != "" {
						if _, err := reg.SetLevel(ctx, "", tt.level); err != nil {
							t.Fatal(err)
						}
					}
					_, err := reg.Register(ctx, tt.subject, tt.schema)
					if code := registry.Code(err); code != tt.wantCode {
						t.Fatalf("Register(%s) = %v (code %d), want code %d", tt.subject, err, code, tt.wantCode)
					}
					if err != nil && !contains(err.Error(), tt.wantInText...) {
						t.Errorf("Register(%s) = %q, want it to mention %q", tt.subject, err, tt.wantInText)
					}
				})
			}
		})
	}
}

func TestRegistryLookUps(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			reg := registry.New(b.new(t), registry.Options{})
			v1, v2 := schemaFile(t, "OrderItemAdded.avsc"), schemaFile(t, "OrderItemAdded.v2.avsc")
			first := mustRegister(t, reg, itemSubject, v1)
			again := mustRegister(t, reg, itemSubject, v1)
			second := mustRegister(t, reg, itemSubject, v2)
			shared := mustRegister(t, reg, "items-value", v1)
			want := []registry.Registration{
				{Subject: itemSubject, Version: 1, ID: 1, New: true},
				{Subject: itemSubject, Version: 1, ID: 1},
				{Subject: itemSubject, Version: 2, ID: 2, New: true},
				{Subject: "items-value", Version: 1, ID: 1, New: true},
			}
			if diff := cmp.Diff(want, []registry.Registration{first, again, second, shared}); diff != "" {
				t.Errorf("registrations (-want +got):\n%s", diff)
			}
			latest, err := reg.Version(ctx, itemSubject, registry.Latest)
			if err != nil || latest != (registry.SubjectSchema{Subject: itemSubject, Version: 2, ID: 2, Schema: v2}) {
				t.Errorf("latest = %+v, %v; want version 2", latest, err)
			}
			found, err := reg.Lookup(ctx, "items-value", v1)
			if err != nil || found.Version != 1 || found.ID != 1 {
				t.Errorf("Lookup = %+v, %v", found, err)
			}
			if _, err := reg.Lookup(ctx, "items-value", v2); registry.Code(err) != registry.CodeSchemaNotFound {
				t.Errorf("Lookup of a schema the subject lacks = %v, want 40403", err)
			}
			where, err := reg.SchemaVersions(ctx, 1)
			if err != nil || len(where) != 2 {
				t.Errorf("SchemaVersions(1) = %+v, %v; want both subjects", where, err)
			}
			if level, err := reg.Level(ctx, itemSubject, true); err != nil || level != avro.LevelFullTransitive {
				t.Errorf("Level(defaultToGlobal) = %v, %v; want the default FULL_TRANSITIVE", level, err)
			}
			if _, err := reg.Level(ctx, itemSubject, false); registry.Code(err) != registry.CodeSubjectCompatibilityNotConfigured {
				t.Errorf("Level of a subject without one = %v, want 40408", err)
			}
		})
	}
}

func TestApply(t *testing.T) {
	files, err := registry.ReadSchemaDir(schemasDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			reg := registry.New(b.new(t), registry.Options{})
			plan, err := reg.Apply(ctx, files, true)
			if err != nil || len(plan) != 4 || !plan[2].New || plan[2].Version != 2 {
				t.Fatalf("dry run = %+v, %v; want four new versions, OrderItemAdded.v2 as version 2", plan, err)
			}
			if subjects, _ := reg.Subjects(ctx); len(subjects) != 0 {
				t.Fatalf("subjects after a dry run = %v, want none", subjects)
			}
			applied, err := reg.Apply(ctx, files, false)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(plan, applied, cmp.Comparer(func(a, b *avro.Schema) bool { return a == b })); diff != "" {
				t.Errorf("applied differs from the dry run's plan (-plan +applied):\n%s", diff)
			}
			again, err := reg.Apply(ctx, files, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range again {
				if a.New {
					t.Errorf("second apply registered %s again", a.File.Path)
				}
			}

			dir := t.TempDir()
			for _, f := range files {
				copyFile(t, f.Path, filepath.Join(dir, filepath.Base(f.Path)))
			}
			os.WriteFile(filepath.Join(dir, "OrderItemAdded.v3.avsc"), []byte(itemV3NoDefault), 0o644)
			withV3, err := registry.ReadSchemaDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = reg.Apply(ctx, withV3, false)
			if registry.Code(err) != registry.CodeIncompatibleSchema || !contains(err.Error(), "OrderItemAdded.v3.avsc", "READER_FIELD_MISSING_DEFAULT_VALUE") {
				t.Errorf("Apply with an incompatible v3 = %v; want 409 naming the file and the rule", err)
			}
			if versions, _ := reg.Versions(ctx, itemSubject); len(versions) != 2 {
				t.Errorf("versions after the refused apply = %v, want 2", versions)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadSchemaDir(t *testing.T) {
	files, err := registry.ReadSchemaDir(schemasDir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f.Path)+" "+f.Subject())
	}
	want := []string{
		"OrderCreated.avsc example.orders.OrderCreated",
		"OrderItemAdded.avsc example.orders.OrderItemAdded",
		"OrderItemAdded.v2.avsc example.orders.OrderItemAdded",
		"OrderShipped.avsc example.orders.OrderShipped",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadSchemaDir (-want +got):\n%s", diff)
	}

	created := schemaFile(t, "OrderCreated.avsc")
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"a file named for another record is refused", map[string]string{"Created.avsc": created},
			[]string{"Created.avsc", "holds the record example.orders.OrderCreated", "OrderCreated.avsc"}},
		{"version 1 has no suffix", map[string]string{"OrderCreated.v1.avsc": created}, []string{"{Name}.vN.avsc"}},
		{"a version must be a number", map[string]string{"OrderCreated.vx.avsc": created}, []string{"OrderCreated.vx.avsc"}},
		{"a schema that is not a record is refused", map[string]string{"Name.avsc": `"string"`}, []string{"record"}},
		{"versions of one name keep one namespace", map[string]string{"OrderItemAdded.avsc": schemaFile(t, "OrderItemAdded.avsc"),
			"OrderItemAdded.v2.avsc": otherItemAdded}, []string{"one namespace"}},
		{"an empty directory is refused", map[string]string{}, []string{"no .avsc files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := registry.ReadSchemaDir(dir)
			if err == nil || !contains(err.Error(), tt.want...) {
				t.Errorf("ReadSchemaDir = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	// Numbers sort as numbers: v10 comes after v9.
	dir := t.TempDir()
	for _, v := range []string{"", ".v9", ".v10"} {
		copyFile(t, filepath.Join(schemasDir, "OrderCreated.avsc"), filepath.Join(dir, "OrderCreated"+v+".avsc"))
	}
	files, err = registry.ReadSchemaDir(dir)
	if err != nil || len(files) != 3 || files[1].Version != 9 || files[2].Version != 10 {
		t.Errorf("ReadSchemaDir of v1, v9, v10 = %+v, %v; want them in number order", files, err)
	}
}
