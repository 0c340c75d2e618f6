package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/memstore"
)

// shippedTo is an OrderShipped event whose address is n characters long.
func shippedTo(n int) string {
	return fmt.Sprintf(`{"type": "OrderShipped", "data": {"orderId": "a1b2c3d4", "shippingAddress": %q, "timestamp": "2023-10-27T11:30:00Z"}}`,
		strings.Repeat("x", n))
}

// One event whose Kafka record would be larger than the producer and the
// broker take would stop the relay for good: the writer refuses it.
func TestAnEventTooLargeForKafkaIsRefused(t *testing.T) {
	store := memstore.New()
	h := New(store, loadTestSchemas(t), Options{}).Handler()
	addr := serveOnLoopback(t, h)

	body := appendBody(0, orderCreated, shippedTo(1_200_000))
	resp, err := http.Post("http://"+addr+"/v1/streams/Order-a1b2c3d4/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Error errorBody }
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || got.Error.Code != eventstore.CodeTooLarge ||
		got.Error.Event == nil || *got.Error.Event != 1 {
		t.Fatalf("append of a 1.2 MB event = %d %+v, want 413 too_large naming event 1", resp.StatusCode, got.Error)
	}
	for _, want := range []string{"events[1]", "1200", fmt.Sprint(DefaultMaxEventBytes)} {
		if !strings.Contains(got.Error.Message, want) {
			t.Errorf("message %q does not say %q", got.Error.Message, want)
		}
	}
	if page, _ := store.ReadAll(context.Background(), "", 10); len(page.Events) != 0 {
		t.Errorf("a refused append stored %d events", len(page.Events))
	}
}

// The limit is on the record as the relay publishes it: an event whose
// record is exactly MaxEventBytes is taken, one byte more is refused.
func TestTheEventLimitIsExactlyTheRecordSize(t *testing.T) {
	schemas := loadTestSchemas(t)
	stream := eventstore.MustParseStreamID("Order-a1b2c3d4")
	event := shippedTo(5000)
	var in eventInput
	if err := json.Unmarshal([]byte(event), &in); err != nil {
		t.Fatal(err)
	}
	fp, data, err := schemas.Encode(context.Background(), *in.Type, in.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	size := recordSize(stream, eventstore.EventData{Type: *in.Type, Schema: fp, Data: data}, "strata")

	for _, tt := range []struct {
		limit int
		want  int
	}{{size, http.StatusCreated}, {size - 1, http.StatusRequestEntityTooLarge}} {
		h := New(memstore.New(), schemas, Options{MaxEventBytes: tt.limit, StoreName: "strata"}).Handler()
		addr := serveOnLoopback(t, h)
		resp, err := http.Post("http://"+addr+"/v1/streams/"+stream.String()+"/events", "application/json", strings.NewReader(appendBody(0, event)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("append of a %d-byte record with the limit at %d = %d, want %d", size, tt.limit, resp.StatusCode, tt.want)
		}
	}
}

// recordSize must never be less than the record the relay makes (kafka's
// Record) takes in a batch of one, as franz-go sizes it against
// ProducerBatchMaxBytes: 4 bytes of the batch array's length, the v2 batch
// header, and the record with its length. Numbers the writer cannot know
// yet (version, position, time) are at their longest here, so the two are
// equal.
func TestRecordSizeIsTheSizeOfTheRelaysRecord(t *testing.T) {
	stream := eventstore.MustParseStreamID("Order-a1b2c3d4")
	events := map[string]eventstore.EventData{
		"no metadata": {Type: "OrderShipped", Data: make([]byte, 300)},
		"all metadata": {Type: "OrderItemAdded", Data: make([]byte, 70_000), Metadata: eventstore.Metadata{
			CorrelationID: "c-1", CausationID: "cmd-1", UserID: "u-9", TenantID: "t-1",
			Custom: map[string]string{"source": "web", "quote": `"x"`}}},
	}
	for name, e := range events {
		t.Run(name, func(t *testing.T) {
			for _, storeName := range []string{"strata", "a-longer-store-name"} {
				cfg := kafka.Config{TopicPrefix: "events.", StoreName: storeName}
				rec := cfg.Record(eventstore.RecordedEvent{
					ID: eventstore.NewUUIDv7(), StreamID: stream, Type: e.Type,
					Version: 1<<63 - 1, GlobalPosition: 1<<63 - 1,
					RecordedAt: time.Date(2026, 12, 6, 14, 11, 53, 123456789, time.UTC),
					Data:       e.Data, Metadata: e.Metadata,
				}, 7, 12)
				want := batchOfOneSize(rec.Key, rec.Value, rec.Headers)
				if got := recordSize(stream, e, storeName); got != want {
					t.Errorf("recordSize(store %q) = %d, want %d: the size of the relay's record in a batch of one", storeName, got, want)
				}
			}
		})
	}
}

// batchOfOneSize encodes a v2 record batch of one record with kmsg.
func batchOfOneSize(key, value []byte, headers []kgo.RecordHeader) int {
	r := kmsg.Record{Key: key, Value: value}
	for _, h := range headers {
		r.Headers = append(r.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
	}
	body := r.AppendTo(nil) // with Length 0: one byte of length
	r.Length = int32(len(body) - 1)
	batch := kmsg.RecordBatch{Magic: 2, NumRecords: 1, Records: r.AppendTo(nil)}
	return 4 + len(batch.AppendTo(nil))
}
