// Command demo runs Strata on embedded defaults and walks through what it
// does, for someone meeting event sourcing and Strata for the first time.
// It is what `make demo` runs (after building bin/writer and
// bin/projector): it starts PostgreSQL from the machine's binaries and the
// embedded Kafka-protocol broker, runs the writer and two projector
// workers, and drives them over HTTP, saying what happens at each step.
// Then it keeps everything running until Ctrl-C, and stops the processes in
// order.
//
// Each run starts from nothing: .data/ (PostgreSQL's cluster, the broker's
// state, the processes' logs) is emptied first, so a run that was killed
// leaves nothing in the way of the next.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/personal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, os.Stderr); err != nil {
		os.Exit(1)
	}
}

// Where things are and how the demo runs them.
const (
	dataDir    = ".data"
	partitions = 4 // of each category's topic: two workers get two each
	stopGrace  = 20 * time.Second
)

// demo is the running system: PostgreSQL, the broker, the writer and the
// projectors, and what it takes to talk to them.
type demo struct {
	out      io.Writer
	settings []string // STRATA_* settings that every process shares
	brokers  []string
	dbURL    string

	writer     *api
	projectors []*api // their read APIs
	// projectorAddrs are where the projectors will listen: the first is
	// known to the writer, which passes the console's projection pages on
	// to it.
	projectorAddrs []string

	stoppers []func() // undo what was started, in reverse order
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

// run runs the demo until ctx ends (Ctrl-C) and returns nil then; it
// reports a failure to stderr, with the end of the log of the process at
// fault, and returns it.
func run(parent context.Context, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	d := &demo{out: stdout}
	defer d.stop()
	err := d.run(ctx, cancel)
	if parent.Err() != nil {
		d.say("\n\nInterrupted: stopping Strata. Each process gets SIGTERM and finishes what it is doing.")
		return nil
	}
	if ctx.Err() != nil {
		err = context.Cause(ctx) // a process exited
	}
	if err == nil {
		return nil
	}
	report(stderr, err)
	if len(d.stoppers) > 0 {
		d.say("\nStopping what was started.")
	}
	return err
}

// report tells what failed, and shows the end of the logs of the
// processes at fault.
func report(w io.Writer, err error) {
	fmt.Fprintf(w, "\ndemo failed: %v\n", err)
	var f *failure
	if errors.As(err, &f) {
		for _, p := range f.procs {
			fmt.Fprintf(w, "\nThe end of %s's log (%s):\n%s\n", p.name, p.logPath, indent(p.tail(25)))
		}
	}
}

// stop stops what was started, the last first.
func (d *demo) stop() {
	for i := len(d.stoppers) - 1; i >= 0; i-- {
		d.stoppers[i]()
	}
	if len(d.stoppers) > 0 {
		d.say("Stopped. The next run starts from an empty store again; `make clean` removes %s/.", dataDir)
	}
	d.stoppers = nil
}

func (d *demo) onStop(f func()) { d.stoppers = append(d.stoppers, f) }

func (d *demo) run(ctx context.Context, cancel context.CancelCauseFunc) error {
	for _, f := range []string{"bin/writer", "bin/projector"} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s is missing: run `make demo` from the repository's root; it builds bin/writer and bin/projector first", f)
		}
	}
	for _, dir := range []string{"schemas", "projections"} {
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("%s/ is not here: run `make demo` from the repository's root", dir)
		}
	}
	d.say("Strata demo: an event store on PostgreSQL, its events published to Kafka, and read models")
	d.say("built from them by projector workers. Everything runs on this machine; state and logs go to")
	d.say("%s/, emptied at each start.\n", dataDir)
	if err := d.startInfrastructure(ctx); err != nil {
		return err
	}
	if err := d.startWriter(ctx, cancel); err != nil {
		return err
	}
	if err := d.startProjectors(ctx, cancel); err != nil {
		return err
	}
	w := &walkthrough{demo: d}
	if err := w.run(ctx); err != nil {
		return err
	}
	d.lookAround()
	<-ctx.Done()
	return nil
}

