package projection

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/eventstore"
)

// SQLProjection is a declarative projection read from a .sql file: its
// definition, its setup DDL and one statement per event type it handles.
// It is immutable once parsed, and safe for concurrent use, as is the
// Apply of its Projection.
type SQLProjection struct {
	def        Projection // without Apply
	nameLine   int        // of -- strata:projection, 1 when the name is the file's
	statements []*statement
	byType     map[string]*statement
	queries    []*Query
}

// statement is the SQL run for each event of one type.
type statement struct {
	eventType string
	directive string // that opens its section: "-- strata:on OrderShipped", "-- strata:on-stream-deleted"
	onLine    int    // of that directive
	line      int    // of its first token
	sql       string // with $1..$n for the parameters
	params    []*param
}

// param is a value bound by name: params[i] of a statement is its $i+1.
type param struct {
	name  string // as first written, without ':'
	line  int    // where first written
	path  []string
	value func(*Event) any
}

// envelope holds the values of the :event. and :meta. parameters; the
// metadata ones are NULL when empty.
var envelope = map[string]func(*Event) any{
	"event.id":           func(e *Event) any { return e.ID },
	"event.streamId":     func(e *Event) any { return e.StreamID },
	"event.category":     func(e *Event) any { return e.Category },
	"event.version":      func(e *Event) any { return e.Version },
	"event.type":         func(e *Event) any { return e.Type },
	"event.position":     func(e *Event) any { return e.GlobalPosition },
	"event.recordedAt":   func(e *Event) any { return e.RecordedAt },
	"meta.correlationId": func(e *Event) any { return nullIfEmpty(e.Metadata.CorrelationID) },
	"meta.causationId":   func(e *Event) any { return nullIfEmpty(e.Metadata.CausationID) },
	"meta.userId":        func(e *Event) any { return nullIfEmpty(e.Metadata.UserID) },
	"meta.tenantId":      func(e *Event) any { return nullIfEmpty(e.Metadata.TenantID) },
	"meta.dataSubject":   func(e *Event) any { return nullIfEmpty(e.Metadata.DataSubject) },
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ParseSQL parses a declarative projection. source is where text comes
// from ("projections/shipped_items.sql"): it becomes the Projection's
// Source, gives its default name, and starts every error message, which
// names the line too ("projections/x.sql:14: ...").
//
// # The format
//
// A projection file is SQL. Directives are comments that start a line:
//
//	-- strata:projection NAME     optional; the file's name without .sql by default
//	-- strata:categories A, B     required: the stream categories it reads
//	-- strata:on-poison park      optional: halt (the default) or park
//	-- strata:setup               the DDL that creates its tables and indexes
//	-- strata:on TYPE             the statement run for each event of type TYPE
//	-- strata:on-stream-deleted   the statement run when a stream is deleted
//	-- strata:on-erased           the statement run when a data subject is erased
//	-- strata:query NAME          a read the read API serves, with its
//	-- strata:param NAME TYPE ... parameters, then its SELECT (see Query)
//
// The first three come before any section, each at most once. A setup
// section holds any number of statements, up to the next directive; they
// run as one multi-statement Exec, must be idempotent (CREATE TABLE IF NOT
// EXISTS) and may not use parameters. An on section holds exactly one
// statement (a trailing semicolon is allowed), and an event type has one
// section at most; events of types without one are skipped. Other
// comments may go anywhere; unknown directives are errors.
//
// # Deleted streams
//
// Deleting a stream appends the system event $StreamDeleted to it as its
// next version, with the data {"streamId": text, "hard": boolean}. The
// projection receives it in order with the stream's other events, exactly
// once and under the same version guard. Its section is
//
//	-- strata:on-stream-deleted
//	DELETE FROM order_totals
//	WHERE order_id = substr(:event.streamId, strpos(:event.streamId, '-') + 1)
//
// which is the on section of type $StreamDeleted in all but its
// directive: it takes no argument, comes at most once and holds one
// statement, with the parameters of any on statement (:streamId and :hard
// from the data, :event.version the deletion's version, and so on). The
// example takes the stream's id after its category with substr and
// strpos, not split_part, because an id may itself contain "-".
// -- strata:on $StreamDeleted is an error, so that a deletion has one
// spelling, as is any other type that starts with "$" (the system's). A
// projection without the section ignores deletions and keeps the rows of
// a deleted stream. A soft-deleted stream may be written again, its
// versions continuing after the deletion's, and its new events are
// applied like any others: so the statement should remove everything the
// stream's events made, as if the stream had never been written. At
// start the projector checks that the schema of $StreamDeleted is
// registered (every writer schemas apply registers it) and that the
// statement binds only its fields.
//
// # Erased data subjects
//
// Erasing a data subject destroys the key of its personal fields, which
// from then on read as "[erased]", and appends the system event
// $DataSubjectErased, with the data {"subjectId": text}, to each stream
// holding events of the subject. Its section redacts what the projection
// copied of them:
//
//	-- strata:on-erased
//	UPDATE deliveries SET address = '[erased]' WHERE customer_id = :subjectId
//
// It is written as the on-stream-deleted section is, with the parameters
// of any on statement. The event comes once per stream of the subject,
// in order with the stream's events, so the statement should be
// idempotent, and redact the subject's rows of every stream at once. A
// rebuild reads the erased fields as "[erased]" too, and produces the
// same redacted rows.
//
// # Queries
//
// A query section is -- strata:query NAME (a-z, 0-9, _ and -), its
// parameters, one directive each,
//
//	-- strata:param NAME TYPE [required] [default VALUE] [max N]
//
// and one statement, a SELECT (or WITH ... SELECT) that names them as
// :NAME and writes nothing. TYPE is text, int (bigint), bool, timestamp
// (RFC 3339, timestamptz), decimal (exact, numeric) or uuid; each
// placeholder is cast to it. A parameter that is neither required nor
// has a default is NULL when absent; max bounds an int's value and a
// text's length. Every query declares -- strata:param limit int default
// N max M (1 <= N <= M) and uses :limit, normally as LIMIT :limit; the
// read API also never returns more rows than the limit. A parameter used
// but not declared, declared but not used, declared twice, a query name
// used twice, a statement that is not a SELECT or uses INSERT, UPDATE,
// DELETE, MERGE, TRUNCATE or INTO, and a second statement are errors.
//
// # Parameters
//
// In an on statement (the on-stream-deleted one too), :name binds a value
// of the event, the same name to the same parameter each time:
//
//	:field, :address.city    a field of the event's data, or of a record
//	                         within it; a missing field is NULL
//	:data.field              the same; the form for a field called event,
//	                         meta or data
//	:event.id  :event.streamId  :event.category  :event.type    text
//	:event.version  :event.position (global position)           bigint
//	:event.recordedAt                                           timestamptz
//	:meta.correlationId  :meta.causationId  :meta.userId  :meta.tenantId
//	:meta.dataSubject
//	:meta.custom.KEY         metadata, as text; NULL when empty or absent
//
// These are not parameters: a :: cast (:timestamp::timestamptz is the
// parameter timestamp, cast), anything inside '...' and E'...' strings,
// "quoted identifiers", $tag$ dollar-quoted $tag$ strings, -- comments
// and nested /* comments */, and the colon of an array slice: a colon
// right after a word or a number, or before a digit (a[1:2], a[lo:hi]).
// Positional parameters ($1) are errors: the statements are rewritten to
// use them, once, when the file is parsed.
//
// # Values
//
// Data fields bind as pgx sends their Go values (see Event.Data): text,
// integers, floating point, boolean and bytea as themselves; a decimal as
// an exact numeric, never through a float; a timestamp or date as
// timestamptz; a time of day (time-millis, time-micros) as the interval
// since midnight, and an Avro duration as an interval; arrays, maps and
// records as their JSON text, for json and jsonb, with decimals as exact
// numbers, timestamps as RFC 3339 text, times of day as "HH:MM:SS.ffffff"
// and bytes as base64. Where PostgreSQL cannot infer a parameter's type
// from its use (a SELECT list, an operand of ||), cast it:
// :shippingAddress::text, :timestamp::timestamptz, :openedAt::interval::time.
//
// ParseSQL fails on any of the errors above, on an invalid name, policy,
// category or type, on a file with no categories or no on section, and on
// unterminated strings, identifiers and comments.
func ParseSQL(source string, text []byte) (*SQLProjection, error) {
	p := &sqlParser{source: source, src: text, seen: map[string]int{}}
	return p.parse()
}

// LoadDir parses every *.sql file of dir, in name order. It fails when
// dir cannot be read, and otherwise reports the errors of every file
// (see ParseSQL), and a projection name that two files use.
func LoadDir(dir string) ([]*SQLProjection, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load SQL projections: %w", err)
	}
	var (
		all    []*SQLProjection
		errs   []error
		byName = map[string]*SQLProjection{}
	)
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".sql" {
			continue
		}
		source := filepath.Join(dir, e.Name())
		text, err := os.ReadFile(source)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sp, err := ParseSQL(source, text)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other := byName[sp.def.Name]; other != nil {
			errs = append(errs, lineError(source, sp.nameLine, "projection %s is defined in %s too", sp.def.Name, other.def.Source))
			continue
		}
		byName[sp.def.Name] = sp
		all = append(all, sp)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return all, nil
}

