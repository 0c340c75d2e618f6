package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
)

// copySchemas copies the repository's schemas into a directory of the
// test's own, with extra files added.
func copySchemas(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	paths, err := filepath.Glob("../../schemas/*.avsc")
	if err != nil || len(paths) != 4 {
		t.Fatalf("example schemas: %v, %v", paths, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		extra[filepath.Base(p)] = string(b)
	}
	for name, text := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// migratedEnv returns the settings of a migrated store of the test's own.
func migratedEnv(t *testing.T, schemasDir string) map[string]string {
	t.Helper()
	url, schema := harness.NewSchema(t)
	env := map[string]string{"STRATA_DATABASE_URL": url, "STRATA_DATABASE_SCHEMA": schema, "STRATA_SCHEMAS_DIR": schemasDir}
	if _, _, err := runWriter(t, env, "migrate"); err != nil {
		t.Fatal(err)
	}
	return env
}

// versionsOf reads a subject's versions from the store's registry.
func versionsOf(t *testing.T, env map[string]string, subject string) []int {
	t.Helper()
	store, err := postgres.Open(context.Background(), env["STRATA_DATABASE_URL"], postgres.Options{Schema: env["STRATA_DATABASE_SCHEMA"]})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	versions, err := registry.New(postgres.NewRegistryStore(store), registry.Options{}).Versions(context.Background(), subject)
	if err != nil && registry.Code(err) != registry.CodeSubjectNotFound {
		t.Fatal(err)
	}
	return versions
}

func TestSchemasApply(t *testing.T) {
	env := migratedEnv(t, copySchemas(t, map[string]string{}))

	out, _, err := runWriter(t, env, "schemas", "apply", "--dry-run")
	if err != nil || !strings.Contains(out, "6 to register") || len(versionsOf(t, env, "example.orders.OrderItemAdded")) != 0 {
		t.Fatalf("dry run = %q, %v; want a plan of six (the four files and the two system events) and nothing registered", out, err)
	}
	out, _, err = runWriter(t, env, "schemas", "apply")
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	for _, want := range []string{
		"registered     example.orders.OrderItemAdded version 1 (schema id 2): ",
		"registered     example.orders.OrderItemAdded version 2 (schema id 3): ",
		"OrderItemAdded.v2.avsc",
		"registered     strata.system.StreamDeleted version 1 (schema id 5): (built in)",
		"registered     strata.system.DataSubjectErased version 1 (schema id 6): (built in)",
		"6 registered, 0 unchanged",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply printed:\n%s\nwant a line with %q", out, want)
		}
	}
	if got := versionsOf(t, env, "example.orders.OrderItemAdded"); len(got) != 2 {
		t.Errorf("OrderItemAdded versions = %v, want [1 2]", got)
	}
	out, _, err = runWriter(t, env, "schemas", "apply")
	if err != nil || !strings.Contains(out, "0 registered, 6 unchanged") {
		t.Errorf("second apply = %q, %v; want everything unchanged", out, err)
	}
}

func TestSchemasApplyRefuses(t *testing.T) {
	v2, err := os.ReadFile("../../schemas/OrderItemAdded.v2.avsc")
	if err != nil {
		t.Fatal(err)
	}
	// (Removing a default would not do: defaults are not part of the
	// canonical form, so such a file is the same schema, unchanged.)
	noDefault := strings.Replace(string(v2), `{"name": "currency"`, `{"name": "discount", "type": "int"}, {"name": "currency"`, 1)
	typeChange := strings.Replace(string(v2), `{"name": "quantity", "type": "int"`, `{"name": "quantity", "type": "string"`, 1)
	tests := []struct {
		name  string
		extra map[string]string
		want  []string
	}{
		{"a field added without a default", map[string]string{"OrderItemAdded.v3.avsc": noDefault},
			[]string{"OrderItemAdded.v3.avsc", "READER_FIELD_MISSING_DEFAULT_VALUE", "discount", "nothing was registered"}},
		{"a changed field type", map[string]string{"OrderItemAdded.v3.avsc": typeChange},
			[]string{"OrderItemAdded.v3.avsc", "TYPE_MISMATCH", "FULL_TRANSITIVE"}},
		{"a file named for another record", map[string]string{"ItemAdded.avsc": string(v2)},
			[]string{"ItemAdded.avsc", "holds the record example.orders.OrderItemAdded", "name it OrderItemAdded.avsc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := migratedEnv(t, copySchemas(t, tt.extra))
			_, _, err := runWriter(t, env, "schemas", "apply")
			if err == nil {
				t.Fatal("apply succeeded")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("apply = %v; want it to mention %q", err, want)
				}
			}
			if got := versionsOf(t, env, "example.orders.OrderItemAdded"); len(got) != 0 {
				t.Errorf("versions after a refused apply = %v, want none: the run registers all or nothing", got)
			}
		})
	}
}

func TestSchemasApplyBeforeMigrate(t *testing.T) {
	url, schema := harness.NewSchema(t)
	env := map[string]string{"STRATA_DATABASE_URL": url, "STRATA_DATABASE_SCHEMA": schema, "STRATA_SCHEMAS_DIR": "../../schemas"}
	_, _, err := runWriter(t, env, "schemas", "apply")
	if err == nil || !strings.Contains(err.Error(), "writer migrate") {
		t.Errorf("apply before migrate = %v; want to be told to run writer migrate", err)
	}
}

func TestSchemasApplyToAnExternalRegistry(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	env := map[string]string{"STRATA_REGISTRY_URL": fake.URL(), "STRATA_SCHEMAS_DIR": "../../schemas"}
	out, _, err := runWriter(t, env, "schemas", "apply")
	if err != nil || !strings.Contains(out, "6 registered") || !strings.Contains(out, "the registry at "+fake.URL()) {
		t.Fatalf("apply to an external registry = %q, %v", out, err)
	}
	if _, ok := fake.GetSchema("example.orders.OrderItemAdded", 2); !ok {
		t.Errorf("the external registry lacks OrderItemAdded version 2")
	}
}

func TestSchemasUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"schemas"}, "no subcommand"},
		{[]string{"schemas", "remove"}, `unknown subcommand "remove"`},
		{[]string{"schemas", "apply", "extra"}, "takes no arguments"},
	}
	for _, tt := range tests {
		if _, _, err := runWriter(t, map[string]string{"STRATA_SCHEMAS_DIR": "../../schemas"}, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("writer %s = %v, want an error mentioning %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
	for _, args := range [][]string{{"schemas", "apply", "--help"}, {"schemas", "--help"}} {
		out, _, err := runWriter(t, nil, args...)
		if err == nil || !strings.Contains(out, "STRATA_SCHEMAS_DIR") || !strings.Contains(out, "--dry-run") || !strings.Contains(out, "STRATA_REGISTRY_URL") {
			t.Errorf("writer %s = %q, %v; want the help with the settings and flag.ErrHelp", strings.Join(args, " "), out, err)
		}
	}
}
