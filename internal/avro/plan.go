package avro

import (
	"fmt"
	"time"
)

// A plan is the compiled program that reads data written with a writer's
// type into a reader's type (specification, "Schema Resolution"). Three
// interpreters walk the same plan over the writer's binary: decode.go builds
// native Go values, tojson.go writes natural JSON, transcode.go writes the
// reader's binary. A schema's own Decode and ToJSON use the identity plan
// (writer = reader). Plans are built once, never modified afterwards, and
// shared between goroutines.
type plan struct {
	op   opcode
	from kind // the writer's kind, for promotions
	// logical is the reader's logical type when the writer has the same one
	// (for decimals, the same precision and scale); otherwise the reader
	// sees the underlying type, as the specification asks.
	logical logical
	r, w    *node

	elem    *plan // array items, map values
	minItem int   // fewest bytes a writer item takes, to bound block counts

	steps   []fieldStep // record: one per writer field, in writer order
	fills   []*fill     // record: reader fields the writer lacks
	nfields int         // record: reader field count
	ordered bool        // record: steps and fills already come in reader order

	branches []*plan // writer union: the plan for each writer branch
	index    int     // reader union: the branch that receives the value
	inner    *plan   // reader union: the plan for that branch

	enumMap []int  // enum: reader symbol index per writer symbol, -1 if none
	fail    string // opFail: why data that reaches here cannot be read
}

type opcode uint8

const (
	opNull opcode = iota
	opBoolean
	opInt
	opLong
	opFloat
	opDouble
	opBytes
	opString
	opFixed
	opEnum
	opArray
	opMap
	opRecord
	opWriterUnion // read the writer's branch index, go on with branches[i]
	opReaderUnion // a non-union writer value into branch index of the reader's union
	opFail        // a writer union branch (or type) that the reader has no match for
)

// opOfKind is the opcode that reads a value into a reader's type of each
// kind (unions are handled apart).
var opOfKind = [...]opcode{
	kindNull: opNull, kindBoolean: opBoolean, kindInt: opInt, kindLong: opLong,
	kindFloat: opFloat, kindDouble: opDouble, kindBytes: opBytes, kindString: opString,
	kindRecord: opRecord, kindEnum: opEnum, kindArray: opArray, kindMap: opMap, kindFixed: opFixed,
}

// fieldStep reads one writer field: into reader field index, or skipped.
type fieldStep struct {
	plan  *plan // nil: skip a value of type skip
	skip  *node
	index int
	name  string
}

// fill supplies a reader field that the writer lacks from its default.
type fill struct {
	index int
	name  string
	bin   []byte // the default's binary encoding in the reader's type
	json  []byte // its natural JSON
	// value is the native default, shared between results when it is
	// immutable; a mutable one (a map, slice or []byte) is decoded afresh
	// from bin with the identity plan each time.
	value  any
	shared bool
	plan   *plan
}

// compiler builds the plans of one writer/reader pair.
type compiler struct {
	check *checker
	plans map[[2]*node]*plan
	fills []fillJob // defaults are evaluated once every plan is complete
}

type fillJob struct {
	f  *fill
	rf *field
}

// compilePlan compiles the plan that reads w's data as r. The pair must
// have passed a resolve-mode check: what remains unresolvable depends on
// the data and becomes opFail.
func compilePlan(w, r *node) *plan {
	c := &compiler{check: newChecker(true), plans: make(map[[2]*node]*plan)}
	p := c.compile(w, r)
	for _, job := range c.fills {
		c.evaluate(job)
	}
	return p
}

func (c *compiler) compile(w, r *node) *plan {
	key := [2]*node{w, r}
	if p, ok := c.plans[key]; ok {
		return p
	}
	p := &plan{w: w, r: r, from: w.kind}
	c.plans[key] = p // before the children: recursive types refer back
	switch {
	case w.kind == kindUnion:
		p.op = opWriterUnion
		p.branches = make([]*plan, len(w.branches))
		for i, wb := range w.branches {
			if c.check.compatible(r, wb) {
				p.branches[i] = c.compile(wb, r)
			} else {
				p.branches[i] = &plan{op: opFail, w: wb, r: r, fail: fmt.Sprintf("the writer's %s branch has no match in the reader's %s", wb.describe(), r.describe())}
			}
		}
	case r.kind == kindUnion:
		p.op = opReaderUnion
		p.index = c.check.readerBranch(r, w)
		if p.index < 0 {
			p.op, p.fail = opFail, fmt.Sprintf("the writer's %s has no match in the reader's union", w.describe())
			break
		}
		p.inner = c.compile(w, r.branches[p.index])
	default:
		c.compileValue(p, w, r)
	}
	return p
}

func (c *compiler) compileValue(p *plan, w, r *node) {
	if w.logical == r.logical && w.kind == r.kind &&
		(r.logical != logicalDecimal || (w.precision == r.precision && w.scale == r.scale)) {
		p.logical = r.logical
	}
	p.op = opOfKind[r.kind]
	switch r.kind {
	case kindEnum:
		p.enumMap = make([]int, len(w.symbols))
		for i, s := range w.symbols {
			j, ok := r.symbolIndex[s]
			if !ok {
				j = r.enumDefault // -1 when there is none
			}
			p.enumMap[i] = j
		}
	case kindArray, kindMap:
		p.elem = c.compile(w.items, r.items)
		p.minItem = minSize(w.items)
		if r.kind == kindMap {
			p.minItem++ // the key's length
		}
	case kindRecord:
		c.compileRecord(p, w, r)
	}
}

func (c *compiler) compileRecord(p *plan, w, r *node) {
	p.nfields = len(r.fields)
	readerOf := make([]int, len(w.fields))
	for i := range readerOf {
		readerOf[i] = -1
	}
	p.ordered = true
	last := -1
	for ri, wi := range matchFields(r, w) {
		if wi >= 0 {
			readerOf[wi] = ri
			continue
		}
		f := &fill{index: ri, name: r.fields[ri].name}
		p.fills = append(p.fills, f)
		c.fills = append(c.fills, fillJob{f: f, rf: r.fields[ri]})
	}
	for wi, wf := range w.fields {
		ri := readerOf[wi]
		if ri < 0 {
			p.steps = append(p.steps, fieldStep{skip: wf.typ, index: -1})
			continue
		}
		if ri < last {
			p.ordered = false
		}
		last = ri
		p.steps = append(p.steps, fieldStep{plan: c.compile(wf.typ, r.fields[ri].typ), index: ri, name: r.fields[ri].name})
	}
	for _, f := range p.fills {
		if f.index < last {
			p.ordered = false
		}
	}
}

// evaluate computes a default's binary, JSON and native forms.
func (c *compiler) evaluate(job fillJob) {
	f, rf := job.f, job.rf
	f.bin = rf.defaultBin
	f.plan = c.compile(rf.typ, rf.typ)
	// Parse validated the default, so these cannot fail.
	f.value, _ = decodeWith(f.plan, f.bin)
	f.json, _ = jsonWith(nil, f.plan, f.bin)
	f.shared = immutable(f.value)
}

// immutable reports whether a native value can be shared between results.
func immutable(v any) bool {
	switch v.(type) {
	case nil, bool, int32, int64, float32, float64, string, time.Time, time.Duration, Decimal, Duration:
		return true
	}
	return false
}
