package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
)

const (
	itemJSON    = `{"orderId": "a1b2c3d4", "itemId": "sku-42", "quantity": 3, "price": "15.99", "timestamp": "2023-10-27T10:00:00Z"}`
	createdJSON = `{"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}`
	// itemAsV2 is itemJSON read as OrderItemAdded v2: the currency's default.
	itemAsV2 = `{"orderId":"a1b2c3d4","itemId":"sku-42","quantity":3,"price":"15.99","timestamp":"2023-10-27T10:00:00Z","currency":"USD"}`
	itemAsV1 = `{"orderId":"a1b2c3d4","itemId":"sku-42","quantity":3,"price":"15.99","timestamp":"2023-10-27T10:00:00Z"}`
)

func encode(t *testing.T, c *registry.Catalog, typ, data string) (eventstore.Fingerprint, []byte) {
	t.Helper()
	fp, bin, err := c.Encode(ctx, typ, []byte(data))
	if err != nil {
		t.Fatalf("Encode(%s): %v", typ, err)
	}
	return fp, bin
}

func TestCatalogReadsOldEventsInTheLatestSchema(t *testing.T) {
	reg := registry.New(postgres.NewRegistryStore(newPostgresStore(t)), registry.Options{})
	cat := registry.NewCatalog(reg, registry.CatalogOptions{})
	mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.avsc"))
	fp1, bin := encode(t, cat, "OrderItemAdded", itemJSON)

	// An in-process registration is seen at once.
	mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.v2.avsc"))
	out, id, err := cat.Decode(ctx, "OrderItemAdded", fp1, bin)
	if err != nil || string(out) != itemAsV2 || id != 1 {
		t.Errorf("Decode(v1 data) = %s, %d, %v; want %s written with schema 1", out, id, err, itemAsV2)
	}
	fp2, bin2 := encode(t, cat, "OrderItemAdded", itemJSON)
	if fp2 == fp1 {
		t.Errorf("Encode after v2 used fingerprint %s, still v1's", fp2)
	}
	if out, id, err := cat.Decode(ctx, "OrderItemAdded", fp2, bin2); err != nil || string(out) != itemAsV2 || id != 2 {
		t.Errorf("Decode(v2 data) = %s, %d, %v", out, id, err)
	}
	for fp, want := range map[eventstore.Fingerprint]int{fp1: 1, fp2: 2} {
		if got, err := cat.SchemaID(ctx, fp); err != nil || got != want {
			t.Errorf("SchemaID(%s) = %d, %v; want %d", fp, got, err, want)
		}
	}
	native, err := cat.DecodeWire(ctx, 1, bin, "OrderItemAdded")
	if m, ok := native.(map[string]any); err != nil || !ok || m["currency"] != "USD" {
		t.Errorf("DecodeWire(id 1, reader OrderItemAdded) = %v, %v; want currency USD", native, err)
	}
	plain, err := cat.DecodeWireJSON(ctx, 1, bin, "")
	if err != nil || string(plain) != itemAsV1 {
		t.Errorf("DecodeWireJSON(id 1, writer's shape) = %s, %v; want %s", plain, err, itemAsV1)
	}
	if subject, version, err := cat.Subject(ctx, "OrderItemAdded"); err != nil || subject != itemSubject || version != 2 {
		t.Errorf("Subject = %s, %d, %v", subject, version, err)
	}
}

func TestCatalogEncodeErrors(t *testing.T) {
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.v2.avsc"))
	cat := registry.NewCatalog(reg, registry.CatalogOptions{})
	tests := []struct {
		name, typ, data string
		wantCode        string
		wantPath        string
	}{
		{"an unknown type is unknown_event_type", "OrderRefunded", itemJSON, eventstore.CodeUnknownEventType, ""},
		{"a type is the record's simple name, not its full name", itemSubject, itemJSON, eventstore.CodeUnknownEventType, ""},
		{"a price with three decimals names the field", "OrderItemAdded",
			`{"orderId": "o", "itemId": "i", "quantity": 1, "price": "1.999", "timestamp": 0}`, eventstore.CodeSchemaViolation, "price"},
		{"a quantity that is text names the field", "OrderItemAdded",
			`{"orderId": "o", "itemId": "i", "quantity": "three", "price": "1.99", "timestamp": 0}`, eventstore.CodeSchemaViolation, "quantity"},
		{"data that is not an object has no path", "OrderItemAdded", `[1, 2]`, eventstore.CodeSchemaViolation, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cat.Encode(ctx, tt.typ, []byte(tt.data))
			if code := eventstore.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("Encode = %v (code %s), want code %s", err, code, tt.wantCode)
			}
			var sv *eventstore.SchemaViolationError
			if errors.As(err, &sv) && (sv.Path != tt.wantPath || sv.Type != tt.typ || sv.Reason == "") {
				t.Errorf("violation = %+v, want path %q", sv, tt.wantPath)
			}
		})
	}
}

// countingSource counts the loads a Catalog makes.
type countingSource struct {
	registry.Source
	generations atomic.Int64
}

func (s *countingSource) Generation(ctx context.Context) (int64, error) {
	s.generations.Add(1)
	return s.Source.Generation(ctx)
}

