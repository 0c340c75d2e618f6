package registry

import (
	"strings"

	"github.com/strata-events/strata/internal/avro"
)

// System events are the events Strata itself appends, such as the one
// that marks a stream deleted. Their types are named "$" and their
// record's simple name, which no user's type can be (an Avro name has no
// "$"); their records live in namespace SystemNamespace. Every schemas
// apply registers them (WithSystemSchemas), so that Kafka consumers and
// projectors decode them as any other event.
const (
	SystemNamespace = "strata.system"
)

// streamDeletedSchema is the schema of $StreamDeleted.
const streamDeletedSchema = `{
  "type": "record", "name": "StreamDeleted", "namespace": "strata.system",
  "doc": "Appended by Strata to a stream it deletes, as its next version: the events before it are the deleted ones. A soft deletion hides the stream's events up to this one from reads, and the stream may be written again, continuing its versions; a hard one forbids it for good.",
  "fields": [
    {"name": "streamId", "type": "string"},
    {"name": "hard", "type": "boolean", "doc": "whether the stream can never be written again"}
  ]
}`

// dataSubjectErasedSchema is the schema of $DataSubjectErased.
const dataSubjectErasedSchema = `{
  "type": "record", "name": "DataSubjectErased", "namespace": "strata.system",
  "doc": "Appended by Strata to each stream that holds events of a data subject it erases: the subject's key is destroyed, and the personal fields of its events read as \"[erased]\" from now on. Read models should redact what they copied of them.",
  "fields": [
    {"name": "subjectId", "type": "string", "doc": "the data subject erased (metadata dataSubject of its events)"}
  ]
}`

// SystemSchemas returns the schemas of the system events.
func SystemSchemas() []SchemaFile {
	var files []SchemaFile
	for _, text := range []string{streamDeletedSchema, dataSubjectErasedSchema} {
		s, err := avro.Parse(text)
		if err != nil {
			panic(err) // a constant
		}
		files = append(files, SchemaFile{Path: "(built in)", Version: 1, Schema: s})
	}
	return files
}

// WithSystemSchemas returns files, as ReadSchemaDir returns them, with
// the system schemas after them.
func WithSystemSchemas(files []SchemaFile) []SchemaFile {
	return append(files, SystemSchemas()...)
}

// systemType returns the event type of a system record's full name, ""
// for another.
func systemType(fullName string) string {
	if name, ok := strings.CutPrefix(fullName, SystemNamespace+"."); ok && !strings.Contains(name, ".") {
		return "$" + name
	}
	return ""
}
