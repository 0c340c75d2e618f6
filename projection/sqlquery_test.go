package projection

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// queryFile is a projection file with one on section and, from line 4,
// the given query sections.
func queryFile(queries string) string {
	return "-- strata:categories Order\n-- strata:on OrderShipped\nSELECT 1;\n" + queries + "\n"
}

func TestParseSQLReadsQueries(t *testing.T) {
	sp := mustParseSQL(t, "items.sql", queryFile(`-- strata:query search
-- strata:param q text required max 10
-- strata:param since timestamp
-- strata:param limit int default 50 max 1000
SELECT * FROM t WHERE a = :q AND (:since IS NULL OR b > :since) OR c = :q::text LIMIT :limit;
-- strata:query by-id
-- strata:param id uuid required
-- strata:param min decimal default 0.5
-- strata:param open bool default true
-- strata:param limit int default 1 max 1
WITH x AS (SELECT 1) SELECT :id, :min, :open FROM x LIMIT :limit`))
	qs := sp.Queries()
	if len(qs) != 2 {
		t.Fatalf("Queries() = %d queries, want 2", len(qs))
	}
	search := qs[0]
	if search.Projection != "items" || search.Name != "search" || search.Line != 4 {
		t.Errorf("query = %s/%s at line %d, want items/search at line 4", search.Projection, search.Name, search.Line)
	}
	wantSQL := "SELECT * FROM t WHERE a = $1::text AND ($2::timestamptz IS NULL OR b > $2::timestamptz) OR c = $1::text::text LIMIT $3::bigint"
	if search.SQL() != wantSQL {
		t.Errorf("SQL() = %q, want %q", search.SQL(), wantSQL)
	}
	args, limit, err := search.Bind(map[string]string{"q": "x", "since": "2026-01-02T03:04:05Z"})
	want := []any{"x", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), int64(50)}
	if err != nil || limit != 50 || !cmp.Equal(args, want) {
		t.Errorf("Bind(q, since) = %v, %d, %v; want %v, 50", args, limit, err, want)
	}
	args, limit, err = search.Bind(map[string]string{"q": "x", "limit": "7"})
	if err != nil || limit != 7 || !cmp.Equal(args, []any{"x", nil, int64(7)}) {
		t.Errorf("Bind(q, limit) = %v, %d, %v; want since NULL and limit 7", args, limit, err)
	}
	args, _, err = qs[1].Bind(map[string]string{"id": "123e4567-e89b-12d3-a456-426614174000"})
	if err != nil || !cmp.Equal(args, []any{"123e4567-e89b-12d3-a456-426614174000", "0.5", true, int64(1)}) {
		t.Errorf("Bind(id) = %v, %v; want the id, the defaults and limit", args, err)
	}
}

func TestQueryBindRefusesBadValues(t *testing.T) {
	sp := mustParseSQL(t, "x.sql", queryFile(`-- strata:query q
-- strata:param q text required max 5
-- strata:param n int max 10
-- strata:param b bool
-- strata:param at timestamp
-- strata:param d decimal
-- strata:param u uuid
-- strata:param limit int default 5 max 100
SELECT :q, :n, :b, :at, :d, :u LIMIT :limit`))
	q := sp.Queries()[0]
	tests := []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"a required parameter is missing", map[string]string{}, "q is required"},
		{"a required text is blank", map[string]string{"q": "  "}, "q is required, and not empty or all spaces"},
		{"a text is over its max", map[string]string{"q": "abcdef"}, "q is longer than 5 characters (6)"},
		{"an int is not a number", map[string]string{"q": "a", "n": "x"}, `n must be a whole number, not "x"`},
		{"an int is over its max", map[string]string{"q": "a", "n": "11"}, "n must be at most 10, not 11"},
		{"a bool is not true or false", map[string]string{"q": "a", "b": "yes"}, `b must be true or false, not "yes"`},
		{"a timestamp is not RFC 3339", map[string]string{"q": "a", "at": "2026-01-02"}, `at must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z, not "2026-01-02"`},
		{"a decimal is not a number", map[string]string{"q": "a", "d": "1.2.3"}, `d must be a decimal number such as 12.50, not "1.2.3"`},
		{"a uuid is not one", map[string]string{"q": "a", "u": "123"}, `u must be a UUID such as 123e4567-e89b-12d3-a456-426614174000, not "123"`},
		{"the limit is over its max", map[string]string{"q": "a", "limit": "101"}, "limit must be at most 100, not 101"},
		{"the limit is zero", map[string]string{"q": "a", "limit": "0"}, "limit must be at least 1, not 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := q.Bind(tt.values)
			var pe *ParamError
			if !errors.As(err, &pe) || err.Error() != tt.want {
				t.Errorf("Bind(%v) = %v, want *ParamError %q", tt.values, err, tt.want)
			}
		})
	}
}

