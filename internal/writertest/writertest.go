// Package writertest runs the writer's HTTP API in process for tests of its
// clients: httpapi over a PostgreSQL store in a schema of the test's own,
// with the repository's schemas/ registered in the embedded registry (also
// served at /registry), behind a real HTTP server on a loopback port. It
// is the writer that `writer serve --relay=false` runs, without the
// process. PostgreSQL comes from the harness, so the test package's
// TestMain must call harness.Main.
package writertest

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
)

// Writer is a running writer API.
type Writer struct {
	// URL is the API's base URL, such as http://127.0.0.1:40123.
	URL string
	// Store is the writer's store, for checks behind the API's back.
	Store *postgres.Store
	// Cipher holds the data subjects' keys, with a master key of the
	// test's own.
	Cipher *personal.Cipher
}

// Start starts a writer that serves until the test ends. opts configures
// the API (tokens, say); its Registry, when nil, is the embedded one.
func Start(t testing.TB, opts httpapi.Options) *Writer {
	t.Helper()
	ctx := context.Background()
	url, schema := harness.NewSchema(t)
	store, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if _, err := store.Migrate(ctx, postgres.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(postgres.NewRegistryStore(store), registry.Options{})
	files, err := registry.ReadSchemaDir(SchemasDir())
	if err != nil {
		t.Fatal(err)
	}
	files = registry.WithSystemSchemas(files)
	if _, err := reg.Apply(ctx, files, false); err != nil {
		t.Fatalf("applying %s: %v", SchemasDir(), err)
	}
	cipher, err := postgres.OpenKeys(store, MasterKeyFile(t), personal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Personal = cipher
	catalog := registry.NewCatalog(reg, registry.CatalogOptions{Personal: cipher})
	t.Cleanup(catalog.Close)
	if err := catalog.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if opts.Registry == nil {
		opts.Registry, opts.RegistryIsWrite = registry.NewHandler(reg, nil), registry.IsWrite
	}
	if opts.Ready == nil {
		opts.Ready = store.Ping
	}
	srv := httptest.NewServer(httpapi.New(store, catalog, opts).Handler())
	t.Cleanup(srv.Close)
	return &Writer{URL: srv.URL, Store: store, Cipher: cipher}
}

// MasterKeyFile writes a new master key file for the test and returns
// its path (STRATA_MASTER_KEY_FILE).
func MasterKeyFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.key")
	if err := personal.WriteMasterKeyFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// SchemasDir returns the repository's schemas/ directory.
func SchemasDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "schemas")
}
