package registry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// schemasDir is the repository's example schemas.
const schemasDir = "../../schemas"

func schemaFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(schemasDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Schemas derived from the examples, for the cases the examples do not
// cover.
const (
	itemSubject = "example.orders.OrderItemAdded"
	// itemV3 adds a field without a default to OrderItemAdded v2: new
	// readers cannot read old events.
	itemV3NoDefault = `{"type": "record", "name": "OrderItemAdded", "namespace": "example.orders", "fields": [
		{"name": "orderId", "type": "string"}, {"name": "itemId", "type": "string"}, {"name": "quantity", "type": "int"},
		{"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
		{"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}},
		{"name": "currency", "type": "string", "default": "USD"},
		{"name": "discount", "type": "int"}]}`
	// itemQuantityString changes quantity from int to string.
	itemQuantityString = `{"type": "record", "name": "OrderItemAdded", "namespace": "example.orders", "fields": [
		{"name": "orderId", "type": "string"}, {"name": "itemId", "type": "string"}, {"name": "quantity", "type": "string"},
		{"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
		{"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}`
	// otherItemAdded is a record with the same simple name in another
	// namespace.
	otherItemAdded = `{"type": "record", "name": "OrderItemAdded", "namespace": "example.returns", "fields": [{"name": "id", "type": "string"}]}`
)

// newPostgresStore returns a migrated store in a schema of its own.
func newPostgresStore(t testing.TB) *postgres.Store {
	t.Helper()
	url, schema := harness.NewSchema(t)
	return openStore(t, url, schema, true)
}

func openStore(t testing.TB, url, schema string, migrate bool) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	if migrate {
		if _, err := s.Migrate(ctx, postgres.MigrateOptions{}); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	return s
}

// backends are the storages every Registry test runs on.
var backends = []struct {
	name string
	new  func(t *testing.T) registry.Storage
}{
	{"in memory", func(*testing.T) registry.Storage { return registry.NewMemStorage() }},
	{"on PostgreSQL", func(t *testing.T) registry.Storage { return postgres.NewRegistryStore(newPostgresStore(t)) }},
}

var _ registry.Storage = (*postgres.RegistryStore)(nil)

// serve mounts the handler under /registry, as the writer does, and
// returns a franz-go client of it and its base URL.
func serve(t *testing.T, reg *registry.Registry) (*sr.Client, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/registry/", http.StripPrefix("/registry", registry.NewHandler(reg, nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL + "/registry"))
	if err != nil {
		t.Fatal(err)
	}
	return cl, srv.URL + "/registry"
}

func avroSchema(text string) sr.Schema { return sr.Schema{Schema: text, Type: sr.TypeAvro} }

// registryCode returns the registry error code of err, 0 for nil.
func registryCode(err error) int {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return registry.Code(err)
}

func mustRegister(t testing.TB, reg *registry.Registry, subject, text string) registry.Registration {
	t.Helper()
	r, err := reg.Register(ctx, subject, text)
	if err != nil {
		t.Fatalf("Register(%s): %v", subject, err)
	}
	return r
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
