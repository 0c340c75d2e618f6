package projection

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/registry"
)

// onFile is a projection file whose only section is "on OrderShipped",
// with stmt from line 3.
func onFile(stmt string) string {
	return "-- strata:categories Order\n-- strata:on OrderShipped\n" + stmt + "\n"
}

func mustParseSQL(t testing.TB, source, text string) *SQLProjection {
	t.Helper()
	sp, err := ParseSQL(source, []byte(text))
	if err != nil {
		t.Fatalf("ParseSQL(%s) = %v", source, err)
	}
	return sp
}

func paramNames(st *statement) []string {
	var names []string
	for _, p := range st.params {
		names = append(names, p.name)
	}
	return names
}

func TestParseSQLRewritesNamedParameters(t *testing.T) {
	tests := []struct {
		name, stmt string
		wantSQL    string
		wantParams []string
	}{
		{"each name becomes a number in order",
			`INSERT INTO t VALUES (:orderId, :itemId)`, `INSERT INTO t VALUES ($1, $2)`, []string{"orderId", "itemId"}},
		{"a repeated name reuses its number",
			`UPDATE t SET a = :a WHERE b = :b OR c = :a`, `UPDATE t SET a = $1 WHERE b = $2 OR c = $1`, []string{"a", "b"}},
		{":data.name is the same parameter as :name",
			`SELECT :orderId, :data.orderId`, `SELECT $1, $1`, []string{"orderId"}},
		{"a cast after a parameter is a cast",
			`SELECT :timestamp::timestamptz`, `SELECT $1::timestamptz`, []string{"timestamp"}},
		{"a cast of a column is a cast",
			`SELECT x::text FROM t WHERE y = :y`, `SELECT x::text FROM t WHERE y = $1`, []string{"y"}},
		{"dotted names go into records",
			`SELECT :address.city, :address.geo.lat`, `SELECT $1, $2`, []string{"address.city", "address.geo.lat"}},
		{"envelope and metadata names",
			`SELECT :event.streamId, :event.version, :meta.userId, :meta.custom.source`,
			`SELECT $1, $2, $3, $4`, []string{"event.streamId", "event.version", "meta.userId", "meta.custom.source"}},
		{"a string hides names",
			`SELECT 'at :a' || :b`, `SELECT 'at :a' || $1`, []string{"b"}},
		{"a doubled quote stays inside the string",
			`SELECT 'it''s :a' || :b`, `SELECT 'it''s :a' || $1`, []string{"b"}},
		{"a backslash does not escape in a standard string",
			`SELECT 'C:\' || :b || '\'`, `SELECT 'C:\' || $1 || '\'`, []string{"b"}},
		{"a backslash escapes in an E string",
			`SELECT E'it\'s :a' || :b`, `SELECT E'it\'s :a' || $1`, []string{"b"}},
		{"a lower-case e string",
			`SELECT e'\\' || :b`, `SELECT e'\\' || $1`, []string{"b"}},
		{"a quoted identifier hides names",
			`SELECT "a:b", "x"":y" FROM t WHERE c = :c`, `SELECT "a:b", "x"":y" FROM t WHERE c = $1`, []string{"c"}},
		{"an empty dollar quote hides names",
			`SELECT $$ :a ' $$ || :b`, `SELECT $$ :a ' $$ || $1`, []string{"b"}},
		{"a tagged dollar quote ends only at its own tag",
			`SELECT $fn$ :a $$ :b $x$ $fn$ || :c`, `SELECT $fn$ :a $$ :b $x$ $fn$ || $1`, []string{"c"}},
		{"a $ inside a word is part of the word",
			`SELECT a$b FROM t WHERE c = :c`, `SELECT a$b FROM t WHERE c = $1`, []string{"c"}},
		{"a line comment hides names",
			"SELECT :a -- and :b\n, :c", "SELECT $1 -- and :b\n, $2", []string{"a", "c"}},
		{"block comments nest",
			`SELECT /* :a /* :b */ :c */ :d`, `SELECT /* :a /* :b */ :c */ $1`, []string{"d"}},
		{"a slice with numbers is not a parameter",
			`SELECT arr[1:2], arr[:3] FROM t WHERE a = :a`, `SELECT arr[1:2], arr[:3] FROM t WHERE a = $1`, []string{"a"}},
		{"a slice with names is not a parameter",
			`SELECT arr[lo:hi] FROM t WHERE a = :a`, `SELECT arr[lo:hi] FROM t WHERE a = $1`, []string{"a"}},
		{"a parameter may start a slice's bound",
			`SELECT arr[:lo] FROM t`, `SELECT arr[$1] FROM t`, []string{"lo"}},
		{"a trailing dot is not part of the name",
			`SELECT :a.`, `SELECT $1.`, []string{"a"}},
		{"a trailing semicolon and comments are dropped",
			"-- first\nSELECT :a; -- done\n/* really */", "SELECT $1", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := mustParseSQL(t, "x.sql", onFile(tt.stmt)).byType["OrderShipped"]
			if st.sql != tt.wantSQL {
				t.Errorf("statement = %q, want %q", st.sql, tt.wantSQL)
			}
			if diff := cmp.Diff(tt.wantParams, paramNames(st)); diff != "" {
				t.Errorf("parameters (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSQLNumbersLinesFromTheFile(t *testing.T) {
	sp := mustParseSQL(t, "x.sql", `-- strata:categories Order
-- strata:on OrderShipped

/* a comment
   over lines */ UPDATE t
SET a = 'two
lines', b = :b
WHERE c = $$
$$ AND d = :d;
`)
	st := sp.byType["OrderShipped"]
	got := []int{st.onLine, st.line, st.params[0].line, st.params[1].line}
	if want := []int{2, 5, 7, 9}; !slices.Equal(got, want) {
		t.Errorf("lines of directive, statement, :b, :d = %v, want %v", got, want)
	}
}

func TestParseSQLReadsTheDirectives(t *testing.T) {
	sp := mustParseSQL(t, "defs/orders.sql", `-- The orders.
-- strata:projection order_totals
--strata:categories Order, Customer	Invoice
-- strata:on-poison park

-- strata:setup
CREATE TABLE IF NOT EXISTS totals (order_id text PRIMARY KEY, total numeric);
-- a comment in the middle
CREATE INDEX IF NOT EXISTS totals_total ON totals (total);

-- strata:on OrderItemAdded
INSERT INTO totals VALUES (:orderId, :price)
ON CONFLICT (order_id) DO UPDATE SET total = totals.total + excluded.total;
   -- strata:on OrderCreated
INSERT INTO totals VALUES (:orderId, 0)
`)
	p := sp.Projection()
	want := Projection{
		Name:       "order_totals",
		Categories: []string{"Order", "Customer", "Invoice"},
		Setup: "CREATE TABLE IF NOT EXISTS totals (order_id text PRIMARY KEY, total numeric);\n" +
			"-- a comment in the middle\n" +
			"CREATE INDEX IF NOT EXISTS totals_total ON totals (total);",
		OnPoison: Park,
		Source:   "defs/orders.sql",
	}
	if p.Apply == nil {
		t.Error("Projection().Apply is nil")
	}
	p.Apply = nil
	if diff := cmp.Diff(want, *p); diff != "" {
		t.Errorf("Projection() (-want +got):\n%s", diff)
	}
	if err := sp.Projection().Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	var types []string
	for _, st := range sp.statements {
		types = append(types, st.eventType)
	}
	if want := []string{"OrderItemAdded", "OrderCreated"}; !slices.Equal(types, want) {
		t.Errorf("statements for %v, want %v", types, want)
	}
	p.Categories[0] = "Changed"
	if got := sp.Projection().Categories[0]; got != "Order" {
		t.Errorf("changing a Projection() changed the next one: category %q", got)
	}
}

func TestParseSQLDefaults(t *testing.T) {
	sp := mustParseSQL(t, "projections/open_orders.sql", onFile("SELECT 1"))
	p := sp.Projection()
	if p.Name != "open_orders" || p.OnPoison != Halt || p.Setup != "" {
		t.Errorf("Projection() = name %q, policy %q, setup %q; want open_orders, halt, no setup", p.Name, p.OnPoison, p.Setup)
	}
}

func TestParseSQLErrorsNameFileAndLine(t *testing.T) {
	const cats = "-- strata:categories Order\n"
	tests := []struct {
		name, source, text, want string
	}{
		{"no categories", "x.sql", "-- strata:on OrderShipped\nSELECT 1",
			"x.sql:1: no -- strata:categories: a projection names the stream categories it reads"},
		{"empty categories", "x.sql", "-- strata:categories , \n-- strata:on A\nSELECT 1",
			"x.sql:1: -- strata:categories names no category"},
		{"an invalid category", "x.sql", "\n-- strata:categories Order-Line\n-- strata:on A\nSELECT 1",
			`x.sql:2: the category "Order-Line" has "-" at offset 5; only letters, digits and _ are allowed`},
		{"categories twice", "x.sql", cats + cats,
			"x.sql:2: -- strata:categories is given twice (first on line 1)"},
		{"an unknown directive", "x.sql", cats + "-- strata:on-error park\n",
			"x.sql:2: unknown directive -- strata:on-error; the directives are projection, categories, on-poison, setup, on, on-stream-deleted, on-erased, query and param"},
		{"a directive after code", "x.sql", cats + "-- strata:on A\nSELECT 1; -- strata:on B\n",
			"x.sql:3: a -- strata: directive must start its line"},
		{"two statements in one section", "x.sql", cats + "-- strata:on OrderShipped\nSELECT 1;\n\n  SELECT 2;\n",
			"x.sql:5: a second statement for OrderShipped: a -- strata:on section holds one statement"},
		{"a stray semicolon is a second statement", "x.sql", cats + "-- strata:on A\nSELECT 1;\n;\n",
			"x.sql:4: a second statement for A: a -- strata:on section holds one statement"},
		{"a type twice", "x.sql", cats + "-- strata:on A\nSELECT 1\n-- strata:on B\nSELECT 2\n-- strata:on A\nSELECT 3\n",
			"x.sql:6: -- strata:on A is given twice (first on line 2)"},
		{"an on section without a statement", "x.sql", cats + "-- strata:on A\n-- nothing\n-- strata:on B\nSELECT 1",
			"x.sql:2: -- strata:on A has no statement"},
		{"an on section without a type", "x.sql", cats + "-- strata:on\nSELECT 1",
			"x.sql:2: -- strata:on: the event type is empty"},
		{"an on section with an invalid type", "x.sql", cats + "-- strata:on Order.Shipped\nSELECT 1",
			`x.sql:2: -- strata:on: the event type "Order.Shipped" has "." at offset 5; an Avro name has only letters, digits and _`},
		{"a parameter in the setup", "x.sql", cats + "-- strata:setup\nCREATE TABLE t (a int);\nINSERT INTO t VALUES (:a);\n-- strata:on A\nSELECT 1",
			"x.sql:4: the setup section cannot use parameters (:a)"},
		{"a positional parameter in the setup", "x.sql", cats + "-- strata:setup\nSELECT $1;\n-- strata:on A\nSELECT 1",
			"x.sql:3: the setup section cannot use parameters ($1)"},
		{"setup twice", "x.sql", cats + "-- strata:setup\n-- strata:setup\n-- strata:on A\nSELECT 1",
			"x.sql:3: -- strata:setup is given twice (first on line 2)"},
		{"setup with an argument", "x.sql", cats + "-- strata:setup now\n",
			"x.sql:2: -- strata:setup takes no argument"},
		{"a positional parameter in a statement", "x.sql", cats + "-- strata:on A\nSELECT :a,\n $2",
			"x.sql:4: positional parameter $2: bind values by name (:field, :event.version)"},
		{"a bad name", "x.sql", "-- strata:projection Shipped\n" + cats,
			`x.sql:1: projection name "Shipped" must be lower-case letters, digits and _, starting with a letter`},
		{"a bad file name", "dir/Shipped-Items.sql", cats + "-- strata:on A\nSELECT 1",
			`dir/Shipped-Items.sql:1: projection name "Shipped-Items" must be lower-case letters, digits and _, starting with a letter: rename the file or name the projection with -- strata:projection NAME`},
		{"a bad policy", "x.sql", cats + "-- strata:on-poison skip\n",
			`x.sql:2: poison policy "skip" is not halt or park`},
		{"a header directive after a section", "x.sql", cats + "-- strata:on A\nSELECT 1\n-- strata:on-poison park\n",
			"x.sql:4: -- strata:on-poison must come before the first section"},
		{"SQL before any section", "x.sql", "CREATE TABLE t (a int);\n" + cats,
			"x.sql:1: SQL outside a section: start one with -- strata:setup or -- strata:on TYPE"},
		{"SQL after a header directive", "x.sql", cats + "CREATE TABLE t (a int);\n",
			"x.sql:2: SQL outside a section: start one with -- strata:setup or -- strata:on TYPE"},
		{"no on section", "x.sql", cats + "-- strata:setup\nCREATE TABLE t (a int);",
			"x.sql:1: no -- strata:on section: the projection handles no event type"},
		{"an unknown envelope value", "x.sql", cats + "-- strata:on A\nSELECT :event.streamID",
			`x.sql:3: :event.streamID is not a value of the envelope or metadata: they are :event.category, :event.id, :event.position, :event.recordedAt, :event.streamId, :event.type, :event.version, :meta.causationId, :meta.correlationId, :meta.dataSubject, :meta.tenantId, :meta.userId, :meta.custom.KEY; write :data.event.streamID for a data field`},
		{"the envelope itself", "x.sql", cats + "-- strata:on A\nSELECT :meta",
			`x.sql:3: :meta is not a value of the envelope or metadata: they are :event.category, :event.id, :event.position, :event.recordedAt, :event.streamId, :event.type, :event.version, :meta.causationId, :meta.correlationId, :meta.dataSubject, :meta.tenantId, :meta.userId, :meta.custom.KEY; write :data.meta for a data field`},
		{"data without a field", "x.sql", cats + "-- strata:on A\nSELECT :data",
			"x.sql:3: :data names no field: write :data.FIELD"},
		{"on-erased twice", "x.sql", cats + "-- strata:on-erased\nUPDATE t SET a = 1\n-- strata:on-erased\nUPDATE u SET a = 1\n",
			"x.sql:4: -- strata:on-erased is given twice (first on line 2)"},
		{"on-erased with an argument", "x.sql", cats + "-- strata:on-erased c-1\nUPDATE t SET a = 1\n",
			"x.sql:2: -- strata:on-erased takes no argument (its event type is $DataSubjectErased)"},
		{"an on section for $DataSubjectErased", "x.sql", cats + "-- strata:on $DataSubjectErased\nUPDATE t SET a = 1\n",
			"x.sql:2: -- strata:on $DataSubjectErased: write -- strata:on-erased for the section of an erased data subject"},
		{"on-stream-deleted twice", "x.sql", cats + "-- strata:on-stream-deleted\nDELETE FROM t\n-- strata:on A\nSELECT 1\n-- strata:on-stream-deleted\nDELETE FROM u\n",
			"x.sql:6: -- strata:on-stream-deleted is given twice (first on line 2)"},
		{"on-stream-deleted with an argument", "x.sql", cats + "-- strata:on-stream-deleted Order\nDELETE FROM t\n",
			"x.sql:2: -- strata:on-stream-deleted takes no argument (its event type is $StreamDeleted)"},
		{"on-stream-deleted without a statement", "x.sql", cats + "-- strata:on-stream-deleted\n-- nothing\n-- strata:on A\nSELECT 1",
			"x.sql:2: -- strata:on-stream-deleted has no statement"},
		{"on-stream-deleted with two statements", "x.sql", cats + "-- strata:on-stream-deleted\nDELETE FROM t;\nDELETE FROM u;\n",
			"x.sql:4: a second statement for $StreamDeleted: a -- strata:on-stream-deleted section holds one statement"},
		{"on-stream-deleted with a positional parameter", "x.sql", cats + "-- strata:on-stream-deleted\nDELETE FROM t WHERE id = $1\n",
			"x.sql:3: positional parameter $1: bind values by name (:field, :event.version)"},
		{"on-stream-deleted with an unknown envelope value", "x.sql", cats + "-- strata:on-stream-deleted\nDELETE FROM t WHERE id = :event.stream\n",
			`x.sql:3: :event.stream is not a value of the envelope or metadata: they are :event.category, :event.id, :event.position, :event.recordedAt, :event.streamId, :event.type, :event.version, :meta.causationId, :meta.correlationId, :meta.dataSubject, :meta.tenantId, :meta.userId, :meta.custom.KEY; write :data.event.stream for a data field`},
		{"on-stream-deleted after a query without its statement", "x.sql", cats + "-- strata:on A\nSELECT 1\n-- strata:query q\n-- strata:param limit int default 5 max 9\n-- strata:on-stream-deleted\nDELETE FROM t\n",
			"x.sql:6: -- strata:query q has no statement"},
		{"on-stream-deleted before the header", "x.sql", "-- strata:on-stream-deleted\nDELETE FROM t\n" + cats,
			"x.sql:3: -- strata:categories must come before the first section"},
		{"an on section for $StreamDeleted", "x.sql", cats + "-- strata:on $StreamDeleted\nDELETE FROM t\n",
			"x.sql:2: -- strata:on $StreamDeleted: write -- strata:on-stream-deleted for the section of a deleted stream"},
		{"an on section for another system type", "x.sql", cats + "-- strata:on $StreamTruncated\nDELETE FROM t\n",
			"x.sql:2: -- strata:on $StreamTruncated: a type that starts with $ is a system event's, and a projection handles only $StreamDeleted, with -- strata:on-stream-deleted, and $DataSubjectErased, with -- strata:on-erased"},
		{"an unterminated string", "x.sql", cats + "-- strata:on A\nSELECT 'abc\n\n",
			"x.sql:3: unterminated string constant"},
		{"an unterminated E string", "x.sql", cats + "-- strata:on A\nSELECT E'abc\\'",
			"x.sql:3: unterminated string constant"},
		{"an unterminated quoted identifier", "x.sql", cats + "-- strata:on A\n\nSELECT \"abc",
			"x.sql:4: unterminated quoted identifier"},
		{"an unterminated dollar quote", "x.sql", cats + "-- strata:setup\nDO $body$ BEGIN END $$;",
			"x.sql:3: unterminated dollar-quoted string $body$"},
		{"an unterminated comment", "x.sql", cats + "/* /* */\n-- strata:on A\nSELECT 1",
			"x.sql:2: unterminated /* comment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := ParseSQL(tt.source, []byte(tt.text))
			if err == nil {
				t.Fatalf("ParseSQL(%q) = %+v, want error %q", tt.text, sp, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("ParseSQL(%q) = %q\nwant               %q", tt.text, err, tt.want)
			}
		})
	}
}

func TestParseSQLReadsTheStreamDeletedSection(t *testing.T) {
	sp := mustParseSQL(t, "x.sql", `-- strata:categories Order
-- strata:on OrderCreated
INSERT INTO totals VALUES (:orderId, 0)

-- strata:on-stream-deleted
-- comments are allowed, as in any section
WITH gone AS (DELETE FROM lines WHERE order_id = substr(:event.streamId, strpos(:event.streamId, '-') + 1))
DELETE FROM totals
WHERE order_id = substr(:event.streamId, strpos(:event.streamId, '-') + 1)
  AND :streamId = :event.streamId AND NOT :hard AND :event.version > 0;
`)
	st := sp.byType[StreamDeletedType]
	if st == nil {
		t.Fatalf("no statement for %s; statements for %v", StreamDeletedType, slices.Collect(maps.Keys(sp.byType)))
	}
	wantSQL := "WITH gone AS (DELETE FROM lines WHERE order_id = substr($1, strpos($1, '-') + 1))\n" +
		"DELETE FROM totals\nWHERE order_id = substr($1, strpos($1, '-') + 1)\n" +
		"  AND $2 = $1 AND NOT $3 AND $4 > 0"
	if st.sql != wantSQL {
		t.Errorf("statement = %q, want %q", st.sql, wantSQL)
	}
	if diff := cmp.Diff([]string{"event.streamId", "streamId", "hard", "event.version"}, paramNames(st)); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
	if st.eventType != "$StreamDeleted" || st.directive != "-- strata:on-stream-deleted" || st.onLine != 5 || st.line != 7 {
		t.Errorf("statement for %q opened by %q on line %d, from line %d; want $StreamDeleted, -- strata:on-stream-deleted, 5, 7",
			st.eventType, st.directive, st.onLine, st.line)
	}
	ev := Event{StreamID: "Order-a-1", Version: 4, Type: StreamDeletedType, Data: map[string]any{"streamId": "Order-a-1", "hard": true}}
	var got []any
	for _, p := range st.params {
		got = append(got, p.value(&ev))
	}
	if diff := cmp.Diff([]any{"Order-a-1", "Order-a-1", true, int64(4)}, got); diff != "" {
		t.Errorf("values bound for %+v (-want +got):\n%s", ev, diff)
	}

	only := mustParseSQL(t, "x.sql", "-- strata:categories Order\n-- strata:on-stream-deleted\nDELETE FROM t WHERE id = :event.streamId")
	if len(only.statements) != 1 {
		t.Errorf("a file with only an on-stream-deleted section has %d statements, want 1", len(only.statements))
	}
}

func TestParseSQLIgnoresDirectivesInLiteralsAndComments(t *testing.T) {
	sp := mustParseSQL(t, "x.sql", `-- strata:categories Order
-- strata:setup
CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$
-- strata:on Hidden
SELECT 'x'
$$;
/*
-- strata:on AlsoHidden
*/
-- strata:on OrderShipped
SELECT '
-- strata:on StillHidden
' || :a
`)
	if got := slices.Collect(maps.Keys(sp.byType)); !slices.Equal(got, []string{"OrderShipped"}) {
		t.Errorf("sections for %v, want only OrderShipped", got)
	}
}

func TestLoadDir(t *testing.T) {
	t.Run("it loads the example projections", func(t *testing.T) {
		all, err := LoadDir(filepath.Join("..", "projections"))
		if err != nil {
			t.Fatalf("LoadDir(projections) = %v", err)
		}
		var names []string
		for _, sp := range all {
			names = append(names, sp.Projection().Name)
		}
		if !slices.Contains(names, "shipped_items") {
			t.Errorf("LoadDir(projections) loaded %v, want shipped_items among them", names)
		}
	})
	t.Run("it reads only .sql files, in name order", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "b.sql", onFile("SELECT 2"))
		writeFile(t, dir, "a.sql", onFile("SELECT 1"))
		writeFile(t, dir, "notes.txt", "not SQL")
		if err := os.Mkdir(filepath.Join(dir, "old.sql"), 0o755); err != nil {
			t.Fatal(err)
		}
		all, err := LoadDir(dir)
		if err != nil {
			t.Fatalf("LoadDir = %v", err)
		}
		var sources []string
		for _, sp := range all {
			sources = append(sources, sp.Projection().Source)
		}
		if want := []string{filepath.Join(dir, "a.sql"), filepath.Join(dir, "b.sql")}; !slices.Equal(sources, want) {
			t.Errorf("LoadDir loaded %v, want %v", sources, want)
		}
	})
	t.Run("a name used twice and every broken file are errors", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "a.sql", "-- strata:projection same\n"+onFile("SELECT 1"))
		writeFile(t, dir, "b.sql", "\n-- strata:projection same\n"+onFile("SELECT 2"))
		writeFile(t, dir, "c.sql", "-- strata:bogus\n")
		_, err := LoadDir(dir)
		want := filepath.Join(dir, "b.sql") + ":2: projection same is defined in " + filepath.Join(dir, "a.sql") + " too\n" +
			filepath.Join(dir, "c.sql") + ":1: unknown directive -- strata:bogus; the directives are projection, categories, on-poison, setup, on, on-stream-deleted, on-erased, query and param"
		if err == nil || err.Error() != want {
			t.Errorf("LoadDir = %v\nwant %s", err, want)
		}
	})
	t.Run("a missing directory is an error that names it", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nowhere")
		_, err := LoadDir(dir)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), dir) {
			t.Errorf("LoadDir(%s) = %v, want a not-exist error naming it", dir, err)
		}
	})
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exampleSchemas returns the latest of the schemas in /schemas by event
// type, and the system schemas, as writer schemas apply registers them.
func exampleSchemas(t testing.TB) func(string) (*avro.Schema, error) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "schemas", "*.avsc"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas: %v", err)
	}
	slices.Sort(files) // OrderItemAdded.v2.avsc after OrderItemAdded.avsc
	latest := map[string]*avro.Schema{}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := avro.Parse(string(text))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		latest[s.Name()] = s
	}
	for _, f := range registry.SystemSchemas() {
		latest["$"+f.Schema.Name()] = f.Schema
	}
	return func(typ string) (*avro.Schema, error) {
		if s := latest[typ]; s != nil {
			return s, nil
		}
		return nil, eventstore.Errorf(eventstore.CodeUnknownEventType, "unknown event type %q", typ)
	}
}

