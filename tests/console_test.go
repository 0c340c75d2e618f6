package tests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/browsertest"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
)

const (
	consoleAdmin  = "console-e2e-admin-token-01"
	consoleReader = "console-e2e-reader-token-1"
)

// TestTheConsoleOperatesARunningSystem runs the writer (with its relay)
// and a projector as processes, and operates them from the console in a
// browser: the overview shows the relay and the projections, a halted
// projection is resumed and a parked event retried from their pages, a
// rebuild is started and watched, and the stream page says which Kafka
// partition the stream's events went to.
func TestTheConsoleOperatesARunningSystem(t *testing.T) {
	tokens := "STRATA_API_TOKENS=" + consoleAdmin + ":admin," + consoleReader + ":reader"
	writerBin, env, dbURL, _ := prepareStore(t, tokens, "STRATA_LOG_LEVEL=warn")
	_, readModel := harness.NewSchema(t)
	dir := t.TempDir()
	for name, policy := range map[string]string{"fragile": "park", "strict": "halt"} {
		if err := os.WriteFile(filepath.Join(dir, name+".sql"), []byte(harness.FailingProjection(name, policy)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := startProjector(t, build(t, "projector"), append(env, "STRATA_READMODEL_SCHEMA="+readModel,
		"STRATA_PROJECTIONS_DIR="+dir, "STRATA_GROUP_PREFIX="+harness.UniqueName("console")+"."))
	w := serveWriter(t, writerBin, env, "--projector-url", p.url)

	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	orderIDs := func(table string) string {
		var ids []string
		err := db.QueryRow(context.Background(), "SELECT coalesce(array_agg(order_id ORDER BY order_id), '{}') FROM "+
			pgx.Identifier{readModel, table}.Sanitize()).Scan(&ids)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(ids, " ")
	}
	for _, id := range []string{"poison1", "fine1"} {
		req, _ := http.NewRequest("POST", w.url+"/v1/streams/Order-"+id+"/events", strings.NewReader(
			`{"expectedVersion": 0, "events": [{"type": "OrderCreated", "data": {"orderId": "`+id+`", "customerId": "user1", "timestamp": "2023-10-27T10:00:00Z"}}]}`))
		req.Header.Set("Authorization", "Bearer "+consoleAdmin)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("append Order-%s: %v %v", id, res, err)
		}
		res.Body.Close()
	}

	b := browsertest.New(t)
	b.Open(w.url + "/console/")
	browsertest.Evaluate[bool](b, `sessionStorage.setItem("strata.token", "`+consoleAdmin+`"); true`)
	// waitText waits until sel's text contains want, reloading the page
	// at url every half second (what is shown comes from processes at
	// work), and returns it.
	waitText := func(url, sel, want string) string {
		t := b.T
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			b.Open(url)
			got := browsertest.Evaluate[string](b, `(document.querySelector(`+"`"+sel+"`"+`) || {}).innerText || ""`)
			if strings.Contains(got, want) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s shows %q, want it to contain %q; the page shows %q", url, sel, got, want, b.Text("main"))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	t.Run("the overview shows the relay and the projections", func(t *testing.T) {
		b.T = t
		waitText(w.url+"/console/", "#relay", "publishing")
		got := waitText(w.url+"/console/", "#projections", "strict halted")
		for _, want := range []string{"fragile running", "order_summary running"} {
			if !strings.Contains(got, want) {
				t.Errorf("the overview's projections show %q, want %q", got, want)
			}
		}
		if got := b.Text("#relay"); !strings.Contains(got, "2 published") || !strings.Contains(got, "lag: 0 events") {
			t.Errorf("the relay card shows %q, want 2 published and no lag", got)
		}
		b.Screenshot("overview")
		b.Open(w.url + "/console/projections")
		b.Screenshot("projections")
	})

	t.Run("a halted projection is resumed from its page", func(t *testing.T) {
		b.T = t
		got := waitText(w.url+"/console/projections/strict", "#status", "Halted")
		if !strings.Contains(got, "Order-poison1") || !strings.Contains(got, "strict_no_poison") {
			t.Errorf("the halted projection's page shows %q, want the event and the error", got)
		}
		b.Screenshot("projection-halted")
		if _, err := db.Exec(context.Background(), "ALTER TABLE "+pgx.Identifier{readModel, "strict_orders"}.Sanitize()+" DROP CONSTRAINT strict_no_poison"); err != nil {
			t.Fatal(err)
		}
		browsertest.Evaluate[bool](b, `window.confirm = () => true; true`)
		b.Run("resume", chromedp.Click(chromedp.CSS("#resume")), chromedp.WaitVisible(chromedp.CSS("#outcome .ok")))
		if got := b.Text("#outcome"); !strings.Contains(got, "strict resumed") {
			t.Errorf("resuming says %q", got)
		}
		waitText(w.url+"/console/projections/strict", "#status", "running")
		deadline := time.Now().Add(30 * time.Second)
		for orderIDs("strict_orders") != "fine1 poison1" {
			if time.Now().After(deadline) {
				t.Fatalf("strict_orders holds %q after the resume, want fine1 poison1", orderIDs("strict_orders"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("a parked event is retried from its page", func(t *testing.T) {
		b.T = t
		waitText(w.url+"/console/projections/fragile", "#parked", "Order-poison1")
		if _, err := db.Exec(context.Background(), "ALTER TABLE "+pgx.Identifier{readModel, "fragile_orders"}.Sanitize()+" DROP CONSTRAINT fragile_no_poison"); err != nil {
			t.Fatal(err)
		}
		b.Screenshot("projection-parked")
		browsertest.Evaluate[bool](b, `window.confirm = () => true; true`)
		b.Run("retry", chromedp.Click(chromedp.CSS("#parked button.retry")), chromedp.WaitVisible(chromedp.CSS("#outcome .ok")))
		if got := b.Text("#outcome"); !strings.Contains(got, "Applied Order-poison1 version 1 on retry") {
			t.Errorf("retrying says %q", got)
		}
		if got := orderIDs("fragile_orders"); got != "fine1 poison1" {
			t.Errorf("fragile_orders holds %q after the retry, want fine1 poison1", got)
		}
		waitText(w.url+"/console/projections/fragile", "#parked", "None.")
	})

	t.Run("a rebuild is started and watched from the page", func(t *testing.T) {
		b.T = t
		b.Open(w.url + "/console/projections/order_summary")
		browsertest.Evaluate[bool](b, `window.confirm = () => true; true`)
		b.Run("rebuild", chromedp.Click(chromedp.CSS("#rebuild")), chromedp.WaitVisible(chromedp.CSS("#rebuild-outcome .ok")))
		if got := b.Text("#rebuild-outcome"); !strings.Contains(got, "Rebuild of generation 2 started") {
			t.Errorf("starting the rebuild says %q", got)
		}
		deadline := time.Now().Add(45 * time.Second)
		for !strings.Contains(b.Text("#rebuild-outcome"), "Rebuilt: generation 2 serves now") {
			if time.Now().After(deadline) {
				t.Fatalf("the rebuild's outcome says %q", b.Text("#rebuild-outcome"))
			}
			time.Sleep(200 * time.Millisecond)
		}
		waitText(w.url+"/console/projections/order_summary", "#status", "generation 2")
	})

	t.Run("the stream page names the stream's Kafka topic and partition", func(t *testing.T) {
		b.T = t
		b.Open(w.url + "/console/streams/Order-poison1")
		topic := envValue(env, "STRATA_TOPIC_PREFIX") + "Order"
		want := fmt.Sprintf("Published to Kafka topic %s, partition %d", topic, kafka.Partition([]byte("Order-poison1"), 4))
		if got := b.Text("#kafka"); !strings.Contains(got, want) {
			t.Errorf("the stream page says %q, want %q", got, want)
		}
	})

	t.Run("at 390 px wide the projection pages fit", func(t *testing.T) {
		b.T = t
		b.Run("narrow", chromedp.EmulateViewport(390, 844))
		for _, page := range []string{"/console/", "/console/projections", "/console/projections/fragile"} {
			b.Open(w.url + page)
			if browsertest.Evaluate[bool](b, `document.documentElement.scrollWidth > window.innerWidth`) {
				t.Errorf("%s is wider than a 390 px screen", page)
			}
		}
		b.Screenshot("projection-390px")
	})
	t.Logf("screenshots in %s", b.Dir)
}
