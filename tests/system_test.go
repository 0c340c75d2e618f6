package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/harness"
)

// projectorProcess is a running `projector run`.
type projectorProcess struct {
	cmd  *exec.Cmd
	url  string // of its read API
	done chan error
}

var readAPILine = regexp.MustCompile(`read API on (http://\S+)`)

// startProjector runs `projector run` with env until the test ends.
func startProjector(t *testing.T, bin string, env []string) *projectorProcess {
	t.Helper()
	cmd := exec.Command(bin, "run", "--session-timeout", "2s")
	cmd.Env = append(env, "STRATA_HTTP_ADDR=127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &projectorProcess{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() { cmd.Process.Kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := readAPILine.FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("projector run printed %q (%v), want its read API's address", line, err)
	}
	p.url = m[1]
	go func() { io.Copy(io.Discard, stdout); p.done <- cmd.Wait() }()
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *projectorProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("projector exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("projector did not exit within 30s of SIGTERM")
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

// order is the read API's order, as much as the suite checks of it.
type order struct {
	OrderID, CustomerID, Status, Total, ShippingAddress string
	ItemCount, Version                                  int64
	Items                                               []struct {
		ItemID          string
		Quantity        int64
		Price, Currency string
	}
}

// TestTheSystemFromOutside runs the writer and two projectors as
// processes, drives the seed scenario over HTTP — with concurrent orders
// and a conflicting append — and checks the read models through the read
// API and the Kafka topic with a plain consumer.
func TestTheSystemFromOutside(t *testing.T) {
	writerBin, env, _, _ := prepareStore(t)
	w := serveWriter(t, writerBin, env)
	_, readModel := harness.NewSchema(t)
	projectorBin := build(t, "projector")
	penv := append(env, "STRATA_READMODEL_SCHEMA="+readModel, "STRATA_PROJECTIONS_DIR=../projections",
		"STRATA_GROUP_PREFIX="+harness.UniqueName("e2e")+".")
	p1, p2 := startProjector(t, projectorBin, penv), startProjector(t, projectorBin, penv)

	// The seed scenario: an order created, items added (one twice), shipped.
	stream := w.url + "/v1/streams/Order-a1b2c3d4/events"
	steps := []string{
		`{"expectedVersion": 0, "events": [{"type": "OrderCreated", "data": {"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}}]}`,
		`{"expectedVersion": 1, "events": [{"type": "OrderItemAdded", "data": {"orderId": "a1b2c3d4", "itemId": "widget-x", "quantity": 2, "price": "15.99", "timestamp": "2023-10-27T10:01:30Z"}}]}`,
		`{"expectedVersion": 2, "events": [{"type": "OrderItemAdded", "data": {"orderId": "a1b2c3d4", "itemId": "gadget-y", "quantity": 1, "price": "0.10", "currency": "EUR", "timestamp": "2023-10-27T10:02:00Z"}}]}`,
	}
	for _, body := range steps {
		if status, reply := post(t, stream, body); status != http.StatusCreated {
			t.Fatalf("append = %d %v", status, reply)
		}
	}
	// Concurrent orders, from four clients.
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				id := fmt.Sprintf("c%d-%d", c, i)
				body := fmt.Sprintf(`{"expectedVersion": 0, "events": [
					{"type": "OrderCreated", "data": {"orderId": %q, "customerId": "bulk", "timestamp": "2023-10-27T11:00:00Z"}},
					{"type": "OrderItemAdded", "data": {"orderId": %q, "itemId": "bolt", "quantity": 3, "price": "0.25", "timestamp": "2023-10-27T11:00:01Z"}},
					{"type": "OrderShipped", "data": {"orderId": %q, "shippingAddress": "%d Canal Street", "timestamp": "2023-10-27T12:00:00Z"},
					 "metadata": {"dataSubject": "bulk"}}]}`,
					id, id, id, c)
				if status, reply := post(t, w.url+"/v1/streams/Order-"+id+"/events", body); status != http.StatusCreated {
					t.Errorf("append order %s = %d %v", id, status, reply)
				}
			}
		}()
	}
	// A conflict: two clients add an item at version 3; one wins, the
	// other gets 409 and retries at the version it is told.
	add := func(item string, version int) (int, map[string]any) {
		return post(t, stream, fmt.Sprintf(`{"expectedVersion": %d, "events": [{"type": "OrderItemAdded", "data": {"orderId": "a1b2c3d4", "itemId": %q, "quantity": 1, "price": "15.99", "timestamp": "2023-10-27T10:03:00Z"}}]}`, version, item))
	}
	results := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, reply := add("widget-x", 3)
			if status == http.StatusConflict {
				errBody, _ := reply["error"].(map[string]any)
				current, _ := errBody["actual"].(float64)
				if errBody["code"] != "wrong_expected_version" || current != 4 {
					t.Errorf("conflicting append = %d %v, want wrong_expected_version at version 4", status, reply)
				}
				status, reply = add("widget-x", int(current))
				if status != http.StatusCreated {
					t.Errorf("retried append = %d %v", status, reply)
				}
				results <- http.StatusConflict
				return
			}
			if status != http.StatusCreated {
				t.Errorf("append = %d %v", status, reply)
			}
			results <- status
		}()
	}
	wg.Wait()
	close(results)
	var conflicts int
	for s := range results {
		if s == http.StatusConflict {
			conflicts++
		}
	}
	if conflicts != 1 {
		t.Errorf("%d of the two concurrent appends at version 3 conflicted, want 1", conflicts)
	}
	if status, reply := post(t, stream, `{"expectedVersion": 5, "events": [{"type": "OrderShipped", "data": {"orderId": "a1b2c3d4", "shippingAddress": "1 Harbour Road, Springfield", "timestamp": "2023-10-28T09:00:00Z"}, "metadata": {"dataSubject": "user123"}}]}`); status != http.StatusCreated {
		t.Fatalf("ship = %d %v", status, reply)
	}

	// The read model, through either projector's read API.
	var got order
	deadline := time.Now().Add(60 * time.Second)
	for getJSON(t, p2.url+"/v1/orders/a1b2c3d4", &got); got.Version < 6; getJSON(t, p2.url+"/v1/orders/a1b2c3d4", &got) {
		if time.Now().After(deadline) {
			t.Fatalf("the order summary is at %+v after 60s, want version 6", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	items := fmt.Sprint(got.Items)
	if got.Status != "shipped" || got.CustomerID != "user123" || got.ItemCount != 5 || got.Total != "64.06" ||
		got.ShippingAddress != "1 Harbour Road, Springfield" || items != "[{gadget-y 1 0.10 EUR} {widget-x 4 15.99 USD}]" {
		t.Errorf("order a1b2c3d4 = %+v", got)
	}
	var page struct{ Orders []order }
	deadline = time.Now().Add(60 * time.Second)
	for getJSON(t, p1.url+"/v1/orders?customerId=bulk&status=shipped&limit=100", &page); len(page.Orders) < 40; getJSON(t, p1.url+"/v1/orders?customerId=bulk&status=shipped&limit=100", &page) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the 40 bulk orders are shipped in the read model after 60s", len(page.Orders))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, o := range page.Orders {
		if o.Total != "0.75" || o.ItemCount != 3 || o.Version != 3 {
			t.Errorf("bulk order = %+v", o)
		}
	}
	var found struct {
		Items []struct{ OrderID, ItemID string }
	}
	getJSON(t, p1.url+"/v1/shipped-items?q=harbour%20springfield", &found)
	if fmt.Sprint(found.Items) != "[{a1b2c3d4 gadget-y} {a1b2c3d4 widget-x}]" {
		t.Errorf("shipped items of harbour springfield = %v", found.Items)
	}
	var declared struct {
		Rows []struct {
			OrderID string `json:"order_id"`
			ItemID  string `json:"item_id"`
		}
	}
	getJSON(t, p1.url+"/v1/projections/shipped_items/queries/search?q=harbour%20springfield", &declared)
	if fmt.Sprint(declared.Rows) != "[{a1b2c3d4 gadget-y} {a1b2c3d4 widget-x}]" {
		t.Errorf("the declared search of harbour springfield = %v", declared.Rows)
	}
	var projections struct {
		Projections []struct {
			Name, State string
			Lag         int64
		}
	}
	// The checks above waited for order_summary only: shipped_items may
	// still be applying the bulk orders. Both report running, and catch up.
	deadline = time.Now().Add(60 * time.Second)
	for getJSON(t, p1.url+"/v1/projections", &projections); fmt.Sprint(projections.Projections) != "[{order_summary running 0} {shipped_items running 0}]"; getJSON(t, p1.url+"/v1/projections", &projections) {
		if time.Now().After(deadline) {
			t.Fatalf("projections = %v after 60s, want both running with no lag", projections.Projections)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Kafka, read with a plain consumer: every event once, in stream order.
	messages := consumeTopic(t, harness.KafkaBrokers(t), envValue(env, "STRATA_TOPIC_PREFIX")+"Order")
	versions := map[string][]int64{}
	for _, m := range messages {
		versions[m.StreamID.String()] = append(versions[m.StreamID.String()], m.Version)
	}
	if len(messages) != 6+40*3 || len(versions) != 41 {
		t.Errorf("the topic holds %d records of %d streams, want %d of 41", len(messages), len(versions), 6+40*3)
	}
	for s, vs := range versions {
		for i, v := range vs {
			if v != int64(i+1) {
				t.Errorf("stream %s in the topic: versions %v, want 1, 2, ...", s, vs)
				break
			}
		}
	}
	p1.stop(t)
	p2.stop(t)
}
