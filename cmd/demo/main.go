// Command demo runs Strata on embedded defaults and walks through what it
// does, for someone meeting event sourcing and Strata for the first time.
// It is what `make demo` runs: it starts PostgreSQL from the machine's
// binaries and the embedded Kafka-protocol broker (state in .data/), runs
// bin/writer, and drives it over HTTP. Each run starts from an empty store
// and empty topics; the writer keeps serving until Ctrl-C.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	out     io.Writer
	base    string
	client  *http.Client
	brokers []string
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func run(ctx context.Context, out io.Writer) error {
	d := &demo{out: out, client: &http.Client{Timeout: 30 * time.Second}}
	writerBin, err := filepath.Abs("bin/writer")
	if err != nil {
		return err
	}
	if _, err := os.Stat(writerBin); err != nil {
		return fmt.Errorf("%s is missing: run `make demo`, which builds it", writerBin)
	}
	dir, err := filepath.Abs(".data/postgres")
	if err != nil {
		return err
	}
	d.say("Strata demo: an event store on PostgreSQL, served over HTTP.\n")
	d.say("Starting PostgreSQL from this machine's binaries (data in %s) ...", dir)
	pg, err := harness.StartPostgres(ctx, harness.PostgresOptions{Dir: dir})
	if err != nil {
		return err
	}
	defer pg.Stop()
	if err := freshSchema(ctx, pg.URL); err != nil {
		return err
	}
	kafkaDir, err := filepath.Abs(".data/kafka")
	if err != nil {
		return err
	}
	os.RemoveAll(kafkaDir) // a fresh store gets fresh topics
	d.say("Starting the embedded Kafka-protocol broker (data in %s) ...", kafkaDir)
	broker, err := harness.StartKafka(harness.KafkaOptions{Dir: kafkaDir})
	if err != nil {
		return err
	}
	defer broker.Stop()
	d.brokers = broker.Brokers()

	schemasV1, err := schemasWithout(".v2.avsc")
	if err != nil {
		return err
	}
	defer os.RemoveAll(schemasV1)
	env := append(os.Environ(), "STRATA_DATABASE_URL="+pg.URL, "STRATA_LOG_LEVEL=warn",
		"STRATA_KAFKA_BROKERS="+strings.Join(d.brokers, ","), "STRATA_TOPIC_PARTITIONS=3")
	writer := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, writerBin, args...)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("writer %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return strings.TrimSpace(string(b)), nil
	}
	d.say("\n$ writer migrate")
	if out, err := writer("migrate"); err == nil {
		d.say("%s", indent(out))
	} else {
		return err
	}
	d.say("\n$ writer schemas apply     (the first version of each event type)")
	if out, err := writer("schemas", "apply", "--schemas-dir", schemasV1); err == nil {
		d.say("%s", indent(out))
	} else {
		return err
	}

	addr := "127.0.0.1:8080"
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
	} else {
		addr = "127.0.0.1:0" // 8080 is taken: any free port
	}
	serve := exec.Command(writerBin, "serve", "--http-addr", addr)
	serve.Env = env
	serve.Stderr = os.Stderr
	stdout, err := serve.StdoutPipe()
	if err != nil {
		return err
	}
	if err := serve.Start(); err != nil {
		return err
	}
	defer func() { serve.Process.Signal(syscall.SIGTERM); serve.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the writer did not start: %v", err)
	}
	d.base = strings.TrimSpace(strings.TrimPrefix(line, "writer listening on "))
	d.say("\n$ writer serve\n   %s", strings.TrimSpace(line))

	order, err := d.walkthrough(ctx, writer)
	if err != nil {
		return err
	}
	if err := d.kafka(ctx, order); err != nil {
		return err
	}
	d.say("\nLook around while the writer runs:")
	d.say("   curl %s/v1/streams/Order-%s/events", d.base, order)
	d.say("   curl '%s/v1/events?limit=5'", d.base)
	d.say("   curl %s/v1/categories/Order/events", d.base)
	d.say("   curl %s/registry/subjects", d.base)
	d.say("   curl %s/metrics", d.base)
	d.say("   kcat -b %s -C -t events.Order -X isolation.level=read_committed -f '%%k v%%h\\n'", d.brokers[0])
	d.say("\nNext to come: the projectors and their read models. Press Ctrl-C to stop.")
	<-ctx.Done()
	d.say("\nStopping the writer and PostgreSQL.")
	return nil
}