func TestCheckAgainstTheExampleSchemas(t *testing.T) {
	schemaOf := exampleSchemas(t)
	t.Run("shipped_items passes", func(t *testing.T) {
		text, err := os.ReadFile(filepath.Join("..", "projections", "shipped_items.sql"))
		if err != nil {
			t.Fatal(err)
		}
		sp := mustParseSQL(t, "projections/shipped_items.sql", string(text))
		if err := sp.Check(schemaOf); err != nil {
			t.Errorf("Check = %v", err)
		}
		if sp.byType[StreamDeletedType] == nil {
			t.Error("shipped_items has no -- strata:on-stream-deleted section")
		}
	})
	t.Run("envelope values, data.name and new fields pass", func(t *testing.T) {
		sp := mustParseSQL(t, "x.sql", "-- strata:categories Order\n-- strata:on OrderItemAdded\n"+
			"SELECT :event.streamId, :meta.custom.source, :data.orderId, :currency")
		if err := sp.Check(schemaOf); err != nil {
			t.Errorf("Check = %v", err)
		}
	})
	t.Run("misspelt fields and unknown types fail, each with its line", func(t *testing.T) {
		sp := mustParseSQL(t, "projections/x.sql", `-- strata:categories Order
-- strata:on OrderShipped
UPDATE orders
SET address = :shippingAdress,
    shipped_at = :timestamp,
    city = :shippingAddress.city
WHERE id = :orderId
-- strata:on OrderRefunded
DELETE FROM orders WHERE id = :orderId
`)
		err := sp.Check(schemaOf)
		want := `projections/x.sql:4: OrderShipped has no field "shippingAdress"` + "\n" +
			`projections/x.sql:6: OrderShipped has no field "shippingAddress.city"` + "\n" +
			`projections/x.sql:8: -- strata:on OrderRefunded: unknown event type "OrderRefunded"`
		if err == nil || err.Error() != want {
			t.Errorf("Check = %v\nwant %s", err, want)
		}
		if !errors.Is(err, eventstore.ErrUnknownEventType) {
			t.Errorf("Check = %v, want it to wrap schemaOf's unknown_event_type", err)
		}
	})
	t.Run("on-stream-deleted binds the fields of $StreamDeleted", func(t *testing.T) {
		sp := mustParseSQL(t, "projections/x.sql", `-- strata:categories Order
-- strata:on OrderShipped
SELECT :orderId
-- strata:on-stream-deleted
DELETE FROM orders
WHERE id = :orderId AND :streamId = :event.streamId AND :hard
`)
		err := sp.Check(schemaOf)
		want := `projections/x.sql:6: $StreamDeleted has no field "orderId"`
		if err == nil || err.Error() != want {
			t.Errorf("Check = %v\nwant %s", err, want)
		}
	})
	t.Run("on-stream-deleted needs the system schema", func(t *testing.T) {
		sp := mustParseSQL(t, "projections/x.sql", "-- strata:categories Order\n\n-- strata:on-stream-deleted\nDELETE FROM orders WHERE id = :streamId\n")
		withoutSystem := func(typ string) (*avro.Schema, error) {
			if strings.HasPrefix(typ, "$") {
				return nil, eventstore.Errorf(eventstore.CodeUnknownEventType, "unknown event type %q", typ)
			}
			return schemaOf(typ)
		}
		err := sp.Check(withoutSystem)
		want := `projections/x.sql:3: -- strata:on-stream-deleted: unknown event type "$StreamDeleted"`
		if err == nil || err.Error() != want || !errors.Is(err, eventstore.ErrUnknownEventType) {
			t.Errorf("Check = %v\nwant %s, wrapping unknown_event_type", err, want)
		}
	})
}