func TestCatalogMissesReloadAtOnceButNotInAFlood(t *testing.T) {
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	src := &countingSource{Source: reg}
	cat := registry.NewCatalog(src, registry.CatalogOptions{MinRefreshGap: time.Minute})
	mustRegister(t, reg, "example.orders.OrderCreated", schemaFile(t, "OrderCreated.avsc"))
	encode(t, cat, "OrderCreated", createdJSON) // the first miss loads
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, _, err := cat.Encode(ctx, fmt.Sprintf("Unknown%d_%d", w, i), []byte(`{}`)); !errors.Is(err, eventstore.ErrUnknownEventType) {
					t.Errorf("Encode of an unknown type = %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := src.generations.Load(); n != 1 {
		t.Errorf("the catalog asked the source %d times; want once, for the first miss", n)
	}
}

func TestCatalogSeesRegistrationsOfAnotherProcess(t *testing.T) {
	url, schema := harness.NewSchema(t)
	ours := registry.New(postgres.NewRegistryStore(openStore(t, url, schema, true)), registry.Options{})
	theirs := registry.New(postgres.NewRegistryStore(openStore(t, url, schema, false)), registry.Options{})
	cat := registry.NewCatalog(ours, registry.CatalogOptions{RefreshInterval: 50 * time.Millisecond, MinRefreshGap: 50 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- cat.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil on cancellation", err)
		}
	}()

	mustRegister(t, theirs, itemSubject, schemaFile(t, "OrderItemAdded.avsc"))
	waitFor(t, "the new type", func() bool { _, _, err := cat.Encode(ctx, "OrderItemAdded", []byte(itemJSON)); return err == nil })
	mustRegister(t, theirs, itemSubject, schemaFile(t, "OrderItemAdded.v2.avsc"))
	waitFor(t, "version 2", func() bool { _, v, err := cat.Subject(ctx, "OrderItemAdded"); return err == nil && v == 2 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the catalog did not see %s within 5s", what)
		}
	}
}

func TestCatalogReportsAnUnreachableRegistry(t *testing.T) {
	store := newPostgresStore(t)
	cat := registry.NewCatalog(registry.New(postgres.NewRegistryStore(store), registry.Options{}), registry.CatalogOptions{})
	store.Close()
	_, _, err := cat.Encode(ctx, "OrderCreated", []byte(createdJSON))
	if !errors.Is(err, eventstore.ErrUnavailable) || eventstore.ErrorCode(err) != eventstore.CodeUnavailable {
		t.Errorf("Encode with the database closed = %v (code %s); want unavailable", err, eventstore.ErrorCode(err))
	}
}

func TestCatalogUnderConcurrentUse(t *testing.T) {
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.avsc"))
	mustRegister(t, reg, "example.orders.OrderCreated", schemaFile(t, "OrderCreated.avsc"))
	cat := registry.NewCatalog(reg, registry.CatalogOptions{})
	defer cat.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.v2.avsc"))
		mustRegister(t, reg, "example.orders.OrderShipped", schemaFile(t, "OrderShipped.avsc"))
		if err := cat.Refresh(ctx); err != nil {
			t.Errorf("Refresh: %v", err)
		}
	}()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				for typ, data := range map[string]string{"OrderItemAdded": itemJSON, "OrderCreated": createdJSON} {
					fp, bin, err := cat.Encode(ctx, typ, []byte(data))
					if err != nil {
						t.Errorf("Encode(%s): %v", typ, err)
						return
					}
					out, _, err := cat.Decode(ctx, typ, fp, bin)
					var v map[string]any
					if err != nil || json.Unmarshal(out, &v) != nil || v["orderId"] != "a1b2c3d4" {
						t.Errorf("Decode(%s) = %s, %v", typ, out, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if _, v, err := cat.Subject(ctx, "OrderItemAdded"); err != nil || v != 2 {
		t.Errorf("after the concurrent registration, OrderItemAdded is at version %d, %v; want 2", v, err)
	}
}

func TestCatalogLatestIsTheSchemaOfTheNewestVersion(t *testing.T) {
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	cat := registry.NewCatalog(reg, registry.CatalogOptions{})
	defer cat.Close()
	mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.avsc"))
	s, err := cat.Latest(ctx, "OrderItemAdded")
	if err != nil {
		t.Fatalf("Latest(OrderItemAdded) = %v", err)
	}
	if _, ok := s.FieldType("currency"); ok || s.FullName() != itemSubject {
		t.Errorf("Latest(OrderItemAdded) = %s; want version 1, without currency", s)
	}

	mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.v2.avsc"))
	s, err = cat.Latest(ctx, "OrderItemAdded")
	if err != nil {
		t.Fatalf("Latest(OrderItemAdded) after v2 = %v", err)
	}
	if typ, ok := s.FieldType("currency"); !ok || typ != "string" {
		t.Errorf("Latest(OrderItemAdded) after v2 = %s; want version 2, with a string currency", s)
	}

	if s, err := cat.Latest(ctx, "OrderRefunded"); !errors.Is(err, eventstore.ErrUnknownEventType) {
		t.Errorf("Latest(OrderRefunded) = %v, %v; want unknown_event_type", s, err)
	}
}
