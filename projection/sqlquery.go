package projection

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Query is a read that a declarative projection declares beside its
// tables (-- strata:query NAME, see ParseSQL), and the projector's read
// API serves as GET /v1/projections/{projection}/queries/{name}. It is
// immutable once parsed and safe for concurrent use.
type Query struct {
	Projection string // the name of the projection that declares it
	Name       string
	Source     string // the projection's file
	Line       int    // of its -- strata:query directive
	// Params are its parameters in the order declared; one is limit.
	Params []QueryParam

	sql   string   // with $1..$n, each cast to its parameter's type
	order []string // order[i] is the parameter bound to $i+1
}

// QueryParam is a parameter of a Query, declared by
// -- strata:param NAME TYPE [required] [default VALUE] [max N].
type QueryParam struct {
	Name string
	Type ParamType
	Line int // of its declaration
	// Required refuses a request without it; otherwise an absent
	// parameter is Default or, with no default, NULL.
	Required bool
	Default  string // its text as declared; "" for none
	// Max, when HasMax, is the largest value of an int and the largest
	// length of a text, in characters.
	Max    int64
	HasMax bool

	def any // Default, parsed
}

// ParamType is the type of a query parameter.
type ParamType string

// The parameter types, with what a request writes and the PostgreSQL type
// the statement receives.
const (
	ParamText      ParamType = "text"      // UTF-8 without NUL; text
	ParamInt       ParamType = "int"       // a whole number; bigint
	ParamBool      ParamType = "bool"      // true or false; boolean
	ParamTimestamp ParamType = "timestamp" // RFC 3339; timestamptz
	ParamDecimal   ParamType = "decimal"   // 12.50, -3, 1e6: exact; numeric
	ParamUUID      ParamType = "uuid"      // 8-4-4-4-12 hexadecimal digits; uuid
)

// paramCasts is the cast each type's placeholder gets, so that PostgreSQL
// never has to infer a parameter's type. Decimals and UUIDs travel as the
// text the request gave, which PostgreSQL converts exactly.
var paramCasts = map[ParamType]string{
	ParamText:      "::text",
	ParamInt:       "::bigint",
	ParamBool:      "::boolean",
	ParamTimestamp: "::timestamptz",
	ParamDecimal:   "::text::numeric",
	ParamUUID:      "::text::uuid",
}

// LimitParam is the parameter every query declares, as an int with a
// default and a max: the statement must use it, and the read API never
// answers more rows than it says.
const LimitParam = "limit"

// reservedParams are the read API's own parameters.
var reservedParams = []string{"waitFor", "waitForPosition", "timeout"}

var (
	queryNameRE  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	paramNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	decimalRE    = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
	uuidRE       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	maxDecimalSz = 100 // characters of a decimal parameter
)

// SQL returns the statement as PostgreSQL runs it, with $1..$n.
func (q *Query) SQL() string { return q.sql }

// Param returns the parameter called name.
func (q *Query) Param(name string) (QueryParam, bool) {
	i := slices.IndexFunc(q.Params, func(p QueryParam) bool { return p.Name == name })
	if i < 0 {
		return QueryParam{}, false
	}
	return q.Params[i], true
}

// ParamError is a request's parameter value that a Query refuses.
type ParamError struct {
	Param  string
	Reason string // such as "is required", "must be a whole number ..."
}

func (e *ParamError) Error() string { return e.Param + " " + e.Reason }

// Bind returns the arguments of the statement (for $1..$n) and the
// limit, from values, the request's parameters by name (absent ones are
// missing from the map). It fails with a *ParamError naming the first
// parameter in declaration order that is missing while required or whose
// value does not parse or is over its max; it does not look at names
// values has that the query does not declare.
func (q *Query) Bind(values map[string]string) (args []any, limit int64, err error) {
	byName := make(map[string]any, len(q.Params))
	for _, p := range q.Params {
		v, ok := values[p.Name]
		switch {
		case !ok && p.Required:
			return nil, 0, &ParamError{p.Name, "is required"}
		case !ok:
			byName[p.Name] = p.def
		default:
			if byName[p.Name], err = p.parse(v); err != nil {
				return nil, 0, err
			}
		}
	}
	limit = byName[LimitParam].(int64)
	args = make([]any, len(q.order))
	for i, name := range q.order {
		args[i] = byName[name]
	}
	return args, limit, nil
}

