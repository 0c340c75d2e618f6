package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/internal/runner"
)

func TestARebuildWhileWritesContinueSwapsInAnExactReadModel(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	e.appendOrders("h", 150)
	ledgerRunner := e.runner(ledger("ledger", nil), runner.Options{})
	summaryRunner := e.runner(orders.SummaryProjection(), runner.Options{})
	e.run(ledgerRunner.Run)
	e.run(summaryRunner.Run)
	e.waitForLedger(e.schema, 30*time.Second)

	// What readers see of each read model, as one number that only grows
	// while the serving generation only moves on.
	const (
		ledgerSize  = "SELECT count(*) FROM ledger"
		summarySize = "SELECT coalesce(sum(item_count), 0) + count(*) FROM order_summary"
	)
	stopLoad := e.load("w")
	watchLedger, watchSummary := e.watch(ledgerSize), e.watch(summarySize)
	var wg sync.WaitGroup
	rebuild := func(r *runner.Runner, size string) *rebuildRun {
		run := &rebuildRun{}
		read := func() int64 {
			var n int64
			if err := e.db.QueryRow(ctx, size).Scan(&n); err != nil {
				run.readErrs = append(run.readErrs, err)
			}
			return n
		}
		wg.Go(func() {
			run.gen, run.err = r.Rebuild(ctx, runner.RebuildOptions{Open: e.openPool, Progress: func(done, total int64) {
				run.progress = append(run.progress, [2]int64{done, total})
				run.servedBefore = read() // between the replay's batches
			}})
			run.servedAfter = read()
		})
		return run
	}
	ledgerRebuild, summaryRebuild := rebuild(ledgerRunner, ledgerSize), rebuild(summaryRunner, summarySize)
	wg.Wait()
	if appended := stopLoad(); appended == 0 {
		t.Errorf("no order was appended while the projections were rebuilt")
	}

	for name, run := range map[string]*rebuildRun{"ledger": ledgerRebuild, "order_summary": summaryRebuild} {
		if run.err != nil || run.gen != 2 {
			t.Errorf("Rebuild(%s) = %d, %v; want generation 2", name, run.gen, run.err)
		}
		run.checkProgress(t, name)
		if len(run.readErrs) > 0 {
			t.Errorf("reading %s during its rebuild failed: %v", name, run.readErrs)
		}
		if run.servedAfter < run.servedBefore {
			t.Errorf("%s went back from %d when the replay was done to %d when the rebuild was swapped in",
				name, run.servedBefore, run.servedAfter)
		}
	}
	for name, watch := range map[string]func() (int, []string){"ledger": watchLedger, "order_summary": watchSummary} {
		reads, problems := watch()
		if reads == 0 || len(problems) > 0 {
			t.Errorf("a reader of %s during the rebuild: %d reads, problems: %v", name, reads, problems)
		}
	}

	e.waitForLedger(e.schema, 30*time.Second)
	want := e.summaryRows(e.summaryFromStore())
	e.waitFor("order_summary to match the store", 30*time.Second, func() bool {
		return cmp.Equal(want, e.summaryRows(e.schema))
	})
	for _, name := range []string{"ledger", "order_summary"} {
		if st := e.state(name); st.State != runner.StateRunning || st.Generation != 2 || st.Rebuild != nil {
			t.Errorf("status of %s = %s generation %d rebuild %+v; want running generation 2 without a rebuild",
				name, st.State, st.Generation, st.Rebuild)
		}
	}
}

// rebuildRun is what one Rebuild returned and reported.
type rebuildRun struct {
	gen      int64
	err      error
	progress [][2]int64 // done, total
	// What readers saw of the serving read model at the last progress
	// report and once Rebuild returned, and the errors of those reads.
	servedBefore, servedAfter int64
	readErrs                  []error
}

