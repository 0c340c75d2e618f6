package kafka

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/relay"
)

// Header names: CloudEvents' Kafka binary mode, its extensions, and
// strata_custom for the custom metadata (a JSON object).
const (
	HeaderSpecVersion    = "ce_specversion"
	HeaderID             = "ce_id"
	HeaderType           = "ce_type"
	HeaderSource         = "ce_source"
	HeaderSubject        = "ce_subject"
	HeaderTime           = "ce_time"
	HeaderContentType    = "content-type"
	HeaderStreamVersion  = "ce_streamversion"
	HeaderGlobalPosition = "ce_globalposition"
	HeaderCorrelationID  = "ce_correlationid"
	HeaderCausationID    = "ce_causationid"
	HeaderUserID         = "ce_userid"
	HeaderTenantID       = "ce_tenantid"
	HeaderDataSubject    = "ce_datasubject"
	HeaderTraceParent    = "ce_traceparent" // CloudEvents' distributed-tracing extension
	HeaderTraceState     = "ce_tracestate"
	HeaderCustom         = "strata_custom"

	ContentTypeAvro = "application/avro"
)

// Record maps a stored event to its Kafka record: the category's topic,
// the stream id as key, the partition Kafka's Java producer would choose
// among partitions, the value in Confluent wire format with the registry's
// schemaID, and CloudEvents headers.
func (c Config) Record(e eventstore.RecordedEvent, schemaID int, partitions int) *kgo.Record {
	b := NewRecords(1, relay.EventBytes(e))
	return b.Add(c.Topic(e.StreamID.Category()), e, c.StoreName, schemaID, partitions)
}

// Records makes the records of one transaction, as Config.Record does,
// with their values, keys and header values in one buffer and their
// headers and records in one slice each: a batch costs a few allocations,
// not several per event.
type Records struct {
	buf     []byte
	headers []kgo.RecordHeader
	records []kgo.Record
}

// NewRecords returns a Records with room for n events of about bytes in
// all (relay.EventBytes); more only costs more allocations.
func NewRecords(n, bytes int) *Records {
	return &Records{buf: make([]byte, 0, bytes), headers: make([]kgo.RecordHeader, 0, n*recordHeaders),
		records: make([]kgo.Record, 0, n)}
}

// recordHeaders is the number of headers a record of an event with every
// metadata field has.
const recordHeaders = 17

// Add makes the record of e for topic, published by the store source.
// The record stays valid after later calls.
func (b *Records) Add(topic string, e eventstore.RecordedEvent, source string, schemaID int, partitions int) *kgo.Record {
	start := len(b.buf)
	b.buf = append(b.buf, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b.buf[start+1:start+5], uint32(schemaID))
	b.buf = append(b.buf, e.Data...)
	value := b.bytes(start)

	stream := e.StreamID.String()
	start = len(b.buf)
	b.buf = append(b.buf, stream...)
	key := b.bytes(start)

	first := len(b.headers)
	b.header(HeaderSpecVersion, "1.0")
	start = len(b.buf)
	b.buf, _ = e.ID.AppendText(b.buf)
	b.headerAt(HeaderID, start)
	b.header(HeaderType, e.Type)
	b.header(HeaderSource, source)
	b.headers = append(b.headers, kgo.RecordHeader{Key: HeaderSubject, Value: key})
	start = len(b.buf)
	b.buf = e.RecordedAt.UTC().AppendFormat(b.buf, time.RFC3339Nano)
	b.headerAt(HeaderTime, start)
	b.header(HeaderContentType, ContentTypeAvro)
	start = len(b.buf)
	b.buf = strconv.AppendInt(b.buf, e.Version, 10)
	b.headerAt(HeaderStreamVersion, start)
	start = len(b.buf)
	b.buf = strconv.AppendInt(b.buf, e.GlobalPosition, 10)
	b.headerAt(HeaderGlobalPosition, start)
	m := e.Metadata
	b.header(HeaderCorrelationID, m.CorrelationID)
	b.header(HeaderCausationID, m.CausationID)
	b.header(HeaderUserID, m.UserID)
	b.header(HeaderTenantID, m.TenantID)
	b.header(HeaderDataSubject, m.DataSubject)
	b.header(HeaderTraceParent, m.TraceParent)
	b.header(HeaderTraceState, m.TraceState)
	if len(m.Custom) > 0 {
		custom, _ := json.Marshal(m.Custom) // a map of strings always marshals
		start = len(b.buf)
		b.buf = append(b.buf, custom...)
		b.headerAt(HeaderCustom, start)
	}
	b.records = append(b.records, kgo.Record{
		Topic:     topic,
		Partition: Partition(key, partitions),
		Key:       key,
		Value:     value,
		Headers:   b.headers[first:len(b.headers):len(b.headers)],
		Timestamp: e.RecordedAt,
	})
	return &b.records[len(b.records)-1]
}