// FuzzParseSQL checks that the parser never panics, and that a statement
// it accepts uses exactly $1..$n for its n parameters and no :name.
func FuzzParseSQL(f *testing.F) {
	if text, err := os.ReadFile(filepath.Join("..", "projections", "shipped_items.sql")); err == nil {
		f.Add(string(text))
	}
	f.Add("-- strata:categories Order\n-- strata:on-stream-deleted\nDELETE FROM t WHERE id = substr(:event.streamId, 7) AND :hard;")
	for _, stmt := range []string{
		"SELECT :a::int, :a, :b.c, 'x:y', E'\\':z', \"q:r\", $$:s$$, $t$ :u $t$ -- :v\n/* :w /* */ */ arr[1:2], arr[lo:hi]",
		"SELECT :event.id, :meta.custom.k, :data.event, :x.",
		"SELECT :a:b, :a$$ $$, :e'x', :a.1",
	} {
		f.Add(onFile(stmt))
	}
	f.Fuzz(func(t *testing.T, text string) {
		sp, err := ParseSQL("f.sql", []byte(text))
		if err != nil {
			return
		}
		for _, st := range sp.statements {
			toks, err := scanSQL("rewritten", []byte(st.sql))
			if err != nil {
				t.Fatalf("the statement %q does not scan: %v", st.sql, err)
			}
			used := map[int]bool{}
			for _, tok := range toks {
				switch tok.kind {
				case tokParam:
					t.Fatalf("the statement %q still has :%s", st.sql, tok.text)
				case tokPositional:
					n, err := strconv.Atoi(tok.text)
					if err != nil || n < 1 || n > len(st.params) {
						t.Fatalf("the statement %q has $%s, but %d parameters", st.sql, tok.text, len(st.params))
					}
					used[n] = true
				}
			}
			if len(used) != len(st.params) {
				t.Fatalf("the statement %q uses %d of its %d parameters", st.sql, len(used), len(st.params))
			}
			for _, p := range st.params {
				if p.value == nil {
					t.Fatalf("the parameter :%s has no value", p.name)
				}
			}
		}
	})
}