func TestParseSQLRefusesBadQueries(t *testing.T) {
	const limit = "-- strata:param limit int default 10 max 100\n"
	tests := []struct {
		name, queries, want string
	}{
		{"an unknown type", "-- strata:query q\n-- strata:param a text2\n" + limit + "SELECT :a LIMIT :limit",
			`x.sql:5: parameter a has unknown type "text2"; the types are text, int, bool, timestamp, decimal and uuid`},
		{"a parameter used but not declared", "-- strata:query q\n" + limit + "SELECT :b LIMIT :limit",
			"x.sql:6: query q uses :b, which it does not declare (-- strata:param b TYPE)"},
		{"a parameter declared but not used", "-- strata:query q\n-- strata:param a int\n" + limit + "SELECT 1 LIMIT :limit",
			"x.sql:5: query q declares parameter a but does not use it"},
		{"a parameter declared twice", "-- strata:query q\n-- strata:param a int\n-- strata:param a text\n" + limit + "SELECT :a LIMIT :limit",
			"x.sql:6: parameter a of query q is declared twice (first on line 5)"},
		{"a non-SELECT statement", "-- strata:query q\n" + limit + "DELETE FROM t WHERE n < :limit",
			"x.sql:6: query q is not a SELECT: a query only reads (it starts with SELECT or WITH)"},
		{"a data-modifying WITH", "-- strata:query q\n" + limit + "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d LIMIT :limit",
			"x.sql:6: query q uses DELETE: a query only reads"},
		{"two statements", "-- strata:query q\n" + limit + "SELECT 1 LIMIT :limit;\nSELECT 2",
			"x.sql:7: a second statement for q: a -- strata:query section holds one statement"},
		{"no statement", "-- strata:query q\n" + limit + "-- strata:query r\n",
			"x.sql:6: -- strata:query q has no statement"},
		{"no statement at the end of the file", "-- strata:query q\n" + limit,
			"x.sql:4: -- strata:query q has no statement"},
		{"two queries of one name", "-- strata:query q\n" + limit + "SELECT 1 LIMIT :limit\n-- strata:query q\n" + limit + "SELECT 2 LIMIT :limit",
			"x.sql:7: -- strata:query q is given twice (first on line 4)"},
		{"a bad query name", "-- strata:query Q!\n" + limit + "SELECT 1 LIMIT :limit",
			`x.sql:4: -- strata:query "Q!": a query name is 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter`},
		{"no limit", "-- strata:query q\nSELECT 1",
			"x.sql:4: query q declares no limit: -- strata:param limit int default N max M, used as LIMIT :limit"},
		{"a limit without a max", "-- strata:query q\n-- strata:param limit int default 10\nSELECT 1 LIMIT :limit",
			"x.sql:5: parameter limit must be declared as: -- strata:param limit int default N max M"},
		{"a limit of text", "-- strata:query q\n-- strata:param limit text default 10 max 100\nSELECT 1 LIMIT :limit",
			"x.sql:5: parameter limit must be declared as: -- strata:param limit int default N max M"},
		{"a limit whose default is over its max", "-- strata:query q\n-- strata:param limit int default 200 max 100\nSELECT 1 LIMIT :limit",
			"x.sql:5: parameter limit: default must be at most 100, not 200"},
		{"a limit whose default is zero", "-- strata:query q\n-- strata:param limit int default 0 max 100\nSELECT 1 LIMIT :limit",
			"x.sql:5: parameter limit: default must be at least 1, not 0"},
		{"a default of the wrong type", "-- strata:query q\n-- strata:param a int default x\n" + limit + "SELECT :a LIMIT :limit",
			`x.sql:5: parameter a: default must be a whole number, not "x"`},
		{"required with a default", "-- strata:query q\n-- strata:param a int required default 1\n" + limit + "SELECT :a LIMIT :limit",
			"x.sql:5: parameter a is required and has a default: choose one"},
		{"max on a bool", "-- strata:query q\n-- strata:param a bool max 1\n" + limit + "SELECT :a LIMIT :limit",
			"x.sql:5: parameter a: max applies to int and text parameters, not bool"},
		{"an unknown option", "-- strata:query q\n-- strata:param a int optional\n" + limit + "SELECT :a LIMIT :limit",
			`x.sql:5: parameter a: unknown option "optional"; the options are required, default VALUE and max N`},
		{"a reserved name", "-- strata:query q\n-- strata:param timeout int\n" + limit + "SELECT :timeout LIMIT :limit",
			"x.sql:5: parameter name timeout is the read API's own (waitFor, waitForPosition, timeout)"},
		{"a param outside a query", "-- strata:param a int\n",
			"x.sql:4: -- strata:param outside a query: parameters follow -- strata:query NAME, before its statement"},
		{"a param after the statement", "-- strata:query q\n" + limit + "SELECT 1 LIMIT :limit\n-- strata:param a int\n",
			"x.sql:7: -- strata:param outside a query: parameters follow -- strata:query NAME, before its statement"},
		{"a positional parameter", "-- strata:query q\n" + limit + "SELECT $1 LIMIT :limit",
			"x.sql:6: positional parameter $1: use a declared parameter by name (:NAME)"},
		{"an envelope parameter", "-- strata:query q\n" + limit + "SELECT :event.id LIMIT :limit",
			"x.sql:6: query q uses :event.id, which it does not declare (-- strata:param event.id TYPE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSQL("x.sql", []byte(queryFile(tt.queries)))
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseSQL = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTheShippedItemsFileDeclaresItsSearch(t *testing.T) {
	sps, err := LoadDir("../projections")
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range sps {
		if sp.def.Name != "shipped_items" {
			continue
		}
		qs := sp.Queries()
		if len(qs) != 1 || qs[0].Name != "search" || !strings.Contains(qs[0].SQL(), "LIMIT $2::bigint") {
			t.Fatalf("shipped_items queries = %+v, want search with LIMIT $2", qs)
		}
		return
	}
	t.Fatal("no shipped_items projection in ../projections")
}
