package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/writertest"
)

// writer is a running `writer serve` process.
type writer struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

// startWriter migrates a schema of its own, applies the repository's
// schemas and serves on a free port, all through the real binary.
func startWriter(t *testing.T, extraEnv ...string) (*writer, string, string) {
	t.Helper()
	bin, env, url, schema := prepareStore(t, extraEnv...)
	return serveWriter(t, bin, env), url, schema
}

// prepareStore builds the writer, migrates a schema of a test's own and
// applies the repository's schemas; it returns the binary and its
// environment.
func prepareStore(t *testing.T, extraEnv ...string) (bin string, env []string, url, schema string) {
	t.Helper()
	bin = build(t, "writer")
	url, schema = harness.NewSchema(t)
	env = append(os.Environ(), "STRATA_DATABASE_URL="+url, "STRATA_DATABASE_SCHEMA="+schema, "STRATA_SCHEMAS_DIR=../schemas",
		"STRATA_MASTER_KEY_FILE="+writertest.MasterKeyFile(t),
		"STRATA_KAFKA_BROKERS="+strings.Join(harness.KafkaBrokers(t), ","),
		"STRATA_TOPIC_PREFIX="+harness.UniqueName("e2e")+".", "STRATA_STORE_NAME="+harness.UniqueName("store"),
		"STRATA_TOPIC_PARTITIONS=4")
	env = append(env, extraEnv...)
	for _, args := range [][]string{{"migrate"}, {"schemas", "apply"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("writer %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bin, env, url, schema
}

// serveWriter runs `writer serve` on a free port until the test ends,
// with args after serve's own.
func serveWriter(t *testing.T, bin string, env []string, args ...string) *writer {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--http-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writer{cmd: cmd, done: make(chan error, 1)}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "writer listening on ") {
		cmd.Process.Kill()
		t.Fatalf("writer serve printed %q (%v), want its address", line, err)
	}
	w.url = strings.TrimSpace(strings.TrimPrefix(line, "writer listening on "))
	go func() { io.Copy(io.Discard, stdout); w.done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return w
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

const orderCreated = `{"type": "OrderCreated", "data": {"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}}`

func TestTheWriterBinaryServesTheAPI(t *testing.T) {
	w, _, _ := startWriter(t)
	status, body := post(t, w.url+"/v1/streams/Order-a1b2c3d4/events", `{"expectedVersion": 0, "events": [`+orderCreated+`,
		{"type": "OrderItemAdded", "data": {"orderId": "a1b2c3d4", "itemId": "widget-x", "quantity": 2, "price": 15.99, "timestamp": "2023-10-27T10:01:30Z"}}]}`)
	if status != http.StatusCreated || body["lastVersion"] != float64(2) {
		t.Fatalf("append = %d %v", status, body)
	}
	resp, err := http.Get(w.url + "/v1/streams/Order-a1b2c3d4/events")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Events []struct {
			Type string
			Data map[string]any
		}
		Version int64
	}
	json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if page.Version != 2 || len(page.Events) != 2 || page.Events[1].Data["price"] != "15.99" || page.Events[1].Data["currency"] != "USD" {
		t.Errorf("read = %+v", page)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/registry/subjects"} {
		resp, err := http.Get(w.url + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %v, %v", path, resp.Status, err)
		}
		resp.Body.Close()
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("writer exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writer did not exit after SIGTERM")
	}
}

// A SIGTERM during a burst of appends: every append that got an answer was
// stored (the answer was 201), every one that did not is absent.
func TestShutdownFinishesAppendsInFlight(t *testing.T) {
	w, url, schema := startWriter(t)
	type result struct {
		stream  string
		id      string
		status  int
		sendErr error
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 400; i++ {
				id := fmt.Sprintf("0190b1c4-3c1e-7a6e-9f0a-%04x%08x", c, i)
				stream := fmt.Sprintf("Order-s%d", c)
				body := `{"events": [` + strings.Replace(orderCreated, `{"type"`, `{"id": "`+id+`", "type"`, 1) + `]}`
				resp, err := client.Post(w.url+"/v1/streams/"+stream+"/events", "application/json", strings.NewReader(body))
				r := result{stream: stream, id: id, sendErr: err}
				if err == nil {
					r.status = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if err != nil {
					return // the server is gone
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	w.cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("writer exited with %v, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writer did not exit after SIGTERM")
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT event_id::text FROM "+pgx.Identifier{schema, "events"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	isStored := map[string]bool{}
	for _, id := range stored {
		isStored[id] = true
	}
	answered, refused := 0, 0
	for _, r := range results {
		switch {
		case r.sendErr == nil && r.status != http.StatusCreated:
			t.Errorf("append %s answered %d during shutdown, want 201", r.id, r.status)
		case r.sendErr == nil && !isStored[r.id]:
			t.Errorf("append %s answered 201 but is not stored", r.id)
		case r.sendErr == nil:
			answered++
		case isStored[r.id]:
			t.Errorf("append %s got no answer (%v) but is stored", r.id, r.sendErr)
		default:
			refused++
		}
	}
	if refused == 0 {
		t.Errorf("every append finished before the shutdown; the test did not test it")
	}
	if answered != len(stored) {
		t.Errorf("%d events stored, %d appends answered 201", len(stored), answered)
	}
	t.Logf("%d appends answered before the shutdown, %d refused after it", answered, refused)
}
