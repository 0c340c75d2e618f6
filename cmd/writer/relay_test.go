package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
)

// writer serve runs a relay that reports itself, and answers GET
// /v1/relay with it: active, its checkpoint past the appended event, and
// the topic and partition of the event's stream.
func TestServeReportsItsRelay(t *testing.T) {
	env := migratedEnv(t, "../../schemas")
	if _, _, err := runWriter(t, env, "schemas", "apply"); err != nil {
		t.Fatal(err)
	}
	prefix := harness.UniqueName("w") + "."
	env["STRATA_KAFKA_BROKERS"] = strings.Join(harness.KafkaBrokers(t), ",")
	env["STRATA_TOPIC_PREFIX"] = prefix
	env["STRATA_TOPIC_PARTITIONS"] = "3"
	env["STRATA_STORE_NAME"] = harness.UniqueName("store")
	base := serveInTest(t, env)

	resp, err := http.Post(base+"/v1/streams/Order-a1/events", "application/json", strings.NewReader(`{"expectedVersion": -1, "events": [
		{"type": "OrderCreated", "data": {"orderId": "a1", "customerId": "c", "timestamp": "2023-10-27T10:00:00Z"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("append = %d, want 201", resp.StatusCode)
	}

	var st struct {
		Active     bool
		Instance   string
		Checkpoint struct{ Position, Published int64 }
		Topics     map[string]int
		Stream     struct {
			StreamID, Topic string
			Partition       *int32
		}
	}
	var body []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(base + "/v1/relay?stream=Order-a1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("GET /v1/relay = %d %s: %v", resp.StatusCode, body, err)
		}
		if st.Active && st.Checkpoint.Published == 1 || time.Now().After(deadline) {
			break
		}
	}
	topic := prefix + "Order"
	want := kafka.Partition([]byte("Order-a1"), 3)
	if !st.Active || st.Instance == "" || st.Checkpoint.Published != 1 || st.Checkpoint.Position < 1 || st.Topics[topic] != 3 ||
		st.Stream.Topic != topic || st.Stream.Partition == nil || *st.Stream.Partition != want {
		t.Errorf("GET /v1/relay?stream=Order-a1 = %s; want the active relay past the event, and Order-a1 on %s/%d", body, topic, want)
	}
	t.Logf("GET /v1/relay?stream=Order-a1 = %s", body)
}

// serveInTest runs writer serve with env and args until the test ends, and
// returns its base URL.
func serveInTest(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		args := append([]string{"serve", "--http-addr", "127.0.0.1:0", "--console=false"}, args...)
		done <- run(ctx, args, func(k string) string { return env[k] }, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve = %v", err)
		}
	})
	listening := regexp.MustCompile(`writer listening on (http://\S+)`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %q", out.String())
		}
	}
}
