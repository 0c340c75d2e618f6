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
// schemaID, and CloudEvents headers. The relay makes one per event, so the
// header values share one buffer.
func (c Config) Record(e eventstore.RecordedEvent, schemaID int, partitions int) *kgo.Record {
	stream := e.StreamID.String()
	value := make([]byte, 5+len(e.Data))
	binary.BigEndian.PutUint32(value[1:5], uint32(schemaID))
	copy(value[5:], e.Data)

	type header struct {
		key        string
		start, end int
	}
	var hs [16]header
	n := 0
	buf := make([]byte, 0, 192+len(stream)+len(e.Type)+len(c.StoreName)+len(e.Metadata.TraceParent)+len(e.Metadata.TraceState))
	add := func(key string, appendValue func([]byte) []byte) {
		start := len(buf)
		buf = appendValue(buf)
		if len(buf) > start {
			hs[n] = header{key, start, len(buf)}
			n++
		}
	}
	text := func(s string) func([]byte) []byte { return func(b []byte) []byte { return append(b, s...) } }
	add(HeaderSpecVersion, text("1.0"))
	add(HeaderID, func(b []byte) []byte { return append(b, e.ID.String()...) })
	add(HeaderType, text(e.Type))
	add(HeaderSource, text(c.StoreName))
	add(HeaderSubject, text(stream))
	add(HeaderTime, func(b []byte) []byte { return e.RecordedAt.UTC().AppendFormat(b, time.RFC3339Nano) })
	add(HeaderContentType, text(ContentTypeAvro))
	add(HeaderStreamVersion, func(b []byte) []byte { return strconv.AppendInt(b, e.Version, 10) })
	add(HeaderGlobalPosition, func(b []byte) []byte { return strconv.AppendInt(b, e.GlobalPosition, 10) })
	add(HeaderCorrelationID, text(e.Metadata.CorrelationID))
	add(HeaderCausationID, text(e.Metadata.CausationID))
	add(HeaderUserID, text(e.Metadata.UserID))
	add(HeaderTenantID, text(e.Metadata.TenantID))
	add(HeaderDataSubject, text(e.Metadata.DataSubject))
	add(HeaderTraceParent, text(e.Metadata.TraceParent))
	add(HeaderTraceState, text(e.Metadata.TraceState))
	if len(e.Metadata.Custom) > 0 {
		custom, _ := json.Marshal(e.Metadata.Custom) // a map of strings always marshals
		add(HeaderCustom, func(b []byte) []byte { return append(b, custom...) })
	}
	headers := make([]kgo.RecordHeader, n)
	for i, h := range hs[:n] {
		headers[i] = kgo.RecordHeader{Key: h.key, Value: buf[h.start:h.end:h.end]}
	}
	key := []byte(stream)
	return &kgo.Record{
		Topic:     c.Topic(e.StreamID.Category()),
		Partition: Partition(key, partitions),
		Key:       key,
		Value:     value,
		Headers:   headers,
		Timestamp: e.RecordedAt,
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
	h := map[string]string{}
	for _, hd := range r.Headers {
		h[hd.Key] = string(hd.Value)
	}
	if m.ID, err = eventstore.ParseUUID(h[HeaderID]); err != nil {
		return m, fmt.Errorf("%s/%d@%d: %s: %w", r.Topic, r.Partition, r.Offset, HeaderID, err)
	}
	if m.StreamID, err = eventstore.ParseStreamID(string(r.Key)); err != nil {
		return m, fmt.Errorf("%s/%d@%d: key: %w", r.Topic, r.Partition, r.Offset, err)
	}
	if m.Version, err = strconv.ParseInt(h[HeaderStreamVersion], 10, 64); err != nil {
		return m, fmt.Errorf("%s/%d@%d: %s: %w", r.Topic, r.Partition, r.Offset, HeaderStreamVersion, err)
	}
	m.GlobalPosition, _ = strconv.ParseInt(h[HeaderGlobalPosition], 10, 64)
	m.RecordedAt, _ = time.Parse(time.RFC3339Nano, h[HeaderTime])
	m.Type, m.Source = h[HeaderType], h[HeaderSource]
	m.Metadata = eventstore.Metadata{CorrelationID: h[HeaderCorrelationID], CausationID: h[HeaderCausationID],
		UserID: h[HeaderUserID], TenantID: h[HeaderTenantID], DataSubject: h[HeaderDataSubject],
		TraceParent: h[HeaderTraceParent], TraceState: h[HeaderTraceState]}
	if c := h[HeaderCustom]; c != "" {
		if err := json.Unmarshal([]byte(c), &m.Metadata.Custom); err != nil {
			return m, fmt.Errorf("%s/%d@%d: %s: %w", r.Topic, r.Partition, r.Offset, HeaderCustom, err)
		}
	}
	return m, nil
}
