package projector_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/projector"
)

const (
	adminSecret  = "projector-admin-token-01"
	readerSecret = "projector-reader-token-1"
)

// call sends method url with token and decodes the answer into v.
func call(t *testing.T, method, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode
}

// The admin routes resume a halted projection, retry and discard parked
// events, and start a rebuild, with the admin role only, and refuse what
// is not there.
func TestTheAdminRoutesOperateTheProjections(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	dir := t.TempDir()
	for name, policy := range map[string]string{"fragile": "park", "strict": "halt"} {
		if err := os.WriteFile(filepath.Join(dir, name+".sql"), []byte(harness.FailingProjection(name, policy)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://" + e.runInProcess("STRATA_PROJECTIONS_DIR="+dir,
		"STRATA_API_TOKENS="+adminSecret+":admin,"+readerSecret+":reader")
	rows := func(table string) string {
		var ids []string
		err := e.pool(e.schema).QueryRow(ctx, "SELECT coalesce(array_agg(order_id ORDER BY order_id), '{}') FROM "+table).Scan(&ids)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(ids, " ")
	}
	type status struct {
		State  string
		Parked int64
		Halted *struct{ StreamID string }
	}
	statusOf := func(name string) status {
		var s status
		if code := call(t, "GET", base+"/v1/projections/"+name, readerSecret, &s); code != 200 {
			t.Fatalf("GET /v1/projections/%s = %d", name, code)
		}
		return s
	}

	e.order("poison1", 0, false)
	e.order("fine1", 0, false)
	e.waitFor("fragile to park poison1 and apply fine1", 30*time.Second, func() bool {
		return statusOf("fragile").Parked == 1 && strings.Contains(rows("fragile_orders"), "fine1")
	})
	e.waitFor("strict to halt on poison1", 30*time.Second, func() bool { return statusOf("strict").State == "halted" })

	var parked struct {
		Parked []struct {
			ID       int64
			StreamID string
			Error    string
		}
	}
	if code := call(t, "GET", base+"/v1/projections/fragile/parked", readerSecret, &parked); code != 200 ||
		len(parked.Parked) != 1 || parked.Parked[0].StreamID != "Order-poison1" || !strings.Contains(parked.Parked[0].Error, "fragile_no_poison") {
		t.Fatalf("GET parked = %d %+v, want Order-poison1 parked by the check constraint", code, parked)
	}
	id := parked.Parked[0].ID
	retry := fmt.Sprintf("%s/v1/projections/fragile/parked/%d/retry", base, id)

	// Refused: the reader role, ids that are not there, unknown projections.
	var answer struct {
		Error struct{ Code, Message string }
	}
	for _, tt := range []struct {
		method, url, token string
		code               int
		errCode            string
	}{
		{"POST", retry, readerSecret, 403, "forbidden"},
		{"POST", base + "/v1/projections/strict/resume", readerSecret, 403, "forbidden"},
		{"POST", base + "/v1/projections/fragile/rebuild", readerSecret, 403, "forbidden"},
		{"POST", base + "/v1/projections/fragile/parked/999999/retry", adminSecret, 404, "not_found"},
		{"DELETE", base + "/v1/projections/fragile/parked/x", adminSecret, 400, "invalid_request"},
		{"POST", base + "/v1/projections/nope/resume", adminSecret, 404, "not_found"},
		{"GET", base + "/v1/projections/fragile/rebuild", adminSecret, 404, "not_found"},
		{"POST", base + "/v1/projections/fragile/rebuild?restart=maybe", adminSecret, 400, "invalid_request"},
	} {
		answer.Error.Code = ""
		if code := call(t, tt.method, tt.url, tt.token, &answer); code != tt.code || answer.Error.Code != tt.errCode {
			t.Errorf("%s %s = %d %+v, want %d %s", tt.method, tt.url, code, answer, tt.code, tt.errCode)
		}
	}

	// A retry before the fix fails again and leaves the event parked.
	if code := call(t, "POST", retry, adminSecret, &answer); code != 422 || answer.Error.Code != "apply_failed" ||
		!strings.Contains(answer.Error.Message, "fragile_no_poison") {
		t.Errorf("retry before the fix = %d %+v, want 422 apply_failed naming the constraint", code, answer)
	}
	if s := statusOf("fragile"); s.Parked != 1 {
		t.Errorf("after a failed retry %d events are parked, want 1", s.Parked)
	}

	// The fix, then the retry applies it, and the resume goes on.
	for _, name := range []string{"fragile", "strict"} {
		if _, err := e.pool(e.schema).Exec(ctx, fmt.Sprintf("ALTER TABLE %[1]s_orders DROP CONSTRAINT %[1]s_no_poison", name)); err != nil {
			t.Fatal(err)
		}
	}
	var done struct {
		Action string
		Event  struct{ StreamID string }
	}
	if code := call(t, "POST", retry, adminSecret, &done); code != 200 || done.Action != "applied" || done.Event.StreamID != "Order-poison1" {
		t.Errorf("retry after the fix = %d %+v, want 200 applied Order-poison1", code, done)
	}
	if got := rows("fragile_orders"); !strings.Contains(got, "poison1") {
		t.Errorf("fragile_orders after the retry = %s, want poison1 in it", got)
	}
	if s := statusOf("fragile"); s.Parked != 0 {
		t.Errorf("after the retry %d events are parked, want 0", s.Parked)
	}
	if code := call(t, "POST", retry, adminSecret, &answer); code != 404 {
		t.Errorf("a second retry = %d %+v, want 404: it is no longer parked", code, answer)
	}
	var resumed struct {
		Resumed bool
		Halt    struct{ StreamID string }
	}
	if code := call(t, "POST", base+"/v1/projections/strict/resume", adminSecret, &resumed); code != 200 || !resumed.Resumed || resumed.Halt.StreamID != "Order-poison1" {
		t.Errorf("resume = %d %+v, want 200, the halt on Order-poison1 cleared", code, resumed)
	}
	e.waitFor("strict to apply poison1 and fine1", 30*time.Second, func() bool {
		got := rows("strict_orders")
		return strings.Contains(got, "poison1") && strings.Contains(got, "fine1")
	})
	if code := call(t, "POST", base+"/v1/projections/strict/resume", adminSecret, &resumed); code != 200 || resumed.Resumed {
		t.Errorf("a second resume = %d %+v, want 200 and resumed false", code, resumed)
	}

	// Discarding: a new poison event, parked, then discarded for good.
	if _, err := e.pool(e.schema).Exec(ctx, `ALTER TABLE fragile_orders ADD CONSTRAINT fragile_no_poison CHECK (order_id NOT LIKE 'poison2%')`); err != nil {
		t.Fatal(err)
	}
	e.order("poison2", 0, false)
	e.waitFor("fragile to park poison2", 30*time.Second, func() bool { return statusOf("fragile").Parked == 1 })
	call(t, "GET", base+"/v1/projections/fragile/parked", readerSecret, &parked)
	discard := fmt.Sprintf("%s/v1/projections/fragile/parked/%d", base, parked.Parked[0].ID)
	if code := call(t, "DELETE", discard, adminSecret, &done); code != 200 || done.Action != "discarded" || done.Event.StreamID != "Order-poison2" {
		t.Errorf("discard = %d %+v, want 200 discarded Order-poison2", code, done)
	}
	if s := statusOf("fragile"); s.Parked != 0 || strings.Contains(rows("fragile_orders"), "poison2") {
		t.Errorf("after the discard: %d parked, rows %s; want none parked and poison2 not applied", s.Parked, rows("fragile_orders"))
	}

	// Rebuilds started over the API run to their end in the projector.
	// The fresh tables have the constraint again (the setup makes it):
	// strict's rebuild halts on poison1, and the serving tables stay;
	// fragile's parks poison1 and poison2 in its new generation.
	rebuild := func(name string) (run struct {
		Generation int64
		State      string
		Error      string
	}) {
		t.Helper()
		if code := call(t, "POST", base+"/v1/projections/"+name+"/rebuild", adminSecret, &run); code != 202 || run.State != "running" || run.Generation < 2 {
			t.Fatalf("POST %s rebuild = %d %+v, want 202 running a new generation", name, code, run)
		}
		gen := run.Generation
		e.waitFor(name+"'s rebuild to finish", 60*time.Second, func() bool {
			call(t, "GET", base+"/v1/projections/"+name+"/rebuild", readerSecret, &run)
			return run.State != "running"
		})
		if run.Generation != gen {
			t.Errorf("%s's rebuild reports generation %d, want %d", name, run.Generation, gen)
		}
		return run
	}
	var serving struct {
		Generation int64
		Parked     int64
	}
	if run := rebuild("strict"); run.State != "failed" || !strings.Contains(run.Error, "strict_no_poison") {
		t.Errorf("strict's rebuild ended %+v, want failed on the constraint", run)
	}
	call(t, "GET", base+"/v1/projections/strict", readerSecret, &serving)
	if got := rows("strict_orders"); serving.Generation != 1 || got != "fine1 poison1 poison2" {
		t.Errorf("after the failed rebuild generation %d serves %q, want generation 1 with fine1 poison1 poison2", serving.Generation, got)
	}
	run := rebuild("fragile")
	call(t, "GET", base+"/v1/projections/fragile", readerSecret, &serving)
	if run.State != "done" || serving.Generation != run.Generation || serving.Parked != 2 || rows("fragile_orders") != "fine1" {
		t.Errorf("fragile's rebuild ended %+v; generation %d serves %q with %d parked, want it done, serving, fine1 only and 2 parked",
			run, serving.Generation, rows("fragile_orders"), serving.Parked)
	}

	// The command line does the same: projector parked --retry, --discard.
	cli := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := projector.Run(ctx, args, e.getenv("STRATA_PROJECTIONS_DIR="+dir), &out, &errOut, orders.SummaryProjection())
		return out.String(), err
	}
	call(t, "GET", base+"/v1/projections/fragile/parked", readerSecret, &parked)
	if len(parked.Parked) != 2 {
		t.Fatalf("after the rebuild %d events are parked, want 2: %+v", len(parked.Parked), parked)
	}
	// first is poison1's, second poison2's, whichever the rebuild parked first.
	first, second := fmt.Sprint(parked.Parked[0].ID), fmt.Sprint(parked.Parked[1].ID)
	if parked.Parked[0].StreamID != "Order-poison1" {
		first, second = second, first
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"parked", "fragile", "--retry", first}, "fragile_no_poison"},
		{[]string{"parked", "fragile", "--retry", first, "--discard", second}, "one of them at a time"},
		{[]string{"parked", "nope", "--discard", second}, `no projection is named "nope"`},
		{[]string{"parked", "fragile", "--discard", "999999"}, "fragile has no parked event 999999"},
	} {
		if out, err := cli(tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("projector %s = %q, %v; want an error containing %q", strings.Join(tt.args, " "), out, err, tt.want)
		}
	}
	if out, err := cli("parked", "fragile", "--discard", second); err != nil || !strings.Contains(out, "discarded: Order-poison2 version 1") {
		t.Errorf("projector parked --discard = %q, %v", out, err)
	}
	if _, err := e.pool(e.schema).Exec(ctx, "ALTER TABLE fragile_orders DROP CONSTRAINT fragile_no_poison"); err != nil {
		t.Fatal(err)
	}
	if out, err := cli("parked", "fragile", "--retry", first); err != nil || !strings.Contains(out, "applied: Order-poison1 version 1") {
		t.Errorf("projector parked --retry = %q, %v", out, err)
	}
	if got := rows("fragile_orders"); got != "fine1 poison1" {
		t.Errorf("fragile_orders after the command line's retry and discard = %q, want fine1 poison1", got)
	}
	if out, err := cli("parked", "fragile"); err != nil || out != "fragile has no parked events\n" {
		t.Errorf("projector parked fragile = %q, %v; want none left", out, err)
	}
}