// startInfrastructure empties .data/ and starts PostgreSQL and the
// broker.
func (d *demo) startInfrastructure(ctx context.Context) error {
	data, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	for _, sub := range []string{"postgres", "kafka", "logs", "schemas-v1"} {
		if err := os.RemoveAll(filepath.Join(data, sub)); err != nil {
			return fmt.Errorf("empty %s: %w", filepath.Join(dataDir, sub), err)
		}
	}
	if err := os.MkdirAll(filepath.Join(data, "logs"), 0o755); err != nil {
		return err
	}

	d.say("Starting PostgreSQL from this machine's binaries (a new cluster in %s/postgres) ...", dataDir)
	pg, err := harness.StartPostgres(ctx, harness.PostgresOptions{Dir: filepath.Join(data, "postgres")})
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	d.onStop(func() {
		pg.Stop()
		d.say("   PostgreSQL stopped")
	})
	d.dbURL = pg.URL
	d.say("   listening on 127.0.0.1:%d", pg.Port())

	d.say("Starting the embedded Kafka-protocol broker (state in %s/kafka) ...", dataDir)
	port := 9092
	if preferAddr("127.0.0.1:9092") != "127.0.0.1:9092" {
		port = 0 // taken: any free port
	}
	broker, err := harness.StartKafka(harness.KafkaOptions{Port: port, Dir: filepath.Join(data, "kafka")})
	if err != nil {
		return err
	}
	d.onStop(func() {
		broker.Stop()
		d.say("   the Kafka broker stopped")
	})
	d.brokers = broker.Brokers()
	d.say("   listening on %s", d.brokers[0])

	// The demo's own master key, made afresh as its store is.
	keyFile := filepath.Join(data, "master.key")
	if err := os.Remove(keyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := personal.WriteMasterKeyFile(keyFile); err != nil {
		return fmt.Errorf("make the demo's master key: %w", err)
	}
	d.settings = []string{
		"STRATA_DATABASE_URL=" + d.dbURL,
		"STRATA_MASTER_KEY_FILE=" + keyFile,
		"STRATA_KAFKA_BROKERS=" + strings.Join(d.brokers, ","),
		"STRATA_TOPIC_PREFIX=events.",
		fmt.Sprintf("STRATA_TOPIC_PARTITIONS=%d", partitions),
		"STRATA_PROJECTIONS_DIR=projections",
	}
	return nil
}

// env returns the environment of a Strata process: this one's, without
// any STRATA_* setting of the user's, then the shared settings, then
// extra.
func (d *demo) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			env = append(env, kv)
		}
	}
	env = append(env, d.settings...)
	env = append(env, "STRATA_LOG_LEVEL=info")
	return append(env, extra...)
}

// command runs a short Strata command and returns its output.
func (d *demo) command(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = d.env("STRATA_LOG_LEVEL=warn")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, indent(strings.TrimSpace(string(out))))
	}
	return strings.TrimRight(string(out), "\n"), nil
}

func (d *demo) startWriter(ctx context.Context, cancel context.CancelCauseFunc) error {
	d.say("\nThe writer keeps the events: it appends them to PostgreSQL, serves them over HTTP with a")
	d.say("schema registry, and publishes them to Kafka.")
	d.say("\n$ bin/writer migrate")
	out, err := d.command(ctx, "bin/writer", "migrate")
	if err != nil {
		return err
	}
	d.say("%s", indent(out))

	v1 := filepath.Join(dataDir, "schemas-v1")
	if err := copySchemas(v1, ".v2.avsc"); err != nil {
		return err
	}
	d.say("\n$ bin/writer schemas apply --schemas-dir %s     (schemas/ without the version 2 files, for now)", v1)
	if out, err = d.command(ctx, "bin/writer", "schemas", "apply", "--schemas-dir", v1); err != nil {
		return err
	}
	d.say("%s", indent(out))

	d.say("\n$ bin/writer serve     (the HTTP API, the registry at /registry, and the relay to Kafka)")
	addr := preferAddr("127.0.0.1:8080")
	d.projectorAddrs = []string{freeAddr("127.0.0.1:8081"), preferAddr("127.0.0.1:8083")}
	p, line, err := startProcess("the writer", filepath.Join(dataDir, "logs", "writer.log"), "bin/writer",
		[]string{"serve", "--projector-url", "http://" + d.projectorAddrs[0]}, d.env("STRATA_HTTP_ADDR="+addr))
	if err != nil {
		return err
	}
	d.onStop(func() { d.say("   %s", p.stop(stopGrace)) })
	p.watch(cancel)
	base := strings.TrimSpace(strings.TrimPrefix(line, "writer listening on "))
	if err := waitReady(ctx, p, base); err != nil {
		return err
	}
	d.writer = newAPI(p, base)
	d.say("   %s — ready", line)
	d.say("   %s", openConsole(base+"/console/"))
	return nil
}

