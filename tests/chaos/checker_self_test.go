package chaos

import (
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The checker must see what it is there to see: each kind of violation,
// planted in a small store, topic and read model, is counted once.

func plantedStore() *store {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := &store{byID: map[string]*storedEvent{}, schemaID: map[int64]int32{7: 1}}
	for _, e := range []*storedEvent{
		{ID: "e1", Stream: "Order-a", Type: "OrderCreated", Version: 1, Fingerprint: 7, Data: []byte{1},
			Native: map[string]any{"orderId": "a", "customerId": "c", "timestamp": ts}},
		{ID: "e2", Stream: "Order-a", Type: "OrderItemAdded", Version: 2, Fingerprint: 7, Data: []byte{2},
			Native: map[string]any{"orderId": "a", "itemId": "i", "quantity": int32(2), "price": big.NewRat(150, 100), "timestamp": ts, "currency": "USD"}},
		{ID: "e3", Stream: "Order-a", Type: "OrderShipped", Version: 3, Fingerprint: 7, Data: []byte{3},
			Native: map[string]any{"orderId": "a", "shippingAddress": "1 Road", "timestamp": ts}},
	} {
		st.events = append(st.events, e)
		st.byID[e.ID] = e
	}
	return st
}

func record(st *store, id string, partition int32) *kgo.Record {
	e := st.byID[id]
	return &kgo.Record{Topic: topic, Partition: partition, Key: []byte(e.Stream),
		Value: append([]byte{0, 0, 0, 0, 1}, e.Data...),
		Headers: []kgo.RecordHeader{{Key: "ce_id", Value: []byte(id)}, {Key: "ce_subject", Value: []byte(e.Stream)},
			{Key: "ce_type", Value: []byte(e.Type)}, {Key: "ce_streamversion", Value: []byte{byte('0' + e.Version)}}}}
}

func counts(vs []*invariant) map[string]int {
	out := map[string]int{}
	for _, v := range vs {
		out[v.name] = v.count
	}
	return out
}

func TestTheCheckerCountsEachPlantedViolation(t *testing.T) {
	st := plantedStore()
	home := int32(kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: []byte("Order-a")}, 4))

	t.Run("a topic that holds the store exactly passes", func(t *testing.T) {
		recs := []*kgo.Record{record(st, "e1", home), record(st, "e2", home), record(st, "e3", home)}
		for name, n := range counts(checkKafka(st, recs, 4)) {
			if n != 0 {
				t.Errorf("%s = %d, want 0", name, n)
			}
		}
	})
	t.Run("a lost, a doubled, a reordered and a misplaced record are each counted", func(t *testing.T) {
		misplaced := record(st, "e1", (home+1)%4)
		recs := []*kgo.Record{misplaced, record(st, "e3", (home+1)%4), record(st, "e3", (home+1)%4)}
		got := counts(checkKafka(st, recs, 4))
		want := map[string]int{"stored events not in Kafka (lost)": 1, "events in Kafka more than once (doubled)": 1,
			"streams out of version order in Kafka (reordered)": 1, "records not on their key's partition": 2}
		for name, n := range want {
			if got[name] != n {
				t.Errorf("%s = %d, want %d (all: %v)", name, got[name], n, got)
			}
		}
	})
	t.Run("a record whose value is not the stored data is counted", func(t *testing.T) {
		bad := record(st, "e1", home)
		bad.Value[5] = 9
		if got := counts(checkKafka(st, []*kgo.Record{bad}, 4))["records in Kafka not stored, or not as stored"]; got != 1 {
			t.Errorf("phantom = %d, want 1", got)
		}
	})
	t.Run("a lost acknowledged append and a half-stored one are counted", func(t *testing.T) {
		acked := &appendRec{Stream: "Order-b", Status: http.StatusCreated, First: 1, Last: 1, Events: []sentEvent{{ID: "x1", Type: "OrderCreated"}}}
		half := &appendRec{Stream: "Order-a", Expected: 1, Events: []sentEvent{{ID: "e2", Type: "OrderItemAdded",
			Data: map[string]any{"quantity": 2, "price": "1.50"}}, {ID: "x2", Type: "OrderItemAdded"}}}
		rest := &appendRec{Stream: "Order-a", Status: http.StatusCreated, First: 1, Last: 1, Events: []sentEvent{{ID: "e1", Type: "OrderCreated",
			Data: map[string]any{"customerId": "someone else"}}}}
		got := counts(checkStore(st, []*appendRec{acked, half, rest}))
		want := map[string]int{"acknowledged events not stored (lost)": 1, "appends stored in part (not atomic)": 1,
			"stored events never sent": 1, "stored data not as sent": 1}
		for name, n := range want {
			if got[name] != n {
				t.Errorf("%s = %d, want %d (all: %v)", name, got[name], n, got)
			}
		}
	})
	t.Run("an event stored twice, a gap in versions, a refused append stored and a wrong acknowledgement are counted", func(t *testing.T) {
		st := plantedStore()
		again := *st.byID["e2"]
		again.Version = 4
		gapped := &storedEvent{ID: "e6", Stream: "Order-a", Type: "OrderShipped", Version: 6, Fingerprint: 7}
		st.events = append(st.events, &again, gapped)
		st.byID["e6"] = gapped
		sent := func(e *storedEvent) sentEvent { return sentEvent{ID: e.ID, Type: e.Type} }
		appends := []*appendRec{
			{Stream: "Order-a", Status: http.StatusCreated, First: 2, Last: 2, Events: []sentEvent{sent(st.byID["e1"])}},
			{Stream: "Order-a", Status: http.StatusCreated, First: 2, Last: 2, Events: []sentEvent{sent(st.byID["e2"])}},
			{Stream: "Order-a", Status: http.StatusConflict, Code: "wrong_expected_version", Events: []sentEvent{sent(st.byID["e3"])}},
			{Stream: "Order-a", Events: []sentEvent{sent(gapped)}},
		}
		got := counts(checkStore(st, appends))
		want := map[string]int{"events stored twice (doubled)": 1, "refused appends stored": 1, "acknowledged events not stored (lost)": 0,
			// e1 acknowledged at 2 but stored at 1; e6 at 6 after 4.
			"stored versions not 1, 2, 3, ... or not as acknowledged": 2}
		for name, n := range want {
			if got[name] != n {
				t.Errorf("%s = %d, want %d (all: %v)", name, got[name], n, got)
			}
		}
	})
	t.Run("the replay gives the order's rows, and a wrong, a missing and an extra row are counted", func(t *testing.T) {
		want := replay(st)
		if got, w := want["order_summary"]["a"], `customer="c" status=shipped items=2 total=3 address="1 Road" created=2026-01-02T03:04:05Z shipped=2026-01-02T03:04:05Z version=3`; got != w {
			t.Errorf("order_summary a = %s, want %s", got, w)
		}
		got := readModels{"order_summary": {"a": "wrong", "z": "extra"}, "order_summary_items": {}, "shipped_items": want["shipped_items"], "shipped_items_pending": {}}
		c := counts(compareReadModels(want, got))
		if c["read-model rows wrong: order_summary"] != 2 || c["read-model rows wrong: order_summary_items"] != 1 || c["read-model rows wrong: shipped_items"] != 0 {
			t.Errorf("counts = %v, want 2 order_summary rows and 1 item row wrong", c)
		}
	})
}

func TestTheTableSumsTheViolationsUnderTheirHeadings(t *testing.T) {
	st := plantedStore()
	rep := &report{}
	rep.invariants = append(rep.invariants, checkStore(st, []*appendRec{
		{Stream: "Order-b", Status: http.StatusCreated, First: 1, Last: 1, Events: []sentEvent{{ID: "x1", Type: "OrderCreated"}}}})...)
	home := int32(kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: []byte("Order-a")}, 4))
	rep.invariants = append(rep.invariants, checkKafka(st, []*kgo.Record{record(st, "e3", home), record(st, "e3", home)}, 4)...)
	table := rep.table()
	for _, line := range []string{
		// x1 acknowledged and not stored; e1 and e2 stored and not in Kafka.
		"LOST (acknowledged but not stored, or stored but not in Kafka)  3",
		"DOUBLED (in the store or in Kafka)                              1",
		"REORDERED (a stream out of version order in Kafka)              1",
	} {
		if !strings.Contains(table, line) {
			t.Errorf("the table lacks the line %q:\n%s", line, table)
		}
	}
}