// walkthrough drives the scenario and returns the order's id.
func (d *demo) walkthrough(ctx context.Context, writer func(...string) (string, error)) (string, error) {
	order := randomID()
	stream := "Order-" + order
	path := "/v1/streams/" + stream + "/events"
	ts := func(min int) string {
		return time.Date(2023, 10, 27, 10, min, 0, 0, time.UTC).Format(time.RFC3339)
	}
	created := event("OrderCreated", `"orderId": %q, "customerId": "user123", "timestamp": %q`, order, ts(0))
	item := func(id string, qty int, price string, min int) string {
		return event("OrderItemAdded", `"orderId": %q, "itemId": %q, "quantity": %d, "price": %s, "timestamp": %q`, order, id, qty, price, ts(min))
	}

	d.say("\n1. An order's life is a stream of events. Create it (expectedVersion 0: the stream must be new):")
	r, err := d.post(path, 0, created, item("widget-x", 2, "15.99", 1))
	if err != nil {
		return "", err
	}
	d.say("   POST %s → %d, versions %v..%v", path, r.status, r.body["firstVersion"], r.body["lastVersion"])

	d.say("\n2. Two clients add an item at the same moment, both having read version 2:")
	a, err := d.post(path, 2, item("gadget-y", 1, "9.50", 2))
	if err != nil {
		return "", err
	}
	d.say("   client A → %d, version %v", a.status, a.body["firstVersion"])
	b, err := d.post(path, 2, item("gizmo-z", 3, "4.25", 2))
	if err != nil {
		return "", err
	}
	e := b.err()
	d.say("   client B → %d %s: %s", b.status, e["code"], e["message"])
	d.say("   client B reads the order again, sees A's item, decides again and appends at %v:", e["actual"])
	b, err = d.post(path, int(e["actual"].(float64)), item("gizmo-z", 3, "4.25", 3))
	if err != nil {
		return "", err
	}
	d.say("   client B → %d, version %v", b.status, b.body["firstVersion"])

	d.say("\n3. A retry is safe: the same event ids sent again store nothing twice.")
	retry := fmt.Sprintf(`{"id": %q, `, eventstore.NewUUIDv7()) + strings.TrimPrefix(item("retried", 1, "1.00", 4), "{")
	first, err := d.post(path, -1, retry)
	if err != nil {
		return "", err
	}
	again, err := d.post(path, -1, retry)
	if err != nil {
		return "", err
	}
	d.say("   first send → %d, version %v; the same body again → %d, version %v", first.status, first.body["firstVersion"], again.status, again.body["firstVersion"])

	d.say("\n4. Bad data is refused, naming the field, and nothing is stored:")
	bad, err := d.post(path, -1, item("widget-x", 1, "15.999", 5))
	if err != nil {
		return "", err
	}
	d.say("   a price of 15.999 (the schema keeps cents) → %d %s: %s", bad.status, bad.err()["code"], bad.err()["message"])

	d.say("\n5. Many orders at once: 25 clients create an order each, concurrently.")
	statements, grouped := d.groupCounters()
	start := time.Now()
	var wg sync.WaitGroup
	statuses := make([]int, 25)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := randomID()
			r, err := d.post("/v1/streams/Order-"+id+"/events", 0,
				event("OrderCreated", `"orderId": %q, "customerId": "user%d", "timestamp": %q`, id, i, ts(6)))
			if err == nil {
				statuses[i] = r.status
			}
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == http.StatusCreated {
			ok++
		}
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	s2, g2 := d.groupCounters()
	d.say("   %d of 25 answered 201 in %s. Appends that arrive together share a statement and a commit:", ok, elapsed)
	d.say("   the writer's metrics count %d of them stored by %d statements (group commit).", g2-grouped, s2-statements)

	d.say("\n6. Schemas evolve. Version 2 of OrderItemAdded adds a currency, defaulting to USD:")
	out, err := writer("schemas", "apply")
	if err != nil {
		return "", err
	}
	d.say("$ writer schemas apply\n%s", indent(out))
	time.Sleep(2500 * time.Millisecond) // the writer reloads the registry every 2 s
	eur := event("OrderItemAdded", `"orderId": %q, "itemId": "euro-thing", "quantity": 1, "price": "20.00", "currency": "EUR", "timestamp": %q`, order, ts(7))
	r, err = d.post(path, -1, eur)
	if err != nil {
		return "", err
	}
	d.say("   an item priced in EUR → %d, version %v", r.status, r.body["firstVersion"])
	shipped := event("OrderShipped", `"orderId": %q, "shippingAddress": "123 Main St, Anytown, USA", "timestamp": %q`, order, ts(30))
	if r, err = d.post(path, -1, shipped); err != nil {
		return "", err
	}
	d.say("   the order ships → %d, version %v", r.status, r.body["firstVersion"])

	d.say("\n7. Reading the stream replays the order. Items written with version 1 read with the")
	d.say("   default currency; the schemaId says which version each event was written with:")
	page, err := d.get(path)
	if err != nil {
		return "", err
	}
	for _, ev := range page.Events {
		d.say("   v%d %-15s schema %d  %s", ev.Version, ev.Type, ev.SchemaID, ev.Data)
	}

	d.say("\n8. All streams together ($all) in commit order, page by page with an opaque cursor:")
	cursor := ""
	for n := 1; n <= 3; n++ {
		p, err := d.get("/v1/events?limit=4&after=" + cursor)
		if err != nil {
			return "", err
		}
		var names []string
		for _, ev := range p.Events {
			names = append(names, fmt.Sprintf("%s@%d", ev.StreamID, ev.Version))
		}
		d.say("   page %d: %s", n, strings.Join(names, ", "))
		cursor, _ = p.Next.(string)
	}
	d.say("   ... (the cursor never skips an event that commits late; reading again from it returns the same page)")
	return order, nil
}

