package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/postgres"
)

// relayOptions name topics "events.{Category}" and put a key on the
// partition of its length: easy to tell from here.
var relayOptions = Options{
	Topic:     func(category string) string { return "events." + category },
	Partition: func(key []byte, n int) int32 { return int32(len(key) % n) },
}

// keysOf returns the names of a JSON object's members, in order.
func keysOf(t *testing.T, r response) []string {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestTheRelayStatus(t *testing.T) {
	a := newAPI(t, relayOptions)

	t.Run("with no report it is inactive and nothing else", func(t *testing.T) {
		r := a.do("GET", "/v1/relay", "")
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"active":false}` {
			t.Errorf("GET /v1/relay = %d %s, want 200 {\"active\":false}", r.status, r.body)
		}
		r = a.do("GET", "/v1/relay?stream=Order-1", "")
		if want := `{"active":false,"stream":{"streamId":"Order-1","topic":"events.Order"}}`; r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != want {
			t.Errorf("GET /v1/relay?stream=Order-1 = %d %s, want 200 %s", r.status, r.body, want)
		}
	})

	lease, err := a.store.AcquireLease(context.Background(), postgres.RelayLease, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	for range 3 {
		if r := a.do("POST", "/v1/streams/Order-1/events", appendBody(-1, orderCreated)); r.status != http.StatusCreated {
			t.Fatalf("append = %d %s", r.status, r.body)
		}
	}
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	report := eventstore.RelayReport{Instance: "host/7", ActiveSince: since, LagSeconds: 0.25,
		Checkpoint: eventstore.RelayCheckpoint{Position: 1, Published: 1, At: since.Add(time.Minute), Partitions: map[string]int{"events.Order": 4}}}
	if err := a.store.SaveRelayReport(context.Background(), report); err != nil {
		t.Fatal(err)
	}

	type status struct {
		Active      bool
		Instance    string
		ActiveSince time.Time
		Checkpoint  struct {
			Position, Published int64
			At                  *time.Time
		}
		LagEvents  int64
		LagSeconds float64
		Halted     *eventstore.RelayHalt
		UpdatedAt  time.Time
		Topics     map[string]int
		Stream     *struct {
			StreamID, Topic string
			Partition       *int32
		}
	}
	get := func(t *testing.T, path string) (status, []string) {
		t.Helper()
		r := a.do("GET", path, "")
		if r.status != http.StatusOK {
			t.Fatalf("GET %s = %d %s, want 200", path, r.status, r.body)
		}
		var st status
		r.decode(t, &st)
		return st, keysOf(t, r)
	}

	t.Run("a report is shown with the lease held and the lag in events", func(t *testing.T) {
		st, keys := get(t, "/v1/relay")
		want := []string{"active", "activeSince", "checkpoint", "instance", "lagEvents", "lagSeconds", "topics", "updatedAt"}
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Errorf("members of GET /v1/relay (-want +got):\n%s", diff)
		}
		at := since.Add(time.Minute)
		if !st.Active || st.Instance != "host/7" || !st.ActiveSince.Equal(since) || st.Checkpoint.Position != 1 ||
			st.Checkpoint.Published != 1 || st.Checkpoint.At == nil || !st.Checkpoint.At.Equal(at) || st.LagSeconds != 0.25 ||
			st.LagEvents < 2 || st.Topics["events.Order"] != 4 || st.UpdatedAt.IsZero() || st.Halted != nil {
			t.Errorf("GET /v1/relay = %+v, want active, host/7's report, 2 or more events behind", st)
		}
	})

	t.Run("a stream is shown with its topic and, when known, its partition", func(t *testing.T) {
		for _, tc := range []struct {
			stream, topic string
			partition     *int32
		}{
			{"Order-1", "events.Order", new(int32(len("Order-1") % 4))},
			{"Cart-abc", "events.Cart", nil}, // never published to
		} {
			st, _ := get(t, "/v1/relay?stream="+tc.stream)
			if st.Stream == nil || st.Stream.StreamID != tc.stream || st.Stream.Topic != tc.topic || !cmp.Equal(st.Stream.Partition, tc.partition) {
				t.Errorf("GET /v1/relay?stream=%s gives the stream %+v, want topic %s, partition %v", tc.stream, st.Stream, tc.topic, tc.partition)
			}
		}
	})

	t.Run("a halt and a checkpoint never committed are shown as such", func(t *testing.T) {
		halted := eventstore.RelayReport{Instance: "host/8", ActiveSince: since,
			Halted: &eventstore.RelayHalt{Reason: "checkpoint_refused", Message: "refused", Remedy: "publish afresh", Since: since}}
		if err := a.store.SaveRelayReport(context.Background(), halted); err != nil {
			t.Fatal(err)
		}
		st, _ := get(t, "/v1/relay")
		h := st.Halted
		if h == nil || h.Reason != "checkpoint_refused" || h.Message != "refused" || h.Remedy != "publish afresh" || !h.Since.Equal(since) ||
			st.Checkpoint.At != nil || st.Topics == nil || len(st.Topics) != 0 {
			t.Errorf("GET /v1/relay = %+v, want halted with its reason and remedy, no commit time, no topics", st)
		}
	})

	t.Run("the status is inactive once the lease is free", func(t *testing.T) {
		lease.Release()
		if st, _ := get(t, "/v1/relay"); st.Active || st.Instance != "host/8" {
			t.Errorf("GET /v1/relay with the lease free = %+v, want inactive with the last report", st)
		}
	})

	t.Run("a bad stream parameter is refused, naming it", func(t *testing.T) {
		for _, q := range []string{"stream=", "stream=Order", "stream=1Order-x", "stream=Order-a%20b", "stream=Order-1&stream=Order-2"} {
			r := a.do("GET", "/v1/relay?"+q, "")
			if e := r.errorOf(); r.status != http.StatusBadRequest || e.Code != "invalid_request" || !strings.Contains(e.Message, "stream") {
				t.Errorf("GET /v1/relay?%s = %d %s, want 400 invalid_request about stream", q, r.status, r.body)
			}
		}
		noTopics := newAPI(t, Options{})
		r := noTopics.do("GET", "/v1/relay?stream=Order-1", "")
		if e := r.errorOf(); r.status != http.StatusBadRequest || e.Code != "invalid_request" || !strings.Contains(e.Message, "stream") {
			t.Errorf("GET /v1/relay?stream=Order-1 of a writer without topics = %d %s, want 400 invalid_request", r.status, r.body)
		}
		if r := noTopics.do("GET", "/v1/relay", ""); r.status != http.StatusOK {
			t.Errorf("GET /v1/relay of a writer without topics = %d %s, want 200", r.status, r.body)
		}
	})
}
