package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
)

// TestAppendsOverADatabaseRestart kills PostgreSQL under HTTP appends and
// starts it again: each append answers, within a bounded time, either 201
// and is stored, or 503 unavailable and is absent; the API recovers by
// itself when the database returns.
func TestAppendsOverADatabaseRestart(t *testing.T) {
	cluster := harness.SharedCluster(t)
	t.Cleanup(func() { cluster.Start(context.Background()) }) // no-op when running
	a := newAPI(t, Options{Timeout: 5 * time.Second})

	type result struct {
		id      string
		status  int
		code    string
		elapsed time.Duration
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := eventstore.NewUUIDv7().String()
				body := appendBody(-1, strings.Replace(orderCreated, `{"type"`, `{"id": "`+id+`", "type"`, 1))
				start := time.Now()
				resp, err := http.Post(a.url+fmt.Sprintf("/v1/streams/Order-r%d/events", w), "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("POST: %v", err)
					return
				}
				var e struct{ Error errorBody }
				json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				mu.Lock()
				results = append(results, result{id, resp.StatusCode, e.Error.Code, time.Since(start)})
				mu.Unlock()
				if resp.StatusCode != http.StatusCreated {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	cluster.Kill()
	time.Sleep(2 * time.Second) // appends meanwhile must fail fast, not hang
	if err := cluster.Start(context.Background()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	stored := map[string]bool{}
	var cursor eventstore.Cursor
	for {
		page, err := a.store.ReadAll(context.Background(), cursor, eventstore.MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			stored[e.ID.String()] = true
		}
		cursor = page.Next
		if len(page.Events) == 0 {
			break
		}
	}
	var ok, unavailable, afterRecovery int
	var slowest time.Duration
	for i, r := range results {
		switch {
		case r.status == http.StatusCreated && !stored[r.id]:
			t.Errorf("append %s answered 201 but is not stored", r.id)
		case r.status == http.StatusCreated:
			ok++
		case r.status == http.StatusServiceUnavailable && r.code == "unavailable":
			unavailable++
			slowest = max(slowest, r.elapsed)
			if stored[r.id] {
				t.Errorf("append %s answered 503 but is stored", r.id)
			}
		default:
			t.Errorf("append %s answered %d %s", r.id, r.status, r.code)
		}
		if r.status == http.StatusCreated && i > len(results)-16 {
			afterRecovery++
		}
	}
	if unavailable == 0 {
		t.Fatalf("no append failed: the outage was not observed")
	}
	if slowest > 25*time.Second {
		t.Errorf("the slowest failed append took %s; failures must come within the request timeout and the settle bound", slowest)
	}
	if afterRecovery == 0 {
		t.Errorf("no append succeeded after the database came back")
	}
	t.Logf("%d stored, %d unavailable (slowest %s), %d of the last appends stored", ok, unavailable, slowest, afterRecovery)
}