// groupCounters reads the writer's group-commit counters from /metrics.
func (d *demo) groupCounters() (statements, appends int) {
	resp, err := d.client.Get(d.base + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if _, err := fmt.Sscanf(sc.Text(), "strata_append_group_statements_total %g", &v); err == nil {
			statements = int(v)
		}
		if _, err := fmt.Sscanf(sc.Text(), "strata_append_grouped_appends_total %g", &v); err == nil {
			appends = int(v)
		}
	}
	return statements, appends
}

// kafka shows the order's events as the relay published them.
func (d *demo) kafka(ctx context.Context, order string) error {
	d.say("\n9. The relay publishes every committed event exactly once to Kafka, to the topic of its")
	d.say("   category, in transactions: a read_committed consumer of events.Order sees:")
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.brokers...), kgo.ConsumeTopics("events.Order"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var records []*kgo.Record
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		f := cl.PollFetches(pctx)
		cancel()
		if f.Empty() && len(records) > 0 {
			break
		}
		records = append(records, f.Records()...)
	}
	total := 0
	for _, r := range records {
		if string(r.Key) != "Order-"+order {
			continue
		}
		total++
		m, err := kafka.ParseRecord(r)
		if err != nil {
			return err
		}
		d.say("   partition %d offset %-3d key %s  ce_type=%-14s ce_streamversion=%d  value: 0x00, schema id %d, %d bytes of Avro",
			r.Partition, r.Offset, r.Key, m.Type, m.Version, m.SchemaID, len(m.Data))
	}
	page, err := d.get("/v1/events?limit=1000")
	if err != nil {
		return err
	}
	d.say("   The store holds %d Order and other events; events.Order holds %d records, all of Order-%s on one", len(page.Events), len(records), order)
	d.say("   partition (the key's murmur2 hash, as Java clients compute it), in version order. (%d of this order)", total)
	return nil
}

type reply struct {
	status int
	body   map[string]any
}

func (r reply) err() map[string]any {
	e, _ := r.body["error"].(map[string]any)
	return e
}

func (d *demo) post(path string, expected int, events ...string) (reply, error) {
	body := fmt.Sprintf(`{"expectedVersion": %d, "events": [%s]}`, expected, strings.Join(events, ","))
	resp, err := d.client.Post(d.base+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
		return reply{}, err
	}
	return r, nil
}

type page struct {
	Events []struct {
		StreamID string          `json:"streamId"`
		Type     string          `json:"type"`
		Version  int64           `json:"version"`
		SchemaID int             `json:"schemaId"`
		Data     json.RawMessage `json:"data"`
	}
	Next any // a version for a stream, a cursor for $all
}

func (d *demo) get(path string) (page, error) {
	var p page
	resp, err := d.client.Get(d.base + path)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return p, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	err = json.NewDecoder(resp.Body).Decode(&p)
	return p, err
}

func event(typ, format string, args ...any) string {
	return fmt.Sprintf(`{"type": %q, "data": {`+format+`}}`, append([]any{typ}, args...)...)
}

// freshSchema drops the store's schema, so that each run starts empty.
func freshSchema(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS strata CASCADE")
	return err
}

// schemasWithout copies schemas/ without the files ending in suffix.
func schemasWithout(suffix string) (string, error) {
	dir, err := os.MkdirTemp("", "strata-demo-schemas-")
	if err != nil {
		return "", err
	}
	files, _ := filepath.Glob("schemas/*.avsc")
	for _, f := range files {
		if strings.HasSuffix(f, suffix) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func indent(s string) string { return "   " + strings.ReplaceAll(s, "\n", "\n   ") }

// randomID is eight hex digits from the random end of a UUID (the start of
// a version 7 UUID is the time, the same for ids made together).
func randomID() string {
	s := eventstore.NewUUIDv7().String()
	return s[len(s)-8:]
}