// parse converts a value given for p, and checks it against p's max.
func (p *QueryParam) parse(v string) (any, error) {
	refuse := func(format string, args ...any) (any, error) {
		return nil, &ParamError{p.Name, fmt.Sprintf(format, args...)}
	}
	switch p.Type {
	case ParamText:
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return refuse("must be UTF-8 text without NUL characters")
		}
		if p.Required && strings.TrimSpace(v) == "" {
			return refuse("is required, and not empty or all spaces")
		}
		if n := utf8.RuneCountInString(v); p.HasMax && int64(n) > p.Max {
			return refuse("is longer than %d characters (%d)", p.Max, n)
		}
		return v, nil
	case ParamInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return refuse("must be a whole number, not %.40q", v)
		}
		if p.Name == LimitParam && n < 1 {
			return refuse("must be at least 1, not %d", n)
		}
		if p.HasMax && n > p.Max {
			return refuse("must be at most %d, not %d", p.Max, n)
		}
		return n, nil
	case ParamBool:
		switch v {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return refuse("must be true or false, not %.40q", v)
	case ParamTimestamp:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return refuse("must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z, not %.40q", v)
		}
		return t, nil
	case ParamDecimal:
		if len(v) > maxDecimalSz || !decimalRE.MatchString(v) {
			return refuse("must be a decimal number such as 12.50, not %.40q", v)
		}
		return v, nil
	case ParamUUID:
		if !uuidRE.MatchString(v) {
			return refuse("must be a UUID such as 123e4567-e89b-12d3-a456-426614174000, not %.40q", v)
		}
		return v, nil
	}
	return refuse("has an unknown type %s", p.Type)
}

// Queries returns the projection's queries in the order declared.
func (sp *SQLProjection) Queries() []*Query { return slices.Clone(sp.queries) }

// query starts the query that -- strata:query NAME declares; its params
// and statement follow.
func (p *sqlParser) query(d token, name string) error {
	if !queryNameRE.MatchString(name) {
		return p.errorf(d.line, "-- strata:query %q: a query name is 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter", name)
	}
	if err := p.once(d, "query "+name); err != nil {
		return err
	}
	p.pending = &Query{Name: name, Source: p.source, Line: d.line}
	return nil
}

