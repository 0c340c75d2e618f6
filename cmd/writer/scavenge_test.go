package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
)

// writer serve's scavenger removes, once the relay has published them, the
// events that a stream's retention and a deletion hide.
func TestServeScavengesWhatReadsNoLongerShow(t *testing.T) {
	env := migratedEnv(t, "../../schemas")
	if _, _, err := runWriter(t, env, "schemas", "apply"); err != nil {
		t.Fatal(err)
	}
	env["STRATA_KAFKA_BROKERS"] = strings.Join(harness.KafkaBrokers(t), ",")
	env["STRATA_TOPIC_PREFIX"] = harness.UniqueName("w") + "."
	env["STRATA_TOPIC_PARTITIONS"] = "3"
	env["STRATA_STORE_NAME"] = harness.UniqueName("store")
	base := serveInTest(t, env, "--scavenge-interval", "100ms")
	send := func(method, path, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("%s %s = %d, want %d", method, path, res.StatusCode, want)
		}
	}
	created := `{"type": "OrderCreated", "data": {"orderId": "x", "customerId": "c", "timestamp": "2023-10-27T10:00:00Z"}}`
	for _, stream := range []string{"Order-s1", "Order-s2", "Order-s3"} {
		send("POST", "/v1/streams/"+stream+"/events", fmt.Sprintf(`{"events": [%s, %[1]s, %[1]s, %[1]s]}`, created), 201)
	}
	send("PUT", "/v1/streams/Order-s1/settings", `{"maxCount": 1}`, 200)
	send("DELETE", "/v1/streams/Order-s2?expectedVersion=4", "", 200)

	store, err := postgres.Open(context.Background(), env["STRATA_DATABASE_URL"], postgres.Options{Schema: env["STRATA_DATABASE_SCHEMA"]})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	left := func() string {
		var out string
		err := store.Pool().QueryRow(context.Background(),
			"SELECT string_agg(stream_id || '@' || version, ' ' ORDER BY stream_id, version) FROM events").Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	const want = "Order-s1@4 Order-s2@5 Order-s3@1 Order-s3@2 Order-s3@3 Order-s3@4"
	for deadline := time.Now().Add(30 * time.Second); left() != want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the store holds %s, want %s", left(), want)
		}
	}
}
