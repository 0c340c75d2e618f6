package httpapi

import (
	"encoding/json"
	"math/bits"

	"github.com/strata-events/strata/internal/eventstore"
)

// The relay publishes each event as one Kafka record (the contract's §4),
// and a record larger than the producer's batch limit (franz-go's
// ProducerBatchMaxBytes) or the topic's max.message.bytes can never be
// published: it would stop the relay. So the writer refuses, before
// storing, an event whose record would be larger than MaxEventBytes.

// Longest values of the record's headers that are set only once the
// event is stored.
const (
	maxTimeLength    = len("2006-01-02T15:04:05.999999999Z") // ce_time, RFC 3339 in UTC
	maxInt64Length   = len("9223372036854775807")            // ce_streamversion, ce_globalposition
	uuidLength       = len("01234567-89ab-cdef-0123-456789abcdef")
	batchOverhead    = 4 + 61 // the batch array's length, and the v2 batch header
	recordAttributes = 1 + 1 + 1
)

// recordSize is the size of the Kafka record batch of one record that the
// relay publishes for e in stream, as franz-go counts it against
// ProducerBatchMaxBytes (the brokers' max.message.bytes counts 4 bytes
// less): the batch overhead, the record's length, attributes, timestamp
// and offset deltas (zero, one byte each), key (the stream id), value
// (magic byte, schema id, Avro binary) and headers, the CloudEvents
// attributes of §4 with the values not known yet at their longest.
func recordSize(stream eventstore.StreamID, e eventstore.EventData, storeName string) int {
	n := recordAttributes + field(len(stream.String())) + field(5+len(e.Data))
	headers := 0
	header := func(key string, valueLength int) {
		if valueLength > 0 { // the relay leaves empty headers out
			n += field(len(key)) + field(valueLength)
			headers++
		}
	}
	m := e.Metadata
	header("ce_specversion", len("1.0"))
	header("ce_id", uuidLength)
	header("ce_type", len(e.Type))
	header("ce_source", len(storeName))
	header("ce_subject", len(stream.String()))
	header("ce_time", maxTimeLength)
	header("content-type", len("application/avro"))
	header("ce_streamversion", maxInt64Length)
	header("ce_globalposition", maxInt64Length)
	header("ce_correlationid", len(m.CorrelationID))
	header("ce_causationid", len(m.CausationID))
	header("ce_userid", len(m.UserID))
	header("ce_tenantid", len(m.TenantID))
	header("ce_datasubject", len(m.DataSubject))
	if len(m.Custom) > 0 {
		custom, _ := json.Marshal(m.Custom) // a map of strings always marshals
		header("strata_custom", len(custom))
	}
	n += varintLength(headers)
	return batchOverhead + varintLength(n) + n
}

// field is the size of a length-prefixed field of n bytes.
func field(n int) int { return varintLength(n) + n }

// varintLength is the size of n >= 0 as Kafka's zig-zag varint.
func varintLength(n int) int { return max(1, (bits.Len64(uint64(n)<<1)+6)/7) }
