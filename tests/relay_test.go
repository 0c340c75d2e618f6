package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
)

// envValue returns NAME's value in env.
func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// consumeTopic reads every committed record of topic from the start.
func consumeTopic(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	records, err := harness.ReadCommitted(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, r := range records {
		if m, err := kafka.ParseRecord(r); err != nil {
			t.Errorf("%v", err)
		} else {
			out = append(out, m)
		}
	}
	return out
}

// TestKillingTheWriterNeverLosesOrDoublesAnEvent kills `writer serve` with
// SIGKILL twenty times while events are appended, starting it again each
// time: the topic ends with every event exactly once, each stream in order.
func TestKillingTheWriterNeverLosesOrDoublesAnEvent(t *testing.T) {
	bin, env, url, schema := prepareStore(t)
	ctx := context.Background()
	store, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	catalog := registry.NewCatalog(registry.New(postgres.NewRegistryStore(store), registry.Options{}), registry.CatalogOptions{})
	defer catalog.Close()

	// Appends go straight to the store, so they go on while the writer is
	// down; only its relay is killed.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("k%d-%d", w, i%8)
				fp, data, err := catalog.Encode(ctx, "OrderCreated", []byte(fmt.Sprintf(`{"orderId": %q, "customerId": "c", "timestamp": "2023-10-27T10:00:00Z"}`, id)), nil)
				if err != nil {
					t.Errorf("encode: %v", err)
					return
				}
				if _, err := store.Append(ctx, eventstore.MustParseStreamID("Order-"+id), eventstore.Any,
					[]eventstore.EventData{{Type: "OrderCreated", Schema: fp, Data: data}}); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	for i := 0; i < 20; i++ {
		w := serveWriter(t, bin, env)
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
		w.cmd.Process.Signal(syscall.SIGKILL)
		<-w.done
	}
	close(stop)
	wg.Wait()

	final := serveWriter(t, bin, env)
	defer final.cmd.Process.Signal(syscall.SIGTERM)
	all, _ := readAll(t, store)
	topic := envValue(env, "STRATA_TOPIC_PREFIX") + "Order"
	var published []kafka.Message
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if published = consumeTopic(t, harness.KafkaBrokers(t), topic); len(published) >= len(all) {
			break
		}
	}
	seen := map[eventstore.UUID]int{}
	last := map[string]int64{}
	for _, m := range published {
		seen[m.ID]++
		if m.Version != last[m.StreamID.String()]+1 {
			t.Errorf("%s@%d published after version %d", m.StreamID, m.Version, last[m.StreamID.String()])
		}
		last[m.StreamID.String()] = m.Version
	}
	for _, e := range all {
		if seen[e.ID] != 1 {
			t.Errorf("event %s (%s@%d) published %d times, want once", e.ID, e.StreamID, e.Version, seen[e.ID])
		}
	}
	if len(published) != len(all) {
		t.Errorf("%d events stored, %d published", len(all), len(published))
	}
	t.Logf("20 kills; %d events published exactly once", len(all))
}

func readAll(t *testing.T, s eventstore.Store) ([]eventstore.RecordedEvent, eventstore.Cursor) {
	t.Helper()
	var all []eventstore.RecordedEvent
	var cursor eventstore.Cursor
	for {
		page, err := s.ReadAll(context.Background(), cursor, eventstore.MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Events...)
		cursor = page.Next
		if len(page.Events) == 0 {
			return all, cursor
		}
	}
}

// decodeScript decodes a Confluent wire-format value with Apache Avro's own
// Python library, given the writer's schema: an implementation that shares
// nothing with ours.
const decodeScript = `
import io, json, sys
import avro.io, avro.schema
schema = avro.schema.parse(open(sys.argv[1]).read())
value = sys.stdin.buffer.read()
assert value[0] == 0, "magic byte"
record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(value[5:])))
print(json.dumps({"schemaId": int.from_bytes(value[1:5], "big"), "record": record}, default=str))
`

