package avro

import (
	"fmt"
	"slices"
	"strings"
)

// IncompatibilityType names the rule a reader/writer pair breaks, with the
// names Apache Avro's SchemaCompatibility and Confluent's registry use.
type IncompatibilityType string

// The incompatibility types of Apache Avro's SchemaIncompatibilityType.
const (
	NameMismatch                   IncompatibilityType = "NAME_MISMATCH"
	FixedSizeMismatch              IncompatibilityType = "FIXED_SIZE_MISMATCH"
	MissingEnumSymbols             IncompatibilityType = "MISSING_ENUM_SYMBOLS"
	ReaderFieldMissingDefaultValue IncompatibilityType = "READER_FIELD_MISSING_DEFAULT_VALUE"
	TypeMismatch                   IncompatibilityType = "TYPE_MISMATCH"
	MissingUnionBranch             IncompatibilityType = "MISSING_UNION_BRANCH"
)

// Incompatibility is one reason why a reader cannot read a writer's data.
type Incompatibility struct {
	Type IncompatibilityType
	// Location is a JSON-pointer-like path into the reader's schema, as Avro
	// and Confluent report it: "/" for the top, "/fields/3" for the reader's
	// fourth field, "/fields/0/type/items", ".../symbols", ".../name", and a
	// writer union's branch index after a union's path.
	Location string
	// Message gives the detail: the field name for a missing default, the
	// missing symbols, the expected name or size, or the two types.
	Message string
}

// String formats the incompatibility as
// "READER_FIELD_MISSING_DEFAULT_VALUE at /fields/3: currency".
func (i Incompatibility) String() string {
	return fmt.Sprintf("%s at %s: %s", i.Type, i.Location, i.Message)
}

// CompatibilityError lists every incompatibility found between a reader and
// a writer schema. It matches ErrIncompatible with errors.Is.
type CompatibilityError struct {
	Incompatibilities []Incompatibility
}

// Error lists the incompatibilities, separated by semicolons.
func (e *CompatibilityError) Error() string {
	parts := make([]string, len(e.Incompatibilities))
	for i, inc := range e.Incompatibilities {
		parts[i] = inc.String()
	}
	return "avro: the reader's schema cannot read the writer's data: " + strings.Join(parts, "; ")
}

// Is reports whether target is ErrIncompatible.
func (e *CompatibilityError) Is(target error) bool { return target == ErrIncompatible }

// CheckCompatibility reports whether data written with writer can always be
// read with reader: nil if so, otherwise a *CompatibilityError that lists
// every incompatibility with its rule and location.
//
// The verdicts are those of Apache Avro's ReaderWriterCompatibilityChecker
// (which Confluent's registry uses), corrected where it departs from the
// specification:
//   - named types match by unqualified name, or by the unqualified name of
//     one of the reader's aliases (Avro compares aliases with the writer's
//     full name, so an alias written relative to a namespace never matches);
//   - a reader field absent from the writer needs a default even when its
//     type is an enum with a default (Avro checks the enum against the whole
//     writer record instead, and reports TYPE_MISMATCH);
//   - locations stay exact below a writer union (Avro restarts them at "/").
//
// Like Avro's checker it ignores logical types: a decimal whose scale or
// precision changed is "compatible" because its bytes can be read, and a
// Resolver then gives the reader the underlying bytes (specification,
// "Logical Types"), not a decimal. Safe for concurrent use.
func CheckCompatibility(reader, writer *Schema) error {
	c := newChecker(false)
	if incs := c.check(reader.root, writer.root); len(incs) > 0 {
		return &CompatibilityError{Incompatibilities: incs}
	}
	return nil
}

// checker compares a reader with a writer type. In resolve mode it reports
// only what makes every datum unreadable: a writer enum symbol or union
// branch that the reader lacks fails only the data that uses it, so the
// resolution plan turns those into errors at decode time instead.
type checker struct {
	resolve bool
	memo    map[[2]*node]*checkResult
}

type checkResult struct {
	done bool
	incs []Incompatibility // locations relative to the pair
}

func newChecker(resolve bool) *checker {
	return &checker{resolve: resolve, memo: make(map[[2]*node]*checkResult)}
}

// check returns the incompatibilities of reading w's data with r, with
// locations relative to r ("/" for r itself). A pair met again while it is
// being checked (a recursive type) is taken as compatible, as in Avro.
func (c *checker) check(r, w *node) []Incompatibility {
	key := [2]*node{r, w}
	if res, ok := c.memo[key]; ok {
		if !res.done {
			return nil
		}
		return res.incs
	}
	res := &checkResult{}
	c.memo[key] = res
	res.incs = c.calculate(r, w)
	res.done = true
	return res.incs
}

// compatible reports whether w's data (all of it, in resolve mode: the
// parts that can be read at all) can be read with r.
func (c *checker) compatible(r, w *node) bool { return len(c.check(r, w)) == 0 }

func (c *checker) calculate(r, w *node) []Incompatibility {
	if r.kind == w.kind {
		switch r.kind {
		case kindArray:
			return under("items", c.check(r.items, w.items))
		case kindMap:
			return under("values", c.check(r.items, w.items))
		case kindFixed:
			incs := c.names(r, w)
			if r.size != w.size {
				incs = append(incs, incompatible(FixedSizeMismatch, "/size", "expected: %d, found: %d", w.size, r.size))
			}
			return incs
		case kindEnum:
			return append(c.names(r, w), c.symbols(r, w)...)
		case kindRecord:
			return append(c.names(r, w), c.fields(r, w)...)
		case kindUnion:
			return c.unions(r, w)
		default:
			return nil // same primitive type
		}
	}
	switch {
	case w.kind == kindUnion:
		return c.writerUnion(r, w)
	case promotable(w.kind, r.kind):
		return nil
	case r.kind == kindUnion:
		if c.readerBranch(r, w) >= 0 {
			return nil
		}
		return []Incompatibility{incompatible(MissingUnionBranch, "/", "reader union lacking writer type: %s", strings.ToUpper(w.kind.String()))}
	default:
		return []Incompatibility{incompatible(TypeMismatch, "/", "reader type: %s not compatible with writer type: %s", r.kind, w.kind)}
	}
}