// bytes returns what was appended to the buffer since start, capped so
// that nothing appended to it can be appended to the buffer.
func (b *Records) bytes(start int) []byte { return b.buf[start:len(b.buf):len(b.buf)] }

// header adds a header of value, unless it is empty.
func (b *Records) header(key, value string) {
	if value == "" {
		return
	}
	start := len(b.buf)
	b.buf = append(b.buf, value...)
	b.headerAt(key, start)
}

// headerAt adds a header of what was appended to the buffer since start,
// unless that is nothing.
func (b *Records) headerAt(key string, start int) {
	if len(b.buf) > start {
		b.headers = append(b.headers, kgo.RecordHeader{Key: key, Value: b.bytes(start)})
	}
}

// Message is an event as read back from a record.
type Message struct {
	eventstore.RecordedEvent
	// SchemaID is the registry id of the schema the data was written with.
	SchemaID int
	// Source is the store that published it.
	Source string
}

// ParseWire splits a Confluent wire-format value into the schema id and
// the Avro binary.
func ParseWire(value []byte) (int, []byte, error) {
	if len(value) < 5 || value[0] != 0 {
		return 0, nil, errors.New("not in Confluent wire format (magic byte 0, 4-byte schema id)")
	}
	return int(binary.BigEndian.Uint32(value[1:5])), value[5:], nil
}

// ParseRecord reads an event back from a record published by the relay.
func ParseRecord(r *kgo.Record) (Message, error) {
	var m Message
	id, data, err := ParseWire(r.Value)
	if err != nil {
		return m, fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	m.SchemaID, m.Data = id, data
	// The headers by name, the last of a name counting, as a map of them
	// would have it; one pass, and a string made only of what is kept.
	var idText, version, position, at, custom []byte
	md := &m.Metadata
	for _, hd := range r.Headers {
		v := hd.Value
		switch hd.Key {
		case HeaderID:
			idText = v
		case HeaderStreamVersion:
			version = v
		case HeaderGlobalPosition:
			position = v
		case HeaderTime:
			at = v
		case HeaderCustom:
			custom = v
		case HeaderType:
			m.Type = string(v)
		case HeaderSource:
			m.Source = string(v)
		case HeaderCorrelationID:
			md.CorrelationID = string(v)
		case HeaderCausationID:
			md.CausationID = string(v)
		case HeaderUserID:
			md.UserID = string(v)
		case HeaderTenantID:
			md.TenantID = string(v)
		case HeaderDataSubject:
			md.DataSubject = string(v)
		case HeaderTraceParent:
			md.TraceParent = string(v)
		case HeaderTraceState:
			md.TraceState = string(v)
		}
	}
	if m.ID, err = eventstore.ParseUUID(string(idText)); err != nil {
		return m, fmt.Errorf("%s/%d@%d: %s: %w", r.Topic, r.Partition, r.Offset, HeaderID, err)
	}
	if m.StreamID, err = eventstore.ParseStreamID(string(r.Key)); err != nil {
		return m, fmt.Errorf("%s/%d@%d: key: %w", r.Topic, r.Partition, r.Offset, err)
	}
	if m.Version, err = strconv.ParseInt(string(version), 10, 64); err != nil {
		return m, fmt.Errorf("%s/%d@%d: %s: %w", r.Topic, r.Partition, r.Offset, HeaderStreamVersion, err)
	}
	m.GlobalPosition, _ = strconv.ParseInt(string(position), 10, 64)
	m.RecordedAt, _ = time.Parse(time.RFC3339Nano, string(at))
	if len(custom) > 0 {
		if err := json.Unmarshal(custom, &md.Custom); err != nil {
			return m, fmt.Errorf("%s/%d@%d: %s: %w", r.Topic, r.Partition, r.Offset, HeaderCustom, err)
		}
	}
	return m, nil
}