// Projection returns the projection to run: a new value each call, whose
// Apply runs the file's statements (see ApplyFunc).
func (sp *SQLProjection) Projection() *Projection {
	p := sp.def
	p.Categories = slices.Clone(p.Categories)
	p.Apply = sp.apply
	return &p
}

// Check validates the file against the latest schemas of its event types,
// which schemaOf returns (Catalog.Latest, for one): each on TYPE must have
// a schema (and on-stream-deleted the system schema of $StreamDeleted),
// and each data parameter must name a field of it, through
// nested records and optional ones (a union of null and a record). It
// returns every problem found, each naming its file and line, joined;
// schemaOf's errors are wrapped.
func (sp *SQLProjection) Check(schemaOf func(eventType string) (*avro.Schema, error)) error {
	var errs []error
	for _, st := range sp.statements {
		s, err := schemaOf(st.eventType)
		if err == nil && s == nil {
			err = errors.New("no schema")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", sp.def.Source, st.onLine, st.directive, err))
			continue
		}
		for _, p := range st.params {
			if p.path == nil {
				continue
			}
			path := strings.Join(p.path, ".")
			if _, ok := s.FieldType(path); !ok {
				errs = append(errs, lineError(sp.def.Source, p.line, "%s has no field %q", st.eventType, path))
			}
		}
	}
	return errors.Join(errs...)
}