// queryParam adds the parameter of a -- strata:param directive to the
// pending query.
func (p *sqlParser) queryParam(d token, arg string) error {
	q := p.pending
	if q == nil {
		return p.errorf(d.line, "-- strata:param outside a query: parameters follow -- strata:query NAME, before its statement")
	}
	words := strings.Fields(arg)
	if len(words) < 2 {
		return p.errorf(d.line, "-- strata:param NAME TYPE [required] [default VALUE] [max N]")
	}
	prm := QueryParam{Name: words[0], Type: ParamType(words[1]), Line: d.line}
	switch {
	case !paramNameRE.MatchString(prm.Name):
		return p.errorf(d.line, "parameter name %q: 1 to 63 characters of A-Z, a-z, 0-9 and _, not starting with a digit", prm.Name)
	case slices.Contains(reservedParams, prm.Name):
		return p.errorf(d.line, "parameter name %s is the read API's own (%s)", prm.Name, strings.Join(reservedParams, ", "))
	case paramCasts[prm.Type] == "":
		return p.errorf(d.line, "parameter %s has unknown type %q; the types are text, int, bool, timestamp, decimal and uuid", prm.Name, prm.Type)
	}
	if other, dup := q.Param(prm.Name); dup {
		return p.errorf(d.line, "parameter %s of query %s is declared twice (first on line %d)", prm.Name, q.Name, other.Line)
	}
	hasDefault := false
	for rest := words[2:]; len(rest) > 0; {
		switch rest[0] {
		case "required":
			if prm.Required {
				return p.errorf(d.line, "parameter %s: required is given twice", prm.Name)
			}
			prm.Required, rest = true, rest[1:]
		case "default", "max":
			if len(rest) < 2 {
				return p.errorf(d.line, "parameter %s: %s needs a value", prm.Name, rest[0])
			}
			if rest[0] == "default" {
				if hasDefault {
					return p.errorf(d.line, "parameter %s: default is given twice", prm.Name)
				}
				hasDefault, prm.Default = true, rest[1]
			} else {
				if prm.HasMax {
					return p.errorf(d.line, "parameter %s: max is given twice", prm.Name)
				}
				if prm.Type != ParamInt && prm.Type != ParamText {
					return p.errorf(d.line, "parameter %s: max applies to int and text parameters, not %s", prm.Name, prm.Type)
				}
				n, err := strconv.ParseInt(rest[1], 10, 64)
				if err != nil || (prm.Type == ParamText && n < 1) {
					return p.errorf(d.line, "parameter %s: max must be a whole number%s, not %q", prm.Name,
						map[bool]string{true: " of at least 1"}[prm.Type == ParamText], rest[1])
				}
				prm.Max, prm.HasMax = n, true
			}
			rest = rest[2:]
		default:
			return p.errorf(d.line, "parameter %s: unknown option %q; the options are required, default VALUE and max N", prm.Name, rest[0])
		}
	}
	if prm.Required && hasDefault {
		return p.errorf(d.line, "parameter %s is required and has a default: choose one", prm.Name)
	}
	if hasDefault {
		v, err := prm.parse(prm.Default)
		if err != nil {
			return p.errorf(d.line, "parameter %s: default %v", prm.Name, err.(*ParamError).Reason)
		}
		prm.def = v
	}
	if prm.Name == LimitParam && (prm.Type != ParamInt || !hasDefault || !prm.HasMax) {
		return p.errorf(d.line, "parameter limit must be declared as: -- strata:param limit int default N max M")
	}
	q.Params = append(q.Params, prm)
	return nil
}

// queryStatement completes the pending query with its statement.
func (p *sqlParser) queryStatement(d token, body []token) error {
	q := p.pending
	p.pending = nil
	stmt, err := p.oneStatement(d, "-- strata:query "+q.Name, "-- strata:query", q.Name, body)
	if err != nil {
		return err
	}
	first := strings.ToLower(string(p.src[stmt[0].start:stmt[0].end]))
	if first != "select" && first != "with" {
		return p.errorf(stmt[0].line, "query %s is not a SELECT: a query only reads (it starts with SELECT or WITH)", q.Name)
	}
	for _, t := range stmt {
		if t.kind != tokText {
			continue
		}
		switch w := strings.ToLower(string(p.src[t.start:t.end])); w {
		case "insert", "update", "delete", "merge", "truncate", "into":
			return p.errorf(t.line, "query %s uses %s: a query only reads", q.Name, strings.ToUpper(w))
		}
	}
	used := map[string]bool{}
	q.sql, err = p.numbered(stmt, "use a declared parameter by name (:NAME)", func(t token) (string, error) {
		if _, ok := q.Param(t.text); !ok {
			return "", p.errorf(t.line, "query %s uses :%s, which it does not declare (-- strata:param %s TYPE)", q.Name, t.text, t.text)
		}
		if !used[t.text] {
			used[t.text] = true
			q.order = append(q.order, t.text)
		}
		return t.text, nil
	}, func(num int, name string) string {
		prm, _ := q.Param(name)
		return "$" + strconv.Itoa(num) + paramCasts[prm.Type]
	})
	if err != nil {
		return err
	}
	if _, ok := q.Param(LimitParam); !ok {
		return p.errorf(q.Line, "query %s declares no limit: -- strata:param limit int default N max M, used as LIMIT :limit", q.Name)
	}
	for _, prm := range q.Params {
		if !used[prm.Name] {
			return p.errorf(prm.Line, "query %s declares parameter %s but does not use it", q.Name, prm.Name)
		}
	}
	p.sp.queries = append(p.sp.queries, q)
	return nil
}