// promotable reports the specification's promotions of a writer's type.
func promotable(w, r kind) bool {
	switch w {
	case kindInt:
		return r == kindLong || r == kindFloat || r == kindDouble
	case kindLong:
		return r == kindFloat || r == kindDouble
	case kindFloat:
		return r == kindDouble
	case kindString:
		return r == kindBytes
	case kindBytes:
		return r == kindString
	}
	return false
}

// namesMatch reports whether named types match for resolution: by
// unqualified name, or by the unqualified name of one of the reader's aliases.
func namesMatch(r, w *node) bool {
	ws := simpleName(w.name)
	if simpleName(r.name) == ws {
		return true
	}
	for _, a := range r.aliases {
		if simpleName(a) == ws {
			return true
		}
	}
	return false
}

func (c *checker) names(r, w *node) []Incompatibility {
	if namesMatch(r, w) {
		return nil
	}
	return []Incompatibility{incompatible(NameMismatch, "/name", "expected: %s", w.name)}
}

func (c *checker) symbols(r, w *node) []Incompatibility {
	if c.resolve || r.enumDefault >= 0 {
		return nil
	}
	var missing []string
	for _, s := range w.symbols {
		if _, ok := r.symbolIndex[s]; !ok {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return []Incompatibility{incompatible(MissingEnumSymbols, "/symbols", "[%s]", strings.Join(missing, ", "))}
}

func (c *checker) fields(r, w *node) []Incompatibility {
	var incs []Incompatibility
	for i, wi := range matchFields(r, w) {
		rf := r.fields[i]
		loc := fmt.Sprintf("fields/%d", i)
		if wi < 0 {
			if !rf.hasDefault {
				incs = append(incs, incompatible(ReaderFieldMissingDefaultValue, "/"+loc, "%s", rf.name))
			}
			continue
		}
		incs = append(incs, under(loc+"/type", c.check(rf.typ, w.fields[wi].typ))...)
	}
	return incs
}

// matchFields returns, for each reader field, the index of the writer field
// it reads, or -1. A reader field reads the writer field of the same name;
// failing that, the first of its aliases that names a writer field no other
// reader field reads by name. Each writer field is read at most once.
func matchFields(r, w *node) []int {
	match := make([]int, len(r.fields))
	claimed := make([]bool, len(w.fields))
	for i, rf := range r.fields {
		match[i] = -1
		if wi, ok := w.fieldIndex[rf.name]; ok {
			match[i] = wi
			claimed[wi] = true
		}
	}
	for i, rf := range r.fields {
		if match[i] >= 0 {
			continue
		}
		for _, a := range rf.aliases {
			if wi, ok := w.fieldIndex[a]; ok && !claimed[wi] {
				match[i] = wi
				claimed[wi] = true
				break
			}
		}
	}
	return match
}

func (c *checker) unions(r, w *node) []Incompatibility {
	var incs []Incompatibility
	readable := 0
	for i, wb := range w.branches {
		if c.compatible(r, wb) {
			readable++
			continue
		}
		if !c.resolve {
			incs = append(incs, incompatible(MissingUnionBranch, fmt.Sprintf("/%d", i), "reader union lacking writer type: %s", strings.ToUpper(wb.kind.String())))
		}
	}
	if c.resolve && readable == 0 && len(w.branches) > 0 {
		return []Incompatibility{incompatible(MissingUnionBranch, "/", "reader union matches no branch of the writer's union")}
	}
	return incs
}

// writerUnion checks a writer union against a reader that is not a union:
// every branch must be readable (in resolve mode, at least one).
func (c *checker) writerUnion(r, w *node) []Incompatibility {
	var incs []Incompatibility
	for _, wb := range w.branches {
		sub := c.check(r, wb)
		if c.resolve && len(sub) == 0 {
			return nil
		}
		incs = append(incs, sub...)
	}
	return incs
}

// readerBranch returns the reader union branch that reads w's data: the
// first compatible branch of the same type (same kind, and for named types
// matching names), else the first compatible branch (a promotion), else -1.
//
// Preferring the same type is Java's rule. The specification's letter (and
// python-avro) takes the first branch that matches at all, so an int read
// with ["long", "int"] would become a long, and reading data with its own
// schema would change its union branches.
func (c *checker) readerBranch(r, w *node) int {
	for i, rb := range r.branches {
		if rb.kind == w.kind && (!rb.kind.named() || namesMatch(rb, w)) && c.compatible(rb, w) {
			return i
		}
	}
	for i, rb := range r.branches {
		if c.compatible(rb, w) {
			return i
		}
	}
	return -1
}

func incompatible(t IncompatibilityType, loc, format string, args ...any) Incompatibility {
	return Incompatibility{Type: t, Location: loc, Message: fmt.Sprintf(format, args...)}
}

// under prefixes the locations of incs with the path segment seg.
func under(seg string, incs []Incompatibility) []Incompatibility {
	if len(incs) == 0 {
		return nil
	}
	out := slices.Clone(incs)
	for i := range out {
		if out[i].Location == "/" {
			out[i].Location = "/" + seg
		} else {
			out[i].Location = "/" + seg + out[i].Location
		}
	}
	return out
}