// sqlParser parses one file.
type sqlParser struct {
	source string
	src    []byte
	seen   map[string]int // directive (or "on TYPE", "query NAME") → its line
	sp     *SQLProjection
	// pending is the query being declared: its -- strata:query and
	// -- strata:param directives are read, its statement is not.
	pending *Query
}

func (p *sqlParser) errorf(line int, format string, args ...any) error {
	return lineError(p.source, line, format, args...)
}

// lineError is an error at a line of a file: "projections/x.sql:14: ...".
func lineError(source string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", source, line, fmt.Sprintf(format, args...))
}

func (p *sqlParser) parse() (*SQLProjection, error) {
	toks, err := scanSQL(p.source, p.src)
	if err != nil {
		return nil, err
	}
	p.sp = &SQLProjection{def: Projection{Source: p.source, OnPoison: Halt}, nameLine: 1, byType: map[string]*statement{}}
	inSections := false
	for i := 0; i < len(toks); {
		d := toks[i]
		if d.kind != tokDirective {
			return nil, p.errorf(d.line, "SQL outside a section: start one with -- strata:setup or -- strata:on TYPE")
		}
		end := i + 1
		for end < len(toks) && toks[end].kind != tokDirective {
			end++
		}
		body := toks[i+1 : end]
		i = end
		name, arg := d.text, ""
		if n := strings.IndexAny(name, " \t"); n >= 0 {
			name, arg = name[:n], strings.TrimSpace(name[n+1:])
		}
		if p.pending != nil && name != "param" {
			return nil, p.errorf(d.line, "-- strata:query %s has no statement", p.pending.Name)
		}
		switch name {
		case "projection", "categories", "on-poison":
			if inSections {
				return nil, p.errorf(d.line, "-- strata:%s must come before the first section", name)
			}
			if len(body) > 0 {
				return nil, p.errorf(body[0].line, "SQL outside a section: start one with -- strata:setup or -- strata:on TYPE")
			}
			if err := p.header(d, name, arg); err != nil {
				return nil, err
			}
		case "setup":
			inSections = true
			if err := p.setup(d, arg, body); err != nil {
				return nil, err
			}
		case "on":
			inSections = true
			if err := p.on(d, arg, body); err != nil {
				return nil, err
			}
		case "on-stream-deleted":
			inSections = true
			if err := p.systemSection(d, name, arg, eventstore.StreamDeletedType, body); err != nil {
				return nil, err
			}
		case "on-erased":
			inSections = true
			if err := p.systemSection(d, name, arg, eventstore.DataSubjectErasedType, body); err != nil {
				return nil, err
			}
		case "query", "param":
			inSections = true
			var err error
			if name == "query" {
				err = p.query(d, arg)
			} else {
				err = p.queryParam(d, arg)
			}
			if err == nil && len(body) > 0 {
				err = p.queryStatement(d, body)
			}
			if err != nil {
				return nil, err
			}
		default:
			return nil, p.errorf(d.line, "unknown directive -- strata:%s; the directives are projection, categories, on-poison, setup, on, on-stream-deleted, on-erased, query and param", name)
		}
	}
	return p.finish()
}

