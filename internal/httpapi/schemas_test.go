package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/registry"
)

// testSchemas serves the repository's schemas/*.avsc the way the registry's
// catalog does, without a registry: enough to test the HTTP layer.
type testSchemas struct {
	latest map[string]*avro.Schema // by type
	byFP   map[uint64]*avro.Schema
	ids    map[uint64]int
}

func loadTestSchemas(t *testing.T) *testSchemas {
	t.Helper()
	files, err := filepath.Glob("../../schemas/*.avsc")
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas found: %v", err)
	}
	sort.Strings(files) // Name.avsc before Name.v2.avsc
	s := &testSchemas{latest: map[string]*avro.Schema{}, byFP: map[uint64]*avro.Schema{}, ids: map[uint64]int{}}
	for i, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sch, err := avro.Parse(string(text))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s.latest[sch.Name()] = sch
		s.byFP[sch.Fingerprint()] = sch
		s.ids[sch.Fingerprint()] = i + 1
	}
	for _, f := range registry.SystemSchemas() {
		s.latest["$"+f.Schema.Name()] = f.Schema
		s.byFP[f.Schema.Fingerprint()] = f.Schema
		s.ids[f.Schema.Fingerprint()] = len(s.ids) + 1
	}
	return s
}

func (s *testSchemas) Encode(_ context.Context, typ string, data []byte, _ *eventstore.Metadata) (eventstore.Fingerprint, []byte, error) {
	sch, ok := s.latest[typ]
	if !ok {
		return 0, nil, eventstore.Errorf(eventstore.CodeUnknownEventType, "unknown event type %q", typ)
	}
	bin, err := sch.FromJSON(data)
	var v *avro.ValidationError
	if errors.As(err, &v) {
		return 0, nil, &eventstore.SchemaViolationError{Type: typ, Path: v.Path, Reason: v.Message}
	}
	return eventstore.Fingerprint(sch.Fingerprint()), bin, err
}

func (s *testSchemas) Decode(_ context.Context, typ string, fp eventstore.Fingerprint, data []byte) (json.RawMessage, int, error) {
	w, ok := s.byFP[uint64(fp)]
	if !ok {
		return nil, 0, errors.New("unknown fingerprint")
	}
	r, err := avro.NewResolver(w, s.latest[typ])
	if err != nil {
		return nil, 0, err
	}
	out, err := r.ToJSON(data)
	return out, s.ids[uint64(fp)], err
}
