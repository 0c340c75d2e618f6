package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/harness"
)

// probeSchema is version n (from 1) of example.probe.Probe: its record
// payload gains a field fK (default "old") with each version.
func probeSchema(n int) string {
	fields := []string{`{"name": "f0", "type": "string"}`}
	for k := 1; k < n; k++ {
		fields = append(fields, fmt.Sprintf(`{"name": "f%d", "type": "string", "default": "old"}`, k))
	}
	return fmt.Sprintf(`{"type": "record", "name": "Probe", "namespace": "example.probe", "fields": [
		{"name": "id", "type": "string"},
		{"name": "payload", "type": {"type": "record", "name": "Payload", "fields": [%s]}}]}`, strings.Join(fields, ", "))
}

// probeProjection keeps each Probe's payload as the projector decoded it.
const probeProjection = `-- strata:projection probe
-- strata:categories Probe
-- strata:setup
CREATE TABLE IF NOT EXISTS probe (id text PRIMARY KEY, payload jsonb NOT NULL);
-- strata:on Probe
INSERT INTO probe (id, payload) VALUES (:id, :payload::jsonb) ON CONFLICT (id) DO NOTHING;
`

func registerSchema(t *testing.T, writerURL, subject, schema string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"schema": schema})
	resp, err := http.Post(writerURL+"/registry/subjects/"+subject+"/versions", "application/vnd.schemaregistry.v1+json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var v any
		json.NewDecoder(resp.Body).Decode(&v)
		t.Fatalf("register %s = %d %v", subject, resp.StatusCode, v)
	}
}

// TestANewSchemaVersionIsReadEverywhereAtOnce registers a new version of
// a schema through one writer's registry API and at once appends data with
// its new field through another writer, twenty times over, while two
// projectors (each building a read model of its own) run. Every process
// has a catalog that is stale when the data arrives; none may read the data
// into the older version and lose the field: both read models and both
// writers' reads show the new field every time.
func TestANewSchemaVersionIsReadEverywhereAtOnce(t *testing.T) {
	writerBin, env, url, _ := prepareStore(t)
	a, b := serveWriter(t, writerBin, env), serveWriter(t, writerBin, env)
	const subject = "example.probe.Probe"
	registerSchema(t, a.url, subject, probeSchema(1))

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probe.sql"), []byte(probeProjection), 0o644); err != nil {
		t.Fatal(err)
	}
	projectorBin := build(t, "projector")
	readModels := make([]string, 2)
	for i := range readModels {
		_, readModels[i] = harness.NewSchema(t)
		startProjector(t, projectorBin, append(env, "STRATA_READMODEL_SCHEMA="+readModels[i], "STRATA_PROJECTIONS_DIR="+dir,
			"STRATA_GROUP_PREFIX="+harness.UniqueName("schema")+"."))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	for n := 2; n <= 21; n++ {
		field := fmt.Sprintf("f%d", n-1)
		want := fmt.Sprintf("new-%d", n)
		registerSchema(t, a.url, subject, probeSchema(n))
		id := fmt.Sprintf("p%d", n)
		payload := map[string]string{}
		for k := range n {
			payload[fmt.Sprintf("f%d", k)] = "x"
		}
		payload[field] = want
		data, _ := json.Marshal(map[string]any{"id": id, "payload": payload})
		body := fmt.Sprintf(`{"expectedVersion": 0, "events": [{"type": "Probe", "data": %s}]}`, data)
		if status, reply := post(t, b.url+"/v1/streams/Probe-"+id+"/events", body); status != http.StatusCreated {
			t.Fatalf("version %d: append with the new field %s through the other writer = %d %v", n, field, status, reply)
		}

		for name, w := range map[string]*writer{"the writer that registered": a, "the writer that appended": b} {
			var page struct {
				Events []struct {
					Data struct{ Payload map[string]string }
				}
			}
			if status := getJSON(t, w.url+"/v1/streams/Probe-"+id+"/events", &page); status != http.StatusOK || len(page.Events) != 1 {
				t.Fatalf("version %d: read through %s = %d, %d events", n, name, status, len(page.Events))
			}
			if got := page.Events[0].Data.Payload[field]; got != want {
				t.Errorf("version %d: %s reads %s = %q, want %q", n, name, field, got, want)
			}
		}
		for _, rm := range readModels {
			var got string
			deadline := time.Now().Add(30 * time.Second)
			for {
				err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(payload->>'%s', '(absent)') FROM %q.probe WHERE id = $1`, field, rm), id).Scan(&got)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("version %d: read model %s has no row for %s after 30s: %v", n, rm, id, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got != want {
				t.Errorf("version %d: read model %s holds %s = %q, want %q", n, rm, field, got, want)
			}
		}
	}
}