// once fails when the directive key was already given.
func (p *sqlParser) once(d token, key string) error {
	if line, dup := p.seen[key]; dup {
		return p.errorf(d.line, "-- strata:%s is given twice (first on line %d)", key, line)
	}
	p.seen[key] = d.line
	return nil
}

func (p *sqlParser) header(d token, name, arg string) error {
	if err := p.once(d, name); err != nil {
		return err
	}
	switch name {
	case "projection":
		if err := ValidateName(arg); err != nil {
			return p.errorf(d.line, "%v", err)
		}
		p.sp.def.Name, p.sp.nameLine = arg, d.line
	case "categories":
		cats := strings.FieldsFunc(arg, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		if len(cats) == 0 {
			return p.errorf(d.line, "-- strata:categories names no category")
		}
		for _, c := range cats {
			if err := eventstore.ValidateCategory(c); err != nil {
				return p.errorf(d.line, "%v", err)
			}
		}
		p.sp.def.Categories = cats
	case "on-poison":
		policy, err := ParsePolicy(arg)
		if err != nil {
			return p.errorf(d.line, "%v", err)
		}
		p.sp.def.OnPoison = policy
	}
	return nil
}

func (p *sqlParser) setup(d token, arg string, body []token) error {
	if arg != "" {
		return p.errorf(d.line, "-- strata:setup takes no argument")
	}
	if err := p.once(d, "setup"); err != nil {
		return err
	}
	for _, t := range body {
		if t.kind == tokParam || t.kind == tokPositional {
			return p.errorf(t.line, "the setup section cannot use parameters (%s)", p.src[t.start:t.end])
		}
	}
	if len(body) > 0 {
		p.sp.def.Setup = string(p.src[body[0].start:body[len(body)-1].end])
	}
	return nil
}

func (p *sqlParser) on(d token, typ string, body []token) error {
	if strings.HasPrefix(typ, "$") {
		switch typ {
		case eventstore.StreamDeletedType:
			return p.errorf(d.line, "-- strata:on %s: write -- strata:on-stream-deleted for the section of a deleted stream", typ)
		case eventstore.DataSubjectErasedType:
			return p.errorf(d.line, "-- strata:on %s: write -- strata:on-erased for the section of an erased data subject", typ)
		}
		return p.errorf(d.line, "-- strata:on %s: a type that starts with $ is a system event's, and a projection handles only %s, with -- strata:on-stream-deleted, and %s, with -- strata:on-erased",
			typ, eventstore.StreamDeletedType, eventstore.DataSubjectErasedType)
	}
	if err := eventstore.ValidateTypeName(typ); err != nil {
		return p.errorf(d.line, "-- strata:on: %v", err)
	}
	if err := p.once(d, "on "+typ); err != nil {
		return err
	}
	return p.section(d, "-- strata:on "+typ, "-- strata:on", typ, body)
}

// systemSection reads the section of a system event: $StreamDeleted's
// (on-stream-deleted) or $DataSubjectErased's (on-erased).
func (p *sqlParser) systemSection(d token, name, arg, typ string, body []token) error {
	if arg != "" {
		return p.errorf(d.line, "-- strata:%s takes no argument (its event type is %s)", name, typ)
	}
	if err := p.once(d, name); err != nil {
		return err
	}
	return p.section(d, "-- strata:"+name, "-- strata:"+name, typ, body)
}

// section adds the statement of body, run for each event of type typ,
// to the projection (for directive and section, see oneStatement).
func (p *sqlParser) section(d token, directive, section, typ string, body []token) error {
	stmt, err := p.oneStatement(d, directive, section, typ, body)
	if err != nil {
		return err
	}
	st := &statement{eventType: typ, directive: directive, onLine: d.line, line: stmt[0].line}
	seen := map[string]bool{}
	st.sql, err = p.numbered(stmt, "bind values by name (:field, :event.version)", func(t token) (string, error) {
		key, prm, err := p.param(t)
		if err == nil && !seen[key] {
			seen[key] = true
			st.params = append(st.params, prm)
		}
		return key, err
	}, func(num int, _ string) string { return "$" + strconv.Itoa(num) })
	if err != nil {
		return err
	}
	p.sp.statements = append(p.sp.statements, st)
	p.sp.byType[typ] = st
	return nil
}

// oneStatement returns the only statement of a section (opened by
// directive "-- strata:on OrderShipped", a section "-- strata:on" for who
// "OrderShipped"), without its trailing semicolon.
func (p *sqlParser) oneStatement(d token, directive, section, who string, body []token) ([]token, error) {
	n := slices.IndexFunc(body, func(t token) bool { return t.kind == tokSemicolon })
	if n < 0 {
		n = len(body)
	} else if n+1 < len(body) {
		return nil, p.errorf(body[n+1].line, "a second statement for %s: a %s section holds one statement", who, section)
	}
	if n == 0 {
		return nil, p.errorf(d.line, "%s has no statement", directive)
	}
	return body[:n], nil
}

// numbered returns stmt with its :name parameters replaced by
// placeholder(num, key), numbered from 1 in the order their keys first
// appear, the same key with the same number. resolve gives a parameter's
// key or its error; positional parameters ($1) are refused with hint.
func (p *sqlParser) numbered(stmt []token, hint string, resolve func(token) (string, error), placeholder func(num int, key string) string) (string, error) {
	byKey := map[string]int{}
	var sql strings.Builder
	last := stmt[0].start
	for _, t := range stmt {
		switch t.kind {
		case tokPositional:
			return "", p.errorf(t.line, "positional parameter $%s: %s", t.text, hint)
		case tokParam:
			key, err := resolve(t)
			if err != nil {
				return "", err
			}
			num, ok := byKey[key]
			if !ok {
				num = len(byKey) + 1
				byKey[key] = num
			}
			sql.Write(p.src[last:t.start])
			sql.WriteString(placeholder(num, key))
			last = t.end
		}
	}
	sql.Write(p.src[last:stmt[len(stmt)-1].end])
	return sql.String(), nil
}

// param resolves a parameter's name; key identifies its value, so that
// :name and :data.name share a number.
func (p *sqlParser) param(t token) (key string, _ *param, _ error) {
	prm := &param{name: t.text, line: t.line}
	first, rest, _ := strings.Cut(t.text, ".")
	switch first {
	case "event", "meta":
		if custom, ok := strings.CutPrefix(t.text, "meta.custom."); ok {
			prm.value = func(e *Event) any {
				if v, ok := e.Metadata.Custom[custom]; ok {
					return v
				}
				return nil
			}
			return t.text, prm, nil
		}
		if prm.value = envelope[t.text]; prm.value == nil {
			return "", nil, p.errorf(t.line, ":%s is not a value of the envelope or metadata: they are %s, :meta.custom.KEY; write :data.%s for a data field",
				t.text, envelopeNames(), t.text)
		}
		return t.text, prm, nil
	case "data":
		if rest == "" {
			return "", nil, p.errorf(t.line, ":data names no field: write :data.FIELD")
		}
		prm.path = strings.Split(rest, ".")
	default:
		prm.path = strings.Split(t.text, ".")
	}
	path := prm.path
	prm.value = func(e *Event) any { return lookup(e.Data, path) }
	return "data." + strings.Join(path, "."), prm, nil
}

func envelopeNames() string {
	names := make([]string, 0, len(envelope))
	for n := range envelope {
		names = append(names, ":"+n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// lookup returns the value at path in data, going into nested records;
// nil when a field on the way is missing or null.
func lookup(data map[string]any, path []string) any {
	var v any = data
	for _, name := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[name]
	}
	return v
}

func (p *sqlParser) finish() (*SQLProjection, error) {
	if p.pending != nil {
		return nil, p.errorf(p.pending.Line, "-- strata:query %s has no statement", p.pending.Name)
	}
	def := &p.sp.def
	if def.Name == "" {
		def.Name = strings.TrimSuffix(filepath.Base(p.source), ".sql")
		if err := ValidateName(def.Name); err != nil {
			return nil, p.errorf(1, "%v: rename the file or name the projection with -- strata:projection NAME", err)
		}
	}
	if len(def.Categories) == 0 {
		return nil, p.errorf(1, "no -- strata:categories: a projection names the stream categories it reads")
	}
	if len(p.sp.statements) == 0 {
		return nil, p.errorf(1, "no -- strata:on section: the projection handles no event type")
	}
	for _, q := range p.sp.queries {
		q.Projection = def.Name
	}
	return p.sp, nil
}
