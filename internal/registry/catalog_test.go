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
	fp, bin, err := c.Encode(ctx, typ, []byte(data), nil)
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
			_, _, err := cat.Encode(ctx, tt.typ, []byte(tt.data), nil)
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

// countingSource counts the loads a Catalog makes; with blind set, it
// cannot tell its generation, as an external registry cannot.
type countingSource struct {
	registry.Source
	blind       bool
	generations atomic.Int64
	loads       atomic.Int64
}

func (s *countingSource) Generation(ctx context.Context) (int64, error) {
	s.generations.Add(1)
	if s.blind {
		return 0, nil
	}
	return s.Source.Generation(ctx)
}

func (s *countingSource) Schemas(ctx context.Context) ([]registry.SubjectSchema, error) {
	s.loads.Add(1)
	return s.Source.Schemas(ctx)
}

// floodUnknownTypes appends 1,600 events of unknown types from 8 clients.
func floodUnknownTypes(t *testing.T, cat *registry.Catalog) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, _, err := cat.Encode(ctx, fmt.Sprintf("Unknown%d_%d", w, i), []byte(`{}`), nil); !errors.Is(err, eventstore.ErrUnknownEventType) {
					t.Errorf("Encode of an unknown type = %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// flooded returns a catalog over src, loaded by a first miss, after 1,600
// appends of unknown types; it checks that they loaded nothing more.
func flooded(t *testing.T, src *countingSource) (*registry.Registry, *registry.Catalog) {
	t.Helper()
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	src.Source = reg
	cat := registry.NewCatalog(src, registry.CatalogOptions{MinRefreshGap: time.Minute})
	mustRegister(t, reg, "example.orders.OrderCreated", schemaFile(t, "OrderCreated.avsc"))
	encode(t, cat, "OrderCreated", createdJSON) // the first miss loads
	floodUnknownTypes(t, cat)
	if n := src.loads.Load(); n != 1 {
		t.Errorf("the catalog loaded the schemas %d times; want once, for the first miss", n)
	}
	return reg, cat
}

func TestCatalogMissesAskTheGenerationButLoadOnlyWhenItChanged(t *testing.T) {
	src := &countingSource{}
	flooded(t, src)
	if n := src.generations.Load(); n < 2 || n > 1601 {
		t.Errorf("the catalog asked the generation %d times; want once for the first miss and at most once per later miss", n)
	}
}

func TestCatalogMissesOnWhatClientsSendDoNotFloodABlindSource(t *testing.T) {
	reg, cat := flooded(t, &countingSource{blind: true})

	// Data read back is different: its schema was registered before it
	// was written, so an unknown fingerprint always reloads, gap or not.
	mustRegister(t, reg, itemSubject, schemaFile(t, "OrderItemAdded.avsc"))
	other := registry.NewCatalog(reg, registry.CatalogOptions{})
	defer other.Close()
	fp, bin := encode(t, other, "OrderItemAdded", itemJSON)
	if out, _, err := cat.Decode(ctx, "OrderItemAdded", fp, bin); err != nil || string(out) != itemAsV1 {
		t.Errorf("Decode of data whose schema was registered a moment ago = %s, %v; want %s", out, err, itemAsV1)
	}
}

// TestCatalogNeverReadsDataIntoAnOlderSchema is the rule of the catalog:
// a process whose snapshot still has version 1 as the latest, and which
// reloaded a moment ago (so that the refresh gap is not over), meets data
// written with version 2 by another process. It reads the new field in
// every path: by registry id (projectors), by fingerprint (the writer's
// reads), and when a client appends data only version 2 accepts.
func TestCatalogNeverReadsDataIntoAnOlderSchema(t *testing.T) {
	const withEUR = `{"orderId": "a1b2c3d4", "itemId": "sku-42", "quantity": 3, "price": "15.99", "timestamp": "2023-10-27T10:00:00Z", "currency": "EUR"}`
	const readEUR = `{"orderId":"a1b2c3d4","itemId":"sku-42","quantity":3,"price":"15.99","timestamp":"2023-10-27T10:00:00Z","currency":"EUR"}`
	paths := []struct {
		name string
		read func(stale *registry.Catalog, fp eventstore.Fingerprint, id int, bin []byte) (string, error)
	}{
		{"by registry id, as a projector reads", func(stale *registry.Catalog, _ eventstore.Fingerprint, id int, bin []byte) (string, error) {
			out, err := stale.DecodeWireJSON(ctx, id, bin, "OrderItemAdded")
			return string(out), err
		}},
		{"by registry id, natively", func(stale *registry.Catalog, _ eventstore.Fingerprint, id int, bin []byte) (string, error) {
			v, err := stale.DecodeWire(ctx, id, bin, "OrderItemAdded")
			if m, ok := v.(map[string]any); ok {
				return fmt.Sprint(m["currency"]), err
			}
			return fmt.Sprint(v), err
		}},
		{"by fingerprint, as the writer reads", func(stale *registry.Catalog, fp eventstore.Fingerprint, _ int, bin []byte) (string, error) {
			out, _, err := stale.Decode(ctx, "OrderItemAdded", fp, bin)
			return string(out), err
		}},
		{"an append only version 2 accepts", func(stale *registry.Catalog, _ eventstore.Fingerprint, _ int, _ []byte) (string, error) {
			fp, bin, err := stale.Encode(ctx, "OrderItemAdded", []byte(withEUR), nil)
			if err != nil {
				return "", err
			}
			out, _, err := stale.Decode(ctx, "OrderItemAdded", fp, bin)
			return string(out), err
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			// Two processes over one database: ours, whose catalog loaded
			// version 1 a moment ago, and theirs.
			url, schema := harness.NewSchema(t)
			ours := registry.New(postgres.NewRegistryStore(openStore(t, url, schema, true)), registry.Options{})
			theirs := registry.New(postgres.NewRegistryStore(openStore(t, url, schema, false)), registry.Options{})
			mustRegister(t, theirs, itemSubject, schemaFile(t, "OrderItemAdded.avsc"))
			stale := registry.NewCatalog(ours, registry.CatalogOptions{RefreshInterval: time.Hour, MinRefreshGap: time.Hour})
			defer stale.Close()
			if err := stale.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if _, v, err := stale.Subject(ctx, "OrderItemAdded"); err != nil || v != 1 {
				t.Fatalf("the stale catalog has version %d, %v; want 1", v, err)
			}
			// They register version 2 and write with it.
			reg := mustRegister(t, theirs, itemSubject, schemaFile(t, "OrderItemAdded.v2.avsc"))
			writer := registry.NewCatalog(theirs, registry.CatalogOptions{})
			defer writer.Close()
			fp, bin := encode(t, writer, "OrderItemAdded", withEUR)
			got, err := p.read(stale, fp, reg.ID, bin)
			if err != nil || (got != readEUR && got != "EUR") {
				t.Errorf("read by the stale catalog = %s, %v; want the currency EUR written with version 2", got, err)
			}
		})
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
	waitFor(t, "the new type", func() bool { _, _, err := cat.Encode(ctx, "OrderItemAdded", []byte(itemJSON), nil); return err == nil })
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
	_, _, err := cat.Encode(ctx, "OrderCreated", []byte(createdJSON), nil)
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
					fp, bin, err := cat.Encode(ctx, typ, []byte(data), nil)
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
