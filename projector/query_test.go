package projector_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// typesSQL is a projection whose query answers a value of each type, to
// show how each is written in JSON.
const typesSQL = `-- strata:categories Order
-- strata:setup
CREATE SEQUENCE IF NOT EXISTS types_seq;

-- strata:on OrderShipped
SELECT :orderId::text;

-- strata:query types
-- strata:param at timestamp required
-- strata:param d decimal default 0.10
-- strata:param u uuid required
-- strata:param n int
-- strata:param b bool default false
-- strata:param limit int default 1 max 2
SELECT :at AS at, :d + 1.005 AS d, :u AS u, :n AS n, :b AS b, '\x01ff'::bytea AS bytes,
       2.5::float8 AS f, '[1, "two"]'::jsonb AS j, ARRAY[1.50, 2]::numeric[] AS arr
FROM generate_series(1, 5)
LIMIT :limit

-- strata:query twice
-- strata:param limit int default 1 max 1
SELECT 1 AS a, 2 AS a LIMIT :limit

-- strata:query bump
-- strata:param limit int default 1 max 1
SELECT nextval('types_seq') LIMIT :limit
`

// A declared query is served with its parameters checked, its values in
// exact JSON, read-your-writes and 404s for what is not declared.
func TestDeclaredQueriesAreServed(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	dir := t.TempDir()
	shipped, err := os.ReadFile("../projections/shipped_items.sql")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "shipped_items.sql"), shipped, 0o644)
	os.WriteFile(filepath.Join(dir, "types.sql"), []byte(typesSQL), 0o644)
	base := "http://" + e.runInProcess("STRATA_PROJECTIONS_DIR="+dir)
	const search = "/v1/projections/shipped_items/queries/search"

	e.order("q1", 3, true)
	var page struct{ Rows []map[string]any }
	if code := getJSON(t, base+search+"?q=item-1&waitFor=Order-q1@5", &page); code != 200 {
		t.Fatalf("GET %s waiting for the order = %d, want 200", search, code)
	}
	want := []map[string]any{{"order_id": "q1", "item_id": "item-1", "quantity": 2.0, "shipping_address": "2 Harbour Road", "shipped_at": "2026-01-03T00:00:00Z"}}
	if diff := cmp.Diff(want, page.Rows); diff != "" {
		t.Errorf("GET %s?q=item-1 rows (-want +got):\n%s", search, diff)
	}
	var items struct{ Items []map[string]any }
	if code := getJSON(t, base+"/v1/shipped-items?q=Harbour&limit=2", &items); code != 200 || len(items.Items) != 2 {
		t.Errorf("GET /v1/shipped-items?q=Harbour&limit=2 = %d %+v, want 2 items", code, items)
	}
	if code := getJSON(t, base+search+"?q=Harbour&limit=2", &page); code != 200 || len(page.Rows) != 2 {
		t.Errorf("GET %s?q=Harbour&limit=2 = %d, %d rows, want 2", search, code, len(page.Rows))
	}

	var types struct{ Rows []map[string]any }
	const typesURL = "/v1/projections/types/queries/types?at=2026-01-02T03:04:05.5%2B02:00&u=123E4567-E89B-12D3-A456-426614174000&limit=2"
	if code := getJSON(t, base+typesURL, &types); code != 200 {
		t.Fatalf("GET %s = %d %+v, want 200", typesURL, code, types)
	}
	row := map[string]any{"at": "2026-01-02T01:04:05.5Z", "d": "1.105", "u": "123e4567-e89b-12d3-a456-426614174000",
		"n": nil, "b": false, "bytes": "Af8=", "f": 2.5, "j": []any{1.0, "two"}, "arr": []any{"1.50", "2"}}
	if diff := cmp.Diff([]map[string]any{row, row}, types.Rows); diff != "" {
		t.Errorf("GET %s rows (-want +got):\n%s", typesURL, diff)
	}

	for _, tt := range []struct{ query, want string }{
		{search, "q is required"},
		{search + "?q=%20", "q is required, and not empty or all spaces"},
		{search + "?q=x&limit=1001", "limit must be at most 1000, not 1001"},
		{search + "?q=x&limit=many", `limit must be a whole number, not "many"`},
		{search + "?q=x&limit=0", "limit must be at least 1, not 0"},
		{search + "?q=" + strings.Repeat("x", 201), "q is longer than 200 characters (201)"},
		{search + "?q=x&q=y", "q is given 2 times"},
		{search + "?q=x&sort=asc", `unknown parameter "sort": query search takes q, limit`},
		{search + "?q=x&timeout=1s", "timeout goes with waitFor or waitForPosition"},
		{"/v1/projections/types/queries/types?u=x&at=2026-01-02T00:00:00Z", `u must be a UUID`},
		{"/v1/projections/types/queries/types?u=123e4567-e89b-12d3-a456-426614174000&at=yesterday", `at must be an RFC 3339 timestamp`},
		{"/v1/projections/types/queries/types?u=123e4567-e89b-12d3-a456-426614174000&at=2026-01-02T00:00:00Z&d=1,5", `d must be a decimal number`},
		{"/v1/projections/types/queries/types?u=123e4567-e89b-12d3-a456-426614174000&at=2026-01-02T00:00:00Z&b=yes", `b must be true or false`},
		{"/v1/projections/types/queries/types?u=123e4567-e89b-12d3-a456-426614174000&at=2026-01-02T00:00:00Z&n=1.5", `n must be a whole number`},
	} {
		var bad errorAnswer
		if code := getJSON(t, base+tt.query, &bad); code != 400 || bad.Error.Code != "invalid_request" || !strings.HasPrefix(bad.Error.Message, tt.want) {
			t.Errorf("GET %s = %d %+v, want 400 invalid_request %q", tt.query, code, bad, tt.want)
		}
	}
	for _, tt := range []struct{ path, want string }{
		{"/v1/projections/nope/queries/search", `no projection "nope" declares queries`},
		{"/v1/projections/order_summary/queries/search", `no projection "order_summary" declares queries`},
		{"/v1/projections/shipped_items/queries/nope", `projection shipped_items declares no query "nope"`},
	} {
		var missing errorAnswer
		if code := getJSON(t, base+tt.path, &missing); code != 404 || missing.Error.Code != "not_found" || missing.Error.Message != tt.want {
			t.Errorf("GET %s = %d %+v, want 404 not_found %q", tt.path, code, missing, tt.want)
		}
	}

	// The parser refuses statements that write; a function that writes
	// fails in the read-only transaction.
	var refused errorAnswer
	if code := getJSON(t, base+"/v1/projections/types/queries/bump", &refused); code != 500 || refused.Error.Code != "internal" {
		t.Errorf("GET a query that writes = %d %+v, want 500 internal", code, refused)
	}
	if code := getJSON(t, base+"/v1/projections/types/queries/twice", &refused); code != 500 || refused.Error.Code != "internal" {
		t.Errorf("GET a query with two columns of one name = %d %+v, want 500 internal", code, refused)
	}
	var calls int64
	if err := e.pool(e.schema).QueryRow(ctx, `SELECT last_value + (CASE WHEN is_called THEN 1 ELSE 0 END) FROM types_seq`).Scan(&calls); err != nil || calls != 1 {
		t.Errorf("types_seq after the query = %d, %v; want 1 (never advanced)", calls, err)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `route="query"`) {
		t.Errorf("/metrics has no series of route=\"query\"")
	}

	var late errorAnswer
	start := time.Now()
	if code := getJSON(t, base+search+"?q=x&waitFor=Order-q1@6&timeout=100ms", &late); code != 504 || late.Error.Code != "wait_timeout" || !strings.Contains(late.Error.Message, "shipped_items") {
		t.Errorf("GET %s waiting for a version not written = %d %+v after %s, want 504 wait_timeout naming shipped_items", search, code, late, time.Since(start))
	}
}

func TestListNamesTheDeclaredQueries(t *testing.T) {
	e := newEnv(t)
	out, _, err := e.cli("list", "--json")
	if err != nil || !strings.Contains(out, `"queries": [
      "/v1/projections/shipped_items/queries/search"
    ]`) {
		t.Errorf("projector list --json = %v\n%s\nwant shipped_items's search route", err, out)
	}
	out, _, err = e.cli("list")
	if err != nil || !strings.Contains(out, "projections/shipped_items.sql  search\n") {
		t.Errorf("projector list = %v\n%s\nwant search in the QUERIES column of shipped_items", err, out)
	}
}