// checkProgress checks that progress only moved forward, of a constant
// total, up to done == total.
func (run *rebuildRun) checkProgress(t *testing.T, name string) {
	t.Helper()
	p := run.progress
	if len(p) == 0 {
		t.Errorf("Rebuild(%s) reported no progress", name)
		return
	}
	for i := 1; i < len(p); i++ {
		if p[i][0] < p[i-1][0] || p[i][1] != p[0][1] {
			t.Errorf("Rebuild(%s) progress went from %v to %v; want done never to fall and total to stay", name, p[i-1], p[i])
		}
	}
	if last := p[len(p)-1]; last[0] != last[1] || last[1] == 0 {
		t.Errorf("Rebuild(%s) last progress = %d of %d, want all of a non-zero total", name, last[0], last[1])
	}
}

func TestASecondRebuildOfAProjectionFailsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	e.appendOrders("h", 20)
	r := e.runner(ledger("ledger", nil), runner.Options{})
	e.run(r.Run)
	e.waitForLedger(e.schema, 30*time.Second)

	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	first := make(chan error, 1)
	go func() {
		_, err := r.Rebuild(ctx, runner.RebuildOptions{Open: e.openPool, Progress: func(done, total int64) {
			once.Do(func() { close(started); <-release })
		}})
		first <- err
	}()
	<-started // the first holds the rebuild, and waits
	other := e.runner(ledger("ledger", nil), runner.Options{})
	second, err := other.Rebuild(ctx, runner.RebuildOptions{Open: e.openPool})
	if !errors.Is(err, runner.ErrRebuildRunning) || !strings.Contains(err.Error(), "ledger is being rebuilt") {
		t.Errorf("a second Rebuild while the first runs = %d, %v; want the error that one is already running", second, err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the first Rebuild = %v, want nil", err)
	}
	if st := e.state("ledger"); st.Generation != 2 || st.State != runner.StateRunning {
		t.Errorf("status = %s generation %d, want running generation 2: the second rebuild changed nothing", st.State, st.Generation)
	}
	e.waitForLedger(e.schema, 30*time.Second)
}

