package tests

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/harness"
)

// loggedProcess is a binary run until the test ends with everything it
// prints kept in a file, which the erasure test searches.
type loggedProcess struct {
	url string
	log string
}

// startLogged runs bin with args and env, and returns the http:// address
// that its first line names after prefix.
func startLogged(t *testing.T, bin string, env []string, name, prefix string, args ...string) *loggedProcess {
	t.Helper()
	p := &loggedProcess{log: filepath.Join(t.TempDir(), name+".log")}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = f
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	f.WriteString(line)
	m := regexp.MustCompile(regexp.QuoteMeta(prefix) + `.*?(http://\S+)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("%s printed %q (%v), want %q and its address", name, line, err, prefix)
	}
	p.url = m[1]
	go io.Copy(f, r)
	return p
}

// fetch returns the body of a GET, which must answer 200.
func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// tableDump returns every row of every table of schema as text, a table
// per line: bytea columns come out in hex, so that is searched too.
func tableDump(t *testing.T, db *pgxpool.Pool, schema string) map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		t.Fatalf("the tables of %s: %v, %v", schema, tables, err)
	}
	dump := make(map[string]string)
	for _, table := range tables {
		var text string
		q := fmt.Sprintf("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM %s t", pgx.Identifier{schema, table}.Sanitize())
		if err := db.QueryRow(context.Background(), q).Scan(&text); err != nil {
			t.Fatalf("dump %s.%s: %v", schema, table, err)
		}
		dump[schema+"."+table] = text
	}
	return dump
}

// kafkaDump returns, per topic of prefix, the key, headers and raw value
// of every record, read by kcat (librdkafka): a client of its own.
func kafkaDump(t *testing.T, prefix string) map[string]string {
	t.Helper()
	brokers := strings.Join(harness.KafkaBrokers(t), ",")
	list, err := exec.Command("kcat", "-b", brokers, "-L", "-q").Output()
	if err != nil {
		t.Fatalf("kcat -L: %v", err)
	}
	dump := make(map[string]string)
	for _, m := range regexp.MustCompile(`topic "(`+regexp.QuoteMeta(prefix)+`[^"]*)"`).FindAllStringSubmatch(string(list), -1) {
		out, err := exec.Command("kcat", "-b", brokers, "-C", "-t", m[1], "-o", "beginning", "-e", "-q",
			"-X", "isolation.level=read_uncommitted", "-f", "%k %h %s\n").Output()
		if err != nil {
			t.Fatalf("kcat -C -t %s: %v", m[1], err)
		}
		dump[m[1]] = string(out)
	}
	if len(dump) == 0 {
		t.Fatalf("kcat lists no topic of prefix %s:\n%s", prefix, list)
	}
	return dump
}

// findIn returns the places of dump that hold needle, as text or in hex,
// case folded.
func findIn(dump map[string]string, needle string) []string {
	var found []string
	hexNeedle := hex.EncodeToString([]byte(needle))
	for place, text := range dump {
		lower := strings.ToLower(text)
		if strings.Contains(lower, strings.ToLower(needle)) || strings.Contains(lower, hexNeedle) {
			found = append(found, place)
		}
	}
	return found
}

