package projector_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/projector"
)

// syncBuffer is a strings.Builder safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runInProcess runs `projector run` in this process until the test ends,
// and returns the address of its read API.
func (e *env) runInProcess(extra ...string) string {
	e.t.Helper()
	rctx, cancel := context.WithCancel(ctx)
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- projector.Run(rctx, []string{"run"}, e.getenv(extra...), &stdout, &stderr, orders.SummaryProjection())
	}()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("projector run returned %v after cancel, want nil\n%s", err, stderr.String())
		}
	})
	var addr string
	e.waitFor("the read API", 30*time.Second, func() bool {
		select {
		case err := <-done:
			e.t.Fatalf("projector run returned %v\n%s", err, stderr.String())
		default:
		}
		m := listening.FindStringSubmatch(stdout.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

// getJSON GETs url into v and returns the status code.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

// waitForReplay waits until the read models in the read-model schema
// equal a from-scratch replay of the store.
func (e *env) waitForReplay(timeout time.Duration) {
	e.t.Helper()
	want := e.replay()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := e.readModelsEqual(e.schema, want)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after %v the read models differ from a replay of the store: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRunBuildsTheReadModelsAndServesThem(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	addr := e.runInProcess()
	for i := range 30 {
		e.order(fmt.Sprint("o", i), i%4, i%3 != 0)
	}
	e.waitForReplay(30 * time.Second)

	var order struct {
		OrderID, Status, Total string
		ItemCount              int
	}
	if code := getJSON(t, "http://"+addr+"/v1/orders/o2", &order); code != 200 || order.Status != "shipped" || order.ItemCount != 3 || order.Total != "4.97" {
		t.Errorf("GET /v1/orders/o2 = %d %+v, want shipped with 3 items totalling 4.97", code, order)
	}
	var shipped struct {
		Items []struct{ OrderID, ItemID string }
	}
	if code := getJSON(t, "http://"+addr+"/v1/shipped-items?q=item-2", &shipped); code != 200 || len(shipped.Items) == 0 {
		t.Errorf("GET /v1/shipped-items?q=item-2 = %d %+v, want items", code, shipped)
	}
	var projections struct {
		Projections []struct{ Name, State string }
	}
	getJSON(t, "http://"+addr+"/v1/projections", &projections)
	if got := fmt.Sprint(projections.Projections); got != "[{order_summary running} {shipped_items running}]" {
		t.Errorf("GET /v1/projections = %s, want both projections running", got)
	}

	out, _, err := e.cli("status", "--sample", "200ms")
	if err != nil || !strings.Contains(out, "order_summary: RUNNING") || !strings.Contains(out, "shipped_items: RUNNING") ||
		!regexp.MustCompile(`lag 0 events · [0-9.]+ events/s · \d+ applied · 0 parked`).MatchString(out) {
		t.Errorf("projector status = %v\n%s", err, out)
	}
	out, _, err = e.cli("status", "--json", "--sample", "0")
	var statuses []struct {
		Name       string
		Partitions []struct{ Lag int64 }
	}
	if err != nil || json.Unmarshal([]byte(out), &statuses) != nil || len(statuses) != 2 || len(statuses[0].Partitions) != 4 {
		t.Errorf("projector status --json = %v\n%s", err, out)
	}
	if out, _, err := e.cli("resume", "order_summary"); err != nil || out != "order_summary was not halted\n" {
		t.Errorf("projector resume = %q, %v", out, err)
	}
	if out, _, err := e.cli("parked", "shipped_items"); err != nil || out != "shipped_items has no parked events\n" {
		t.Errorf("projector parked = %q, %v", out, err)
	}

	// A rebuild while the worker runs and orders keep coming.
	stop := e.load("r", 5*time.Millisecond)
	out, errOut, err := e.cli("rebuild", "order_summary")
	appended := stop()
	if err != nil || !regexp.MustCompile(`^order_summary rebuilt in \S+: generation 2 serves now\n$`).MatchString(out) ||
		!strings.Contains(errOut, "rebuild order_summary: 100% (") {
		t.Fatalf("projector rebuild = %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if appended == 0 {
		t.Fatal("no order was appended during the rebuild")
	}
	e.waitForReplay(30 * time.Second)
	if out, _, _ := e.cli("status", "--sample", "0"); !strings.Contains(out, "order_summary: RUNNING, generation 2") {
		t.Errorf("after the rebuild, status = %s", out)
	}
}

func TestKillingWorkersMidBatchLosesAndRepeatsNothing(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	stop := e.load("k", 2*time.Millisecond)
	// A second worker comes and goes too, so that kills also land
	// during rebalances.
	const kills = 20
	midTransaction := 0
	var other *process
	for i := range kills {
		// Each worker names its connections, to be told apart in
		// pg_stat_activity.
		name := fmt.Sprintf("killed-%d", i)
		p := e.startProcess("STRATA_DATABASE_URL=" + e.url + "&application_name=" + name)
		if i%5 == 2 && other == nil {
			other = e.startProcess()
		}
		// Kill it while one of its batches is between claiming its
		// offsets and COMMIT, if one is within a few seconds: a new
		// worker gets partitions only once the group has let the killed
		// one's session go.
		deadline := time.Now().Add(time.Duration(3000+rand.IntN(2000)) * time.Millisecond)
		for time.Now().Before(deadline) {
			if e.inTransaction(name) {
				midTransaction++
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.kill()
		if other != nil && i%5 == 4 {
			other.kill()
			other = nil
		}
	}
	stop()
	if midTransaction < kills/2 {
		t.Errorf("only %d of %d kills caught a batch in its transaction", midTransaction, kills)
	}
	t.Logf("%d of %d kills landed inside a batch's transaction", midTransaction, kills)
	if other != nil {
		other.kill()
	}
	// The last worker catches up alone. It joins a consumer group of its
	// own: the killed workers' group may still be rebalancing their
	// sessions away on a loaded machine, and where the worker starts does
	// not come from the group anyway but from the offsets stored with the
	// read model, which is what this test is about.
	final := e.startProcess("STRATA_GROUP_PREFIX=" + harness.UniqueName("final") + ".")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the last worker's log:\n%s", final.stderr())
		}
	})
	e.waitForReplay(90 * time.Second)
}

// inTransaction reports whether the connections named name are inside a
// batch's transaction: one that has claimed offsets (it holds a row lock
// on projection_offsets) and not committed yet.
func (e *env) inTransaction(name string) bool {
	e.t.Helper()
	var open bool
	err := e.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
		WHERE a.application_name = $1 AND a.xact_start IS NOT NULL
		  AND l.relation = to_regclass($2) AND l.mode = 'RowExclusiveLock')`,
		name, pgx.Identifier{e.schema, "projection_offsets"}.Sanitize()).Scan(&open)
	if err != nil {
		e.t.Fatal(err)
	}
	return open
}

func TestBadCommandLinesAreRefusedAndChangeNothing(t *testing.T) {
	e := newEnv(t)
	badDir := t.TempDir()
	os.WriteFile(filepath.Join(badDir, "broken.sql"), []byte("-- strata:categories Order\n-- strata:on OrderShipped\nUPDATE x SET a = $1\n"), 0o644)
	typoDir := t.TempDir()
	os.WriteFile(filepath.Join(typoDir, "typo.sql"), []byte("-- strata:categories Order\n-- strata:setup\nCREATE TABLE IF NOT EXISTS typo (a text);\n"+
		"-- strata:on OrderShipped\nINSERT INTO typo VALUES (:shippingAdress)\n"), 0o644)
	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{nil, nil, "no command given"},
		{[]string{"serve"}, nil, `unknown command "serve"`},
		{[]string{"run", "--projections", "order_summary,nope"}, nil, `no projection is named "nope"; the projections are order_summary, shipped_items`},
		{[]string{"run", "now"}, nil, `run takes no arguments, got "now"`},
		{[]string{"run", "--session-timeout", "0s"}, nil, "--session-timeout must be positive"},
		{[]string{"run"}, []string{"STRATA_HTTP_ADDR=0.0.0.0:0"}, "refusing to serve 0.0.0.0:0 without authentication"},
		{[]string{"run"}, []string{"STRATA_READMODEL_SCHEMA=Read-Model"}, "STRATA_READMODEL_SCHEMA (--readmodel-schema)"},
		{[]string{"run"}, []string{"STRATA_PROJECTIONS_DIR=" + badDir}, "broken.sql:3: positional parameter $1"},
		{[]string{"run"}, []string{"STRATA_PROJECTIONS_DIR=" + typoDir}, `typo.sql:5: OrderShipped has no field "shippingAdress"`},
		{[]string{"run"}, e.storeWithoutSystemSchemas(),
			"shipped_items.sql:49: -- strata:on-stream-deleted: the system schema strata.system.StreamDeleted is not registered: run writer schemas apply"},
		{[]string{"list"}, []string{"STRATA_PROJECTIONS_DIR=" + badDir}, "broken.sql:3:"},
		{[]string{"rebuild"}, nil, "projector rebuild takes one projection name"},
		{[]string{"rebuild", "nope"}, nil, `no projection is named "nope"`},
		{[]string{"resume", "a", "b"}, nil, "projector resume takes one projection name"},
		{[]string{"parked", "order_summary", "--limit", "0"}, nil, "--limit must be at least 1"},
		{[]string{"status", "--watch", "-1s"}, nil, "must not be negative"},
		{[]string{"status", "now"}, nil, `status takes no arguments, got "now"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			err := projector.Run(ctx, tt.args, e.getenv(tt.env...), &out, &errOut, orders.SummaryProjection())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("projector %v = %v, want an error saying %q", tt.args, err, tt.want)
			}
		})
	}
	// None of them set anything up.
	var tables int
	if err := e.db.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", e.schema).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("the read-model schema holds %d tables (%v), want none", tables, err)
	}
	var help strings.Builder
	if err := projector.Run(ctx, []string{"rebuild", "--help"}, e.getenv(), &help, &help); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(help.String(), "blue/green") || !strings.Contains(help.String(), "--restart") {
		t.Errorf("rebuild --help = %v\n%s", err, help.String())
	}
}