func (d *demo) startProjectors(ctx context.Context, cancel context.CancelCauseFunc) error {
	d.say("\n$ bin/projector run     (twice: two workers that share the work, each serving the read API)")
	var procs []*process
	d.onStop(func() {
		// Both at once: each leaves its groups as it stops.
		done := make([]chan string, len(procs))
		for i, p := range procs {
			done[i] = make(chan string, 1)
			go func() { done[i] <- p.stop(stopGrace) }()
		}
		for _, c := range done {
			d.say("   %s", <-c)
		}
	})
	for i, addr := range d.projectorAddrs {
		name := fmt.Sprintf("projector %d", i+1)
		p, line, err := startProcess(name, filepath.Join(dataDir, "logs", fmt.Sprintf("projector-%d.log", i+1)),
			"bin/projector", []string{"run"}, d.env("STRATA_HTTP_ADDR="+addr))
		if err != nil {
			return err
		}
		procs = append(procs, p)
		p.watch(cancel)
		_, base, ok := strings.Cut(line, "read API on ")
		if !ok {
			return blame(fmt.Errorf("%s said %q, not where its read API listens", name, line), p)
		}
		d.projectors = append(d.projectors, newAPI(p, base))
		d.say("   %s: %s", name, line)
	}
	for _, p := range d.projectors {
		if err := waitReady(ctx, p.proc, p.base); err != nil {
			return err
		}
	}
	split, err := groupSplit(ctx, d.brokers, []string{"order_summary", "shipped_items"}, procs)
	if err != nil {
		return err
	}
	d.say("   Both are ready. Each projection is a Kafka consumer group, and the two workers have split")
	d.say("   the %d partitions of events.Order between them:", partitions)
	for _, s := range split {
		d.say("      %-14s %s", s.projection, strings.Join(s.members, " and "))
	}
	return nil
}

// lookAround prints where to look while the demo keeps running.
func (d *demo) lookAround() {
	w, p1, p2 := d.writer.base, d.projectors[0].base, d.projectors[1].base
	d.say("\nStrata keeps running. Look around:")
	d.say("\n   The console           %s/console/   (in a browser; the order: %s/console/streams/Order-%s)", w, w, orderID)
	d.say("   The writer's API      curl %s/v1/streams/Order-%s/events", w, orderID)
	d.say("                         curl '%s/v1/events?limit=5'", w)
	d.say("                         curl %s/v1/categories/Order/events", w)
	d.say("   The schema registry   curl %s/registry/subjects", w)
	d.say("                         curl %s/registry/subjects/example.orders.OrderItemAdded/versions/latest", w)
	d.say("   The read API          curl %s/v1/orders/%s", p1, orderID)
	d.say("                         curl '%s/v1/orders?customerId=user123'", p1)
	d.say("                         curl '%s/v1/orders?status=shipped&limit=5'", p2)
	d.say("                         curl '%s/v1/shipped-items?q=anytown'", p2)
	d.say("                         curl %s/v1/projections", p1)
	d.say("   Metrics               curl %s/metrics      (the writer and its relay)", w)
	d.say("                         curl %s/metrics      (projector 1)", p1)
	d.say("                         curl %s/metrics      (projector 2)", p2)
	d.say("   Health, readiness     curl %s/healthz; curl %s/readyz      (the same on each process)", p1, p1)
	d.say("   The projections       %s", shellCommand(d.settings, "bin/projector status", "                         "))
	d.say("   Kafka                 kcat -b %s -C -t events.Order -X isolation.level=read_committed -e -f '%%k  partition %%p offset %%o  %%h\\n'", d.brokers[0])
	d.say("   Logs                  %s/logs/writer.log, projector-1.log, projector-2.log; %s/postgres/postgres.log", dataDir, dataDir)
	d.say("\nPress Ctrl-C to stop.")
}

// openConsole opens the console in the desktop's browser, when there is a
// desktop, and says where it is either way: the demo's events show there
// as they are appended.
func openConsole(url string) string {
	opener := ""
	switch {
	case os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "":
		opener = "xdg-open"
	case runtime.GOOS == "darwin":
		opener = "open"
	}
	if path, err := exec.LookPath(opener); opener != "" && err == nil {
		if cmd := exec.Command(path, url); cmd.Start() == nil {
			go cmd.Wait()
			return "The console, opened in your browser: " + url + " (the events below appear there as they are appended)"
		}
	}
	return "The console: open " + url + " in a browser to watch the events below appear"
}

// shellCommand formats a shell command line with settings as its
// environment, one setting to a line, the lines after the first indented
// by pad.
func shellCommand(settings []string, command, pad string) string {
	var b strings.Builder
	for _, kv := range settings {
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(v, "?&") {
			v = "'" + v + "'"
		}
		fmt.Fprintf(&b, "%s=%s \\\n%s  ", k, v, pad)
	}
	return b.String() + command
}

// copySchemas copies schemas/ to dir, leaving out the files whose names
// end in suffix.
func copySchemas(dir, suffix string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := filepath.Glob("schemas/*.avsc")
	if err != nil {
		return err
	}
	for _, f := range files {
		if strings.HasSuffix(f, suffix) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// indent indents every line of s by three spaces.
func indent(s string) string { return "   " + strings.ReplaceAll(s, "\n", "\n   ") }