// TestAnIndependentClientReadsWhatWePublish has kcat (librdkafka) read a
// published record and Apache Avro's Python library decode its value with
// the schema the registry serves for the id in the value.
func TestAnIndependentClientReadsWhatWePublish(t *testing.T) {
	w, _, _ := startWriter(t)
	env := w.cmd.Env
	status, body := post(t, w.url+"/v1/streams/Order-kcat1/events", `{"events": [{"type": "OrderItemAdded",
		"data": {"orderId": "kcat1", "itemId": "widget-x", "quantity": 2, "price": 15.99, "timestamp": "2023-10-27T10:01:30Z"},
		"metadata": {"correlationId": "c-1", "userId": "u-9", "custom": {"source": "web"}}}]}`)
	if status != http.StatusCreated {
		t.Fatalf("append = %d %v", status, body)
	}
	brokers := strings.Join(harness.KafkaBrokers(t), ",")
	topic := envValue(env, "STRATA_TOPIC_PREFIX") + "Order"
	// kcat reads the record at offset of the topic's partition of
	// Order-kcat1, in format.
	kcat := func(offset int, format string) []byte {
		t.Helper()
		var out []byte
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			cmd := exec.Command("kcat", "-b", brokers, "-C", "-t", topic, "-p", fmt.Sprint(kafka.Partition([]byte("Order-kcat1"), 4)),
				"-o", fmt.Sprint(offset), "-c", "1", "-e", "-q",
				"-X", "isolation.level=read_committed", "-f", format)
			b, err := cmd.Output()
			if err == nil && len(b) > 0 {
				return b
			}
			out = b
		}
		t.Fatalf("kcat read nothing from %s (%q)", topic, out)
		return nil
	}
	value := kcat(0, "%s")
	key := kcat(0, "%k")
	headers := kcat(0, "%h")
	if string(key) != "Order-kcat1" {
		t.Errorf("key = %q, want Order-kcat1", key)
	}
	for _, want := range []string{"ce_specversion=1.0", "ce_type=OrderItemAdded", "ce_subject=Order-kcat1", "content-type=application/avro",
		"ce_streamversion=1", "ce_correlationid=c-1", "ce_userid=u-9", `strata_custom={"source":"web"}`} {
		if !strings.Contains(string(headers), want) {
			t.Errorf("headers %q lack %s", headers, want)
		}
	}
	if strings.Contains(string(headers), "ce_causationid") {
		t.Errorf("headers %q carry an empty causation id; empty metadata must be absent", headers)
	}

	id, r := decodeWithApacheAvro(t, w.url, value)
	if r["orderId"] != "kcat1" || r["itemId"] != "widget-x" || r["quantity"] != float64(2) ||
		r["price"] != "15.99" || !strings.HasPrefix(fmt.Sprint(r["timestamp"]), "2023-10-27 10:01:30") {
		t.Errorf("Apache Avro decoded %v (schema id %d)", r, id)
	}

	// A deletion is an event too: the next record of the stream's
	// partition, with the stream's key, decoded by the registry's schema.
	req, _ := http.NewRequest("DELETE", w.url+"/v1/streams/Order-kcat1?expectedVersion=1", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE the stream = %v, %v", res, err)
	}
	res.Body.Close()
	if key := kcat(1, "%k"); string(key) != "Order-kcat1" {
		t.Errorf("the deletion's key = %q, want Order-kcat1", key)
	}
	if headers := kcat(1, "%h"); !strings.Contains(string(headers), "ce_type=$StreamDeleted") || !strings.Contains(string(headers), "ce_streamversion=2") {
		t.Errorf("the deletion's headers %q, want ce_type=$StreamDeleted at version 2", headers)
	}
	if _, r := decodeWithApacheAvro(t, w.url, kcat(1, "%s")); r["streamId"] != "Order-kcat1" || r["hard"] != false {
		t.Errorf("Apache Avro decoded the deletion as %v", r)
	}
}

// decodeWithApacheAvro decodes a record's value with python3-avro, by the
// schema the writer's registry gives for the value's schema id.
func decodeWithApacheAvro(t *testing.T, writerURL string, value []byte) (int, map[string]any) {
	t.Helper()
	id, _, err := kafka.ParseWire(value)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("%s/registry/schemas/ids/%d", writerURL, id))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct{ Schema string }
	json.NewDecoder(resp.Body).Decode(&schema)
	resp.Body.Close()
	schemaFile := filepath.Join(t.TempDir(), "schema.avsc")
	os.WriteFile(schemaFile, []byte(schema.Schema), 0o644)
	script := filepath.Join(t.TempDir(), "decode.py")
	os.WriteFile(script, []byte(decodeScript), 0o644)
	cmd := exec.Command("/usr/bin/python3", script, schemaFile)
	cmd.Stdin = strings.NewReader(string(value))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3-avro could not decode the value: %v\n%s", err, out)
	}
	var decoded struct {
		SchemaID int            `json:"schemaId"`
		Record   map[string]any `json:"record"`
	}
	if err := json.Unmarshal(out, &decoded); err != nil {
		t.Fatalf("decoder output %q: %v", out, err)
	}
	if decoded.SchemaID != id {
		t.Errorf("python3-avro read schema id %d, want %d", decoded.SchemaID, id)
	}
	return id, decoded.Record
}