// TestAnErasureReachesEveryCopy is the point of crypto-shredding: a
// customer's shipping address, once erased, is found nowhere: in no table
// of the store or of the read models, in no raw Kafka record, in no answer
// of the read APIs, in no log; another customer's stays readable
// everywhere, and a rebuild of the read models brings nothing back.
func TestAnErasureReachesEveryCopy(t *testing.T) {
	writerBin, env, dbURL, storeSchema := prepareStore(t)
	w := startLogged(t, writerBin, env, "writer", "writer listening on ", "serve", "--http-addr", "127.0.0.1:0")
	_, readModel := harness.NewSchema(t)
	projectorBin := build(t, "projector")
	penv := append(env, "STRATA_READMODEL_SCHEMA="+readModel, "STRATA_PROJECTIONS_DIR=../projections",
		"STRATA_GROUP_PREFIX="+harness.UniqueName("erase")+".", "STRATA_HTTP_ADDR=127.0.0.1:0")
	p := startLogged(t, projectorBin, penv, "projector", "read API on ", "run", "--session-timeout", "2s")
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	const secret, kept = "42 Secret Lane", "7 Open Road"
	orders := []struct{ id, customer, address string }{
		{"e1", "ada", secret + ", Springfield"}, {"e2", "ada", secret}, {"k1", "bob", kept},
	}
	for _, o := range orders {
		body := fmt.Sprintf(`{"expectedVersion": 0, "events": [
			{"type": "OrderCreated", "data": {"orderId": %[1]q, "customerId": %[2]q, "timestamp": "2026-03-01T10:00:00Z"}},
			{"type": "OrderItemAdded", "data": {"orderId": %[1]q, "itemId": "lamp-%[1]s", "quantity": 1, "price": "9.50", "timestamp": "2026-03-01T10:01:00Z"}},
			{"type": "OrderShipped", "data": {"orderId": %[1]q, "shippingAddress": %[3]q, "timestamp": "2026-03-01T11:00:00Z"},
			 "metadata": {"dataSubject": %[2]q}}]}`, o.id, o.customer, o.address)
		if status, reply := post(t, w.url+"/v1/streams/Order-"+o.id+"/events", body); status != http.StatusCreated {
			t.Fatalf("append order %s = %d %v", o.id, status, reply)
		}
	}
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !done(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 60 s", what)
			}
		}
	}
	address := func(id string) string {
		var o order
		if getJSON(t, p.url+"/v1/orders/"+id, &o) != http.StatusOK {
			return ""
		}
		return o.ShippingAddress
	}
	itemAddress := func(id string) string {
		var n int
		db.QueryRow(context.Background(), fmt.Sprintf("SELECT count(*) FROM %s.shipped_items WHERE order_id = $1", pgx.Identifier{readModel}.Sanitize()), id).Scan(&n)
		if n == 0 {
			return ""
		}
		var a string
		db.QueryRow(context.Background(), fmt.Sprintf("SELECT shipping_address FROM %s.shipped_items WHERE order_id = $1", pgx.Identifier{readModel}.Sanitize()), id).Scan(&a)
		return a
	}
	waitFor("the orders projected", func() bool {
		return address("e1") == orders[0].address && address("k1") == kept && itemAddress("e2") == secret && itemAddress("k1") == kept
	})

	// Every read-API answer the subject's data can appear in.
	answers := func() map[string]string {
		m := map[string]string{}
		for _, path := range []string{"/v1/streams/Order-e1/events", "/v1/streams/Order-e2/events", "/v1/streams/Order-k1/events",
			"/v1/events?limit=1000", "/v1/categories/Order/events?limit=1000", "/v1/data-subjects/ada/events", "/v1/data-subjects/bob/events"} {
			m["writer "+path] = fetch(t, w.url+path)
		}
		for _, path := range []string{"/v1/orders/e1", "/v1/orders/e2", "/v1/orders/k1", "/v1/orders?customerId=ada", "/v1/orders?status=shipped",
			"/v1/shipped-items?q=lamp-e1", "/v1/shipped-items?q=lamp-k1", "/v1/shipped-items?q=Secret",
			"/v1/projections/shipped_items/queries/search?q=lamp-e2"} {
			m["projector "+path] = fetch(t, p.url+path)
		}
		return m
	}
	logs := func() map[string]string {
		m := map[string]string{}
		for _, l := range []string{w.log, p.log} {
			b, _ := os.ReadFile(l)
			m[filepath.Base(l)] = string(b)
		}
		return m
	}
	prefix := envValue(env, "STRATA_TOPIC_PREFIX")

	// Before the erasure the checks can fail: the address is in the
	// answers and in the read models. The store and Kafka only ever hold
	// it encrypted.
	if found := findIn(answers(), "Secret Lane"); len(found) < 5 {
		t.Fatalf("before the erasure the address is in only %v: the search would prove nothing", found)
	}
	if found := findIn(tableDump(t, db, readModel), "Secret Lane"); len(found) < 2 {
		t.Fatalf("before the erasure the address is in only the read-model tables %v", found)
	}
	if found := findIn(tableDump(t, db, storeSchema), "Secret"); len(found) > 0 {
		t.Errorf("the store's tables %v hold the address in the clear", found)
	}
	waitFor("the records in Kafka", func() bool { return strings.Count(strings.Join(mapValues(kafkaDump(t, prefix)), ""), "ce_type=") >= 9 })
	if found := findIn(kafkaDump(t, prefix), "Secret"); len(found) > 0 {
		t.Errorf("the Kafka topics %v hold the address in the clear", found)
	}

	req, _ := http.NewRequest("DELETE", w.url+"/v1/data-subjects/ada", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE /v1/data-subjects/ada = %v, %v", resp, err)
	}
	resp.Body.Close()
	waitFor("the erasure projected", func() bool {
		return address("e1") == "[erased]" && address("e2") == "[erased]" && itemAddress("e1") == "[erased]" && itemAddress("e2") == "[erased]"
	})

	scan := func(when string) {
		t.Helper()
		for what, dump := range map[string]map[string]string{
			"the store's tables": tableDump(t, db, storeSchema), "the read models' tables": tableDump(t, db, readModel),
			"the raw Kafka records": kafkaDump(t, prefix), "the read APIs' answers": answers(), "the logs": logs(),
		} {
			if found := findIn(dump, "Secret"); len(found) > 0 {
				t.Errorf("%s, the erased address is in %s: %v", when, what, found)
			}
		}
		if a := answers(); !strings.Contains(a["writer /v1/streams/Order-k1/events"], kept) || !strings.Contains(a["projector /v1/orders/k1"], kept) ||
			!strings.Contains(a["writer /v1/data-subjects/bob/events"], kept) || !strings.Contains(a["writer /v1/streams/Order-e1/events"], `"shippingAddress":"[erased]"`) {
			t.Errorf("%s, the other customer's address or the erased form is not read: %v", when, a)
		}
		if itemAddress("k1") != kept || address("k1") != kept {
			t.Errorf("%s, the other customer's read-model rows lost the address", when)
		}
	}
	scan("after the erasure")

	// A rebuild reads every record again, from the beginning of the
	// topics: the erased fields come as "[erased]", and the rows match.
	for _, projection := range []string{"order_summary", "shipped_items"} {
		status, reply := post(t, p.url+"/v1/projections/"+projection+"/rebuild", "")
		if status != http.StatusAccepted {
			t.Fatalf("rebuild %s = %d %v", projection, status, reply)
		}
		waitFor("the rebuild of "+projection, func() bool {
			var run struct{ State, Error string }
			getJSON(t, p.url+"/v1/projections/"+projection+"/rebuild", &run)
			if run.State == "failed" {
				t.Fatalf("the rebuild of %s failed: %s", projection, run.Error)
			}
			return run.State == "done"
		})
	}
	if address("e1") != "[erased]" || itemAddress("e2") != "[erased]" {
		t.Errorf("after the rebuilds, the erased orders read %q and %q", address("e1"), itemAddress("e2"))
	}
	scan("after the rebuilds")
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
