package kafka

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/eventstore"
)

func TestRecordsFollowTheContract(t *testing.T) {
	c := Config{TopicPrefix: "events.", StoreName: "shop"}
	at := time.Date(2023, 10, 27, 10, 0, 0, 123456000, time.UTC)
	e := eventstore.RecordedEvent{
		ID: eventstore.NewUUIDv7(), StreamID: eventstore.MustParseStreamID("Order-a1b2c3d4"), Type: "OrderCreated",
		Version: 3, GlobalPosition: 42, RecordedAt: at, Schema: 77, Data: []byte{1, 2, 3},
		Metadata: eventstore.Metadata{CorrelationID: "c-1", UserID: "u-9", Custom: map[string]string{"source": "web"},
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "strata=1"},
	}
	r := c.Record(e, 5, 12)
	if r.Topic != "events.Order" || string(r.Key) != "Order-a1b2c3d4" || r.Partition != Partition(r.Key, 12) || !r.Timestamp.Equal(at) {
		t.Errorf("record topic %s key %s partition %d time %v", r.Topic, r.Key, r.Partition, r.Timestamp)
	}
	if r.Value[0] != 0 || binary.BigEndian.Uint32(r.Value[1:5]) != 5 || string(r.Value[5:]) != "\x01\x02\x03" {
		t.Errorf("value %x, want 00 00000005 010203", r.Value)
	}
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	want := map[string]string{
		"ce_specversion": "1.0", "ce_id": e.ID.String(), "ce_type": "OrderCreated", "ce_source": "shop",
		"ce_subject": "Order-a1b2c3d4", "ce_time": "2023-10-27T10:00:00.123456Z", "content-type": "application/avro",
		"ce_streamversion": "3", "ce_globalposition": "42", "ce_correlationid": "c-1", "ce_userid": "u-9",
		"strata_custom": `{"source":"web"}`, "ce_traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"ce_tracestate": "strata=1",
	}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("headers (-want +got; empty metadata must be absent):\n%s", diff)
	}

	m, err := ParseRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	back := e
	back.Schema = 0 // the record carries the registry's id, not the fingerprint
	if diff := cmp.Diff(back, m.RecordedEvent, cmp.Comparer(func(a, b eventstore.StreamID) bool { return a == b })); diff != "" {
		t.Errorf("parsed event (-want +got):\n%s", diff)
	}
	if m.SchemaID != 5 || m.Source != "shop" {
		t.Errorf("parsed schema id %d source %q", m.SchemaID, m.Source)
	}
}

func TestParseWireRefusesOtherFormats(t *testing.T) {
	for _, v := range [][]byte{nil, {0, 0, 0}, {1, 0, 0, 0, 5, 9}} {
		if _, _, err := ParseWire(v); err == nil {
			t.Errorf("ParseWire(%x) accepted it", v)
		}
	}
}

// The records of one Records share buffers that grow as records are
// added: each record must still read as its own event after the others.
func TestRecordsOfABatchStayTheirOwn(t *testing.T) {
	c := Config{TopicPrefix: "events.", StoreName: "shop"}
	b := NewRecords(1, 10) // far too small: the buffers grow many times
	var events []eventstore.RecordedEvent
	var records []*kgo.Record
	for i := range 50 {
		e := eventstore.RecordedEvent{
			ID: eventstore.NewUUIDv7(), StreamID: eventstore.MustParseStreamID(fmt.Sprintf("Order-%d", i)), Type: fmt.Sprintf("T%d", i),
			Version: int64(i + 1), GlobalPosition: int64(100 + i), RecordedAt: time.Date(2026, 1, 2, 3, 4, i, 0, time.UTC),
			Data: []byte(strings.Repeat("x", i)), Metadata: eventstore.Metadata{CorrelationID: fmt.Sprintf("c-%d", i)},
		}
		if i%7 == 0 {
			e.Metadata.Custom = map[string]string{"i": fmt.Sprint(i)}
		}
		events = append(events, e)
		records = append(records, b.Add(c.Topic("Order"), e, c.StoreName, i, 12))
	}
	for i, r := range records {
		m, err := ParseRecord(r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if diff := cmp.Diff(events[i], m.RecordedEvent, cmp.Comparer(func(a, b eventstore.StreamID) bool { return a == b })); diff != "" {
			t.Errorf("record %d (-want +got):\n%s", i, diff)
		}
		if m.SchemaID != i || r.Partition != Partition(r.Key, 12) {
			t.Errorf("record %d: schema id %d, partition %d", i, m.SchemaID, r.Partition)
		}
	}
}
