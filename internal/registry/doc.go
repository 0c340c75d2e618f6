// Package registry is Strata's schema registry: the embedded,
// Confluent-compatible registry (CONTRACT.md §3), a client for an external
// one, and the Catalog through which the writer, the relay and the
// projector turn event data into Avro and back.
//
// The pieces:
//
//   - Registry is the embedded registry's service over a Storage (the
//     PostgreSQL tables of postgres.RegistryStore, or MemStorage in tests):
//     registration with compatibility checks, look-ups, configuration.
//   - NewHandler serves a Registry over HTTP as the subset of the
//     Confluent Schema Registry API that Strata promises; IsWrite tells the
//     writer's authentication which of its requests change anything.
//   - Client speaks to an external Confluent-compatible registry
//     (STRATA_REGISTRY_URL) through franz-go's sr package.
//   - Catalog caches schemas from a Registry or a Client (both are a
//     Source) and encodes and decodes events: event type → subject →
//     latest schema, stored fingerprint → schema and registry id, and one
//     compiled resolver per writer/reader pair.
//   - ReadSchemaDir and Apply implement `writer schemas apply`.
//
// Subjects follow the record-name strategy: a subject equal to the full
// name of the record it holds is an event type, named by the record's
// simple name, which must be unique in the store. Other subjects are kept
// as any Confluent registry keeps them, but are not event types.
//
// Errors from the registry are *Error, with Confluent's error codes; the
// Catalog's are the event store's (*eventstore.Error and friends), since
// it serves the writer's API.
package registry