func TestAnInterruptedRebuild(t *testing.T) {
	for _, tt := range []struct {
		name    string
		restart bool
		wantGen int64
	}{
		{"resumes where it stopped", false, 2},
		{"starts over with the next generation when restarted", true, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.startRelay()
			e.appendOrders("h", 300)
			r := e.runner(ledger("ledger", nil), runner.Options{})
			e.run(r.Run)
			e.waitForLedger(e.schema, 30*time.Second)
			served := e.ledgerRows(e.schema)

			// Interrupt the replay once it has applied some records.
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var doneAtCancel, total int64
			_, err := r.Rebuild(rctx, runner.RebuildOptions{Open: e.openPool, Progress: func(done, all int64) {
				total = all
				if done > 0 && done < all && doneAtCancel == 0 {
					doneAtCancel = done
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) || doneAtCancel == 0 {
				t.Fatalf("Rebuild, cancelled after %d of %d records = %v; want context.Canceled mid-replay", doneAtCancel, total, err)
			}
			st := e.state("ledger")
			if st.Generation != 1 || st.State != runner.StateRunning || st.Rebuild == nil || st.Rebuild.Generation != 2 {
				t.Fatalf("status after the interruption = %s generation %d rebuild %+v; want generation 1 running, generation 2 being built",
					st.State, st.Generation, st.Rebuild)
			}
			if m, x := diff(served, e.ledgerRows(e.schema)); len(m)+len(x) > 0 {
				t.Fatalf("the interrupted rebuild changed the serving ledger: %d rows missing, %d extra", len(m), len(x))
			}

			var progress [][2]int64
			gen, err := r.Rebuild(ctx, runner.RebuildOptions{Open: e.openPool, Restart: tt.restart, Progress: func(done, total int64) {
				progress = append(progress, [2]int64{done, total})
			}})
			if err != nil || gen != tt.wantGen {
				t.Fatalf("Rebuild(Restart: %t) = %d, %v; want %d, nil", tt.restart, gen, err, tt.wantGen)
			}
			wantTotal := total // all again
			if !tt.restart {
				wantTotal = total - doneAtCancel // only what the interrupted one left
			}
			if progress[0] != [2]int64{0, wantTotal} {
				t.Errorf("first progress = %v, want [0 %d] (%d records, %d applied before the interruption)",
					progress[0], wantTotal, total, doneAtCancel)
			}
			(&rebuildRun{progress: progress}).checkProgress(t, "ledger")
			// Nothing was appended since: the swapped-in ledger is the
			// store, each event once (its key refuses a second).
			want, got := e.storedRows(), e.ledgerRows(e.schema)
			if m, x := diff(want, got); len(m)+len(x) > 0 {
				t.Errorf("the rebuilt ledger: %d events missing (e.g. %v), %d extra (e.g. %v)", len(m), first(m), len(x), first(x))
			}
			if st := e.state("ledger"); st.Generation != tt.wantGen || st.State != runner.StateRunning || st.Rebuild != nil {
				t.Errorf("status = %s generation %d rebuild %+v; want running generation %d, no rebuild",
					st.State, st.Generation, st.Rebuild, tt.wantGen)
			}
			// The workers go on with the new generation.
			e.order("after", 2, true)
			e.waitForLedger(e.schema, 30*time.Second)
		})
	}
}

// appendOrders appends n orders named prefix0, prefix1, ..., from four goroutines.
func (e *env) appendOrders(prefix string, n int) {
	e.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if _, err := e.appendOrder(fmt.Sprint(prefix, i), i%4, i%2 == 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
}

// load appends orders named prefix0, prefix1, ... from a goroutine until
// stop, which returns how many it appended, and fails the test if an
// append failed.
func (e *env) load(prefix string) (stop func() int) {
	quit := make(chan struct{})
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		for ; ; n++ {
			select {
			case <-quit:
				return
			default:
			}
			if _, err = e.appendOrder(fmt.Sprint(prefix, n), n%3, n%2 == 0); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	stop = func() int {
		e.t.Helper()
		once.Do(func() { close(quit); <-done })
		if err != nil {
			e.t.Fatalf("the load stopped after %d orders: %v", n, err)
		}
		return n
	}
	e.t.Cleanup(func() { once.Do(func() { close(quit); <-done }) })
	return stop
}

// watch runs query, which returns one number that must never fall, over
// and over on the read-model schema until stop, which returns how many
// reads it made and what went wrong: errors, and falls.
func (e *env) watch(query string) (stop func() (reads int, problems []string)) {
	quit := make(chan struct{})
	done := make(chan struct{})
	var reads int
	var problems []string
	go func() {
		defer close(done)
		last := int64(-1)
		for {
			select {
			case <-quit:
				return
			default:
			}
			var n int64
			if err := e.db.QueryRow(ctx, query).Scan(&n); err != nil {
				problems = append(problems, err.Error())
			} else {
				if n < last {
					problems = append(problems, fmt.Sprintf("%q fell from %d to %d", query, last, n))
				}
				last = n
			}
			reads++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() (int, []string) {
		once.Do(func() { close(quit); <-done })
		return reads, problems
	}
	e.t.Cleanup(func() { stop() })
	return stop
}

func TestARebuildOfTopicsWithEmptyPartitionsEnds(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	e.order("only", 2, true) // one stream: one of the four partitions holds records
	r := e.runner(ledger("ledger", nil), runner.Options{})
	e.run(r.Run)
	e.waitForLedger(e.schema, 30*time.Second)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	gen, err := r.Rebuild(rctx, runner.RebuildOptions{Open: e.openPool})
	if err != nil || gen != 2 {
		t.Fatalf("Rebuild = %d, %v; want generation 2", gen, err)
	}
	e.waitForLedger(e.schema, 30*time.Second)
}
