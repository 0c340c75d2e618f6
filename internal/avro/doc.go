// Package avro holds Strata's Avro schemas and data: parsing schemas (with
// their Parsing Canonical Form and CRC-64-AVRO fingerprint), converting
// between natural JSON, native Go values and Avro binary, resolving data
// written with one schema into another, and checking compatibility the way
// a Confluent-style registry does.
//
// goavro (github.com/linkedin/goavro/v2) validates every schema Parse
// accepts, since other parts of Strata may encode with it, but the
// conversions here are this package's own, built from the Avro
// specification and checked against Apache Avro's reference implementation
// (testdata/gen_golden.py): goavro neither resolves a writer's schema against
// a reader's nor checks compatibility, and its canonical form is not the
// specification's for namespaced or logical types.
//
// The pieces:
//
//   - Parse and ParseAny build an immutable *Schema.
//   - Schema.FromJSON and Schema.ToJSON convert natural JSON (CONTRACT.md §2)
//     to and from Avro binary; Schema.Encode and Schema.Decode do the same
//     for native Go values.
//   - NewResolver compiles, once per writer/reader pair, a program that reads
//     the writer's binary into the reader's shape: Resolver.Decode,
//     Resolver.ToJSON, Resolver.Transcode.
//   - CheckCompatibility lists why a reader cannot read a writer's data, and
//     Level.Check applies a registry compatibility level to a new schema.
//
// Every exported type is safe for concurrent use once built. Errors wrap one
// of the sentinels (ErrInvalidSchema, ErrInvalidJSON, ErrSchemaViolation,
// ErrDecode, ErrIncompatible) and, where there is more to say, are typed:
// *ValidationError and *DecodeError carry the path of the offending value,
// *CompatibilityError and *LevelError the incompatibilities found.
package avro
