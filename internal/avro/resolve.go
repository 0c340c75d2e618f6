package avro

// Resolver reads data written with one schema (the writer's) as another
// (the reader's), following the specification's "Schema Resolution": record
// fields matched by name and by the reader's field aliases, reader fields the
// writer lacks filled from their defaults, writer fields the reader lacks
// skipped, the promotions int → long → float → double and string ↔ bytes,
// enum symbols matched by name (unknown ones take the reader's enum
// default), unions on either side or both, named types matched by
// unqualified name or the reader's aliases. A logical type is kept only
// when both sides have the same one (a decimal also needs the same precision
// and scale); otherwise the reader gets the underlying type, since, for
// instance, reading a scale-2 decimal's bytes at scale 3 would silently
// divide it by ten.
//
// NewResolver compiles the pair once into a program that walks the writer's
// binary directly, so a Resolver should be kept and reused (cached per
// writer/reader pair). A *Resolver is immutable and safe for concurrent use.
type Resolver struct {
	writer, reader *Schema
	plan           *plan
}

// NewResolver compiles the resolution of writer's data into reader's shape.
// It fails with a *CompatibilityError (errors.Is ErrIncompatible) when no
// datum of the writer could be read: a reader field without a default that
// the writer lacks, mismatched types, names or fixed sizes.
//
// A writer union branch or enum symbol that the reader cannot take does not
// fail NewResolver, as only the data using it is unreadable: decoding such
// a datum fails with a *DecodeError. Use CheckCompatibility to rule those
// out for all data.
func NewResolver(writer, reader *Schema) (*Resolver, error) {
	if incs := newChecker(true).check(reader.root, writer.root); len(incs) > 0 {
		return nil, &CompatibilityError{Incompatibilities: incs}
	}
	return &Resolver{writer: writer, reader: reader, plan: compilePlan(writer.root, reader.root)}, nil
}

// Writer returns the writer's schema.
func (r *Resolver) Writer() *Schema { return r.writer }

// Reader returns the reader's schema.
func (r *Resolver) Reader() *Schema { return r.reader }

// Decode decodes the writer's binary into native Go values in the reader's
// shape (see Schema.Decode for the Go types). Errors are *DecodeError.
func (r *Resolver) Decode(bin []byte) (any, error) {
	return decodeWith(r.plan, bin)
}

// ToJSON decodes the writer's binary into natural JSON in the reader's
// shape, as the reader's Schema.ToJSON would write it; the result is valid
// input for the reader's FromJSON. Errors are *DecodeError.
func (r *Resolver) ToJSON(bin []byte) ([]byte, error) {
	return jsonWith(nil, r.plan, bin)
}

// Transcode re-encodes the writer's binary as the reader's binary: the
// upcast form of an event, readable with the reader's schema alone. Where a
// logical type differs between the two (say decimal scale 2 against 3), the
// bytes of the underlying type are carried over unchanged, which the
// reader's schema then interprets with its own logical type: check
// compatibility of logical types yourself before storing transcoded data.
// Errors are *DecodeError.
func (r *Resolver) Transcode(bin []byte) ([]byte, error) {
	in := input{buf: bin}
	out, err := in.transcode(nil, r.plan)
	if err != nil {
		return nil, finishPath(err)
	}
	if err := in.end(); err != nil {
		return nil, err
	}
	return out, nil
}
