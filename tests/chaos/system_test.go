package chaos

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/writertest"
)

// The system's settings, chosen for fast recovery that still holds on a
// loaded 2-core machine and against a stock Kafka broker.
const (
	storeName   = "chaos"
	topicPrefix = "events."
	topic       = topicPrefix + "Order"
	partitions  = 12
	// sessionTimeout is the projectors' consumer-group session timeout:
	// 6s is the least a stock Kafka broker accepts
	// (group.min.session.timeout.ms), so the same setting works against
	// real Kafka, and it is long enough that a worker starved of CPU for
	// a few seconds on this machine is not taken for dead (heartbeats go
	// every 600ms). A killed worker's partitions are applied again within
	// sessionTimeout + 2s.
	sessionTimeout = 6 * time.Second
	nWriters       = 2
	nProjectors    = 3
)

// projections are the read models the projectors keep, and the checker
// replays.
var projections = []string{"order_summary", "shipped_items"}

// system is Strata running as processes on loopback, with the suite's own
// PostgreSQL and broker, and a proxy between each process and each service.
type system struct {
	t   *testing.T
	dir string // the test's temporary directory: logs, the broker's state

	pg         *pgServer
	db         *pgxpool.Pool // straight to the server, for the nemesis and the checker
	masterKey  string        // the master key file, STRATA_MASTER_KEY_FILE
	net        *network
	pgLinks    map[string]*link // by process name
	kafkaLink  *link
	broker     *proc
	writers    []*proc
	projectors []*proc

	ledger *ledger
	http   *http.Client // for probes and metrics
}

// startSystem builds the binaries and starts everything.
func startSystem(t *testing.T) *system {
	t.Helper()
	ctx := context.Background()
	s := &system{t: t, dir: t.TempDir(), pgLinks: map[string]*link{}, ledger: &ledger{},
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	t.Cleanup(func() {
		if t.Failed() {
			s.logTails(60)
		}
	})
	binDir := filepath.Join(s.dir, "bin")
	os.Mkdir(binDir, 0o755)
	writerBin := buildBinary(t, binDir, "writer", "../../cmd/writer")
	projectorBin := buildBinary(t, binDir, "projector", "../../cmd/projector")
	brokerBin := buildBinary(t, binDir, "broker", "./broker")

	var err error
	s.pg, err = newPGServer(ctx, freePort(t), filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(s.pg.close)
	s.net = newNetwork()
	t.Cleanup(s.net.close)

	brokerPort, advertised := freePort(t), freePort(t)
	if s.kafkaLink, err = s.net.add("kafka", fmt.Sprintf("127.0.0.1:%d", advertised), fmt.Sprintf("127.0.0.1:%d", brokerPort)); err != nil {
		t.Fatal(err)
	}
	s.broker = &proc{name: "broker", bin: brokerBin, logPath: filepath.Join(s.dir, "broker.log"), env: baseEnv(),
		args: []string{"--listen-port", strconv.Itoa(brokerPort), "--advertise-port", strconv.Itoa(advertised),
			"--data-dir", filepath.Join(s.dir, "kafka"), "--partitions", strconv.Itoa(partitions),
			"--min-session-timeout", sessionTimeout.String()},
		ready: func(line string) error {
			if !strings.HasPrefix(line, "broker listening") {
				return fmt.Errorf("printed %q", line)
			}
			return nil
		}}
	t.Cleanup(s.broker.close)
	if err := s.broker.start(); err != nil {
		t.Fatal(err)
	}

	logLevel := os.Getenv("CHAOS_LOG_LEVEL")
	if logLevel == "" {
		logLevel = "info"
	}
	s.masterKey = writertest.MasterKeyFile(t)
	shared := append(baseEnv(), "STRATA_MASTER_KEY_FILE="+s.masterKey,
		"STRATA_KAFKA_BROKERS="+s.kafkaLink.addr(),
		"STRATA_TOPIC_PREFIX="+topicPrefix,
		"STRATA_TOPIC_PARTITIONS="+strconv.Itoa(partitions),
		"STRATA_STORE_NAME="+storeName,
		"STRATA_SCHEMAS_DIR=../../schemas",
		"STRATA_PROJECTIONS_DIR=../../projections",
		"STRATA_LOG_LEVEL="+logLevel,
	)
	shared = slices.Clip(shared) // each process appends its own settings to a copy
	// The store is set up straight through, not through a proxy.
	for _, args := range [][]string{{"migrate"}, {"schemas", "apply"}} {
		cmd := exec.Command(writerBin, args...)
		cmd.Env = append(shared, "STRATA_DATABASE_URL="+s.pg.URL())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("writer %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if s.db, err = pgxpool.New(ctx, s.pg.URL()+"&pool_max_conns=4&connect_timeout=2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.db.Close)

	// dbURL gives a process its own link to PostgreSQL.
	dbURL := func(name string) string {
		l, err := s.net.add("pg-"+name, fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", s.pg.port))
		if err != nil {
			t.Fatal(err)
		}
		s.pgLinks[name] = l
		return fmt.Sprintf("postgres://strata@%s/strata?sslmode=disable", l.addr())
	}
	for i := range nWriters {
		name := fmt.Sprintf("writer-%d", i+1)
		w := &proc{name: name, bin: writerBin, args: []string{"serve"},
			logPath: filepath.Join(s.dir, name+".log"),
			env:     append(shared, "STRATA_DATABASE_URL="+dbURL(name), "STRATA_HTTP_ADDR=127.0.0.1:0")}
		w.ready = s.readyz(w, "writer listening on ")
		t.Cleanup(w.close)
		s.writers = append(s.writers, w)
	}
	for i := range nProjectors {
		name := fmt.Sprintf("projector-%d", i+1)
		p := &proc{name: name, bin: projectorBin,
			args:    []string{"run", "--session-timeout", sessionTimeout.String()},
			logPath: filepath.Join(s.dir, name+".log"),
			env:     append(shared, "STRATA_DATABASE_URL="+dbURL(name), "STRATA_HTTP_ADDR=127.0.0.1:0")}
		p.ready = s.readyz(p, "projector running ")
		t.Cleanup(p.close)
		s.projectors = append(s.projectors, p)
	}
	t.Cleanup(s.keepEvidence) // before the database and the processes go
	for _, w := range s.writers {
		if err := w.start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range s.projectors {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// baseEnv is the test's environment without any STRATA_ setting of its
// own, which would change what the processes do.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			env = append(env, kv)
		}
	}
	return env
}

// readyz returns a readiness check for p, which listens on a port of its
// choosing (each incarnation its own: no port is reserved and then lost to
// another socket): its first line starts with prefix and names its
// address, http://..., and that address's /readyz answers 200.
func (s *system) readyz(p *proc, prefix string) func(string) error {
	return func(line string) error {
		_, rest, ok := strings.Cut(line, "http://")
		if !strings.HasPrefix(line, prefix) || !ok || rest == "" {
			return fmt.Errorf("printed %q, want %q... http://...", line, prefix)
		}
		url := "http://" + strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ';' })[0]
		p.setURL(url)
		return poll(startTimeout, 50*time.Millisecond, func() error {
			resp, err := s.http.Get(url + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s/readyz answers %s", url, resp.Status)
			}
			return nil
		})
	}
}

// procs lists every process.
func (s *system) procs() []*proc {
	ps := []*proc{s.broker}
	ps = append(ps, s.writers...)
	return append(ps, s.projectors...)
}

// writerURLs lists the writers' API addresses, as a load balancer would.
func (s *system) writerURLs() []string {
	var urls []string
	for _, w := range s.writers {
		urls = append(urls, w.url())
	}
	return urls
}

// relayState is what a writer's metrics say of its relay.
type relayState struct {
	active      bool
	events      float64 // strata_relay_events_total: events in committed Kafka transactions
	incarnation int
}

// relay reads writer w's relay metrics.
func (s *system) relay(w *proc) (relayState, error) {
	st := relayState{incarnation: w.incarnation()}
	resp, err := s.http.Get(w.url() + "/metrics")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "strata_relay_active":
			st.active = value == "1"
			found++
		case "strata_relay_events_total":
			st.events, _ = strconv.ParseFloat(value, 64)
			found++
		}
	}
	if found < 2 {
		return st, fmt.Errorf("%s/metrics lacks the relay's metrics", w.url())
	}
	return st, sc.Err()
}

// publishedSince waits until the relay of one of ws has committed a Kafka
// transaction after base was read, and returns when it saw that.
func (s *system) publishedSince(ws []*proc, base map[*proc]relayState, within time.Duration) (time.Time, error) {
	var at time.Time
	err := poll(within, 25*time.Millisecond, func() error {
		for _, w := range ws {
			st, err := s.relay(w)
			if err != nil {
				continue
			}
			b, ok := base[w]
			if !ok || b.incarnation != st.incarnation {
				b = relayState{} // started since: its counter began at 0
			}
			if st.events > b.events {
				at = time.Now()
				return nil
			}
		}
		return errNotYet
	})
	return at, err
}

// relayBase reads the relay counters of ws; one that does not answer
// counts from 0.
func (s *system) relayBase(ws []*proc) map[*proc]relayState {
	base := map[*proc]relayState{}
	for _, w := range ws {
		if st, err := s.relay(w); err == nil {
			base[w] = st
		}
	}
	return base
}

var probeSeq struct {
	sync.Mutex
	n int
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// appendsAnswer probes each of ws with a new append every 100ms (each
// with a 2s deadline, several in flight) until every one of them has
// acknowledged a probe that was sent at or after from; it returns the
// time by which they all had.
func (s *system) appendsAnswer(ws []*proc, from time.Time, within time.Duration) (time.Time, error) {
	type result struct {
		w  *proc
		at time.Time
	}
	results := make(chan result, 1024)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait() // after close(done): the probes in flight end within their deadline
	defer close(done)
	pending := map[*proc]bool{}
	for _, w := range ws {
		pending[w] = true
	}
	deadline := time.After(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last time.Time
	send := func() {
		for w := range pending {
			probeSeq.Lock()
			probeSeq.n++
			id := fmt.Sprintf("probe-%s-%06d", w.name, probeSeq.n)
			probeSeq.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				if s.ledger.probe(s.http, w.url(), id, newUUID(), 2*time.Second) && !start.Before(from) {
					select {
					case results <- result{w, time.Now()}:
					case <-done:
					}
				}
			}()
		}
	}
	send()
	for len(pending) > 0 {
		select {
		case r := <-results:
			if pending[r.w] {
				delete(pending, r.w)
				if r.at.After(last) {
					last = r.at
				}
			}
		case <-tick.C:
			send()
		case <-deadline:
			var names []string
			for w := range pending {
				names = append(names, w.name)
			}
			return last, fmt.Errorf("no acknowledged append through %s within %s", strings.Join(names, ", "), within)
		}
	}
	return last, nil
}

// offsets reads every projection's stored next offsets, per partition.
func (s *system) offsets(ctx context.Context) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rows, err := s.db.Query(ctx, `SELECT o.projection, o.topic, o.partition, o.next_offset
		FROM readmodel.projection_offsets o JOIN readmodel.projections p ON p.name = o.projection AND p.generation = o.generation`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var proj, topic string
		var part int32
		var next int64
		if err := rows.Scan(&proj, &topic, &part, &next); err != nil {
			return nil, err
		}
		out[fmt.Sprintf("%s/%s/%d", proj, topic, part)] = next
	}
	return out, rows.Err()
}

// partitionsApplied waits until every partition of every projection has
// been applied beyond base (all of them get records all the time under the
// load), and returns when it saw that.
func (s *system) partitionsApplied(base map[string]int64, within time.Duration) (time.Time, error) {
	var at time.Time
	err := poll(within, 50*time.Millisecond, func() error {
		now, err := s.offsets(context.Background())
		if err != nil {
			return err
		}
		var behind []string
		for _, proj := range projections {
			for p := range partitions {
				k := fmt.Sprintf("%s/%s/%d", proj, topic, p)
				if n, ok := now[k]; !ok || n <= base[k] {
					behind = append(behind, k)
				}
			}
		}
		if len(behind) > 0 {
			return fmt.Errorf("not applied further: %s", strings.Join(behind, ", "))
		}
		at = time.Now()
		return nil
	})
	return at, err
}

// offsetsNow reads the offsets, retrying while the database restarts.
func (s *system) offsetsNow() map[string]int64 {
	var o map[string]int64
	poll(30*time.Second, 50*time.Millisecond, func() (err error) {
		o, err = s.offsets(context.Background())
		return err
	})
	return o
}

// healthy waits until the whole system works: every writer acknowledges
// appends, a relay publishes, and every partition of every projection is
// applied further.
func (s *system) healthy(within time.Duration) error {
	start := time.Now()
	base := s.relayBase(s.writers)
	offsets := s.offsetsNow()
	if _, err := s.appendsAnswer(s.writers, start, within); err != nil {
		return err
	}
	left := within - time.Since(start)
	if _, err := s.publishedSince(s.writers, base, left); err != nil {
		return fmt.Errorf("no relay published within %s: %v", within, err)
	}
	left = within - time.Since(start)
	if _, err := s.partitionsApplied(offsets, left); err != nil {
		return fmt.Errorf("the projections were not applied further within %s: %v", within, err)
	}
	return nil
}

// heal undoes every fault: toxics removed, proxies up, stopped processes
// continued and dead ones started again. It returns what it found dead.
func (s *system) heal() []string {
	var found []string
	for _, l := range s.allLinks() {
		l.clear()
		if err := l.up(); err != nil {
			s.t.Errorf("heal: %v", err)
		}
	}
	for _, p := range s.procs() {
		p.resume()
		if !p.running() {
			found = append(found, p.name)
			if err := p.start(); err != nil {
				s.t.Errorf("heal: start %s again: %v", p.name, err)
			}
		}
	}
	return found
}

func (s *system) allLinks() []*link {
	ls := []*link{s.kafkaLink}
	for _, w := range s.writers {
		ls = append(ls, s.pgLinks[w.name])
	}
	for _, p := range s.projectors {
		ls = append(ls, s.pgLinks[p.name])
	}
	return ls
}

// logTails prints the end of every log.
func (s *system) logTails(n int) {
	for _, p := range s.procs() {
		if p == nil {
			continue
		}
		s.t.Logf("--- the last %d lines of %s (%s):\n%s", n, p.name, p.logPath, tail(p.logPath, n))
	}
	pgLog := filepath.Join(s.dir, "postgres.log")
	s.t.Logf("--- the last %d lines of postgres (%s):\n%s", n, pgLog, tail(pgLog, n))
}

// keepEvidence, when the test failed, copies the logs and the broker's
// state out of the test's directory (which is removed), with the store's
// events as CSV, and says where.
func (s *system) keepEvidence() {
	if !s.t.Failed() {
		return
	}
	dir, err := os.MkdirTemp("", "strata-chaos-failed-")
	if err != nil {
		s.t.Logf("keep the evidence: %v", err)
		return
	}
	if out, err := exec.Command("cp", "-a", s.dir+"/.", dir).CombinedOutput(); err != nil {
		s.t.Logf("keep the evidence: cp: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(dir, "bin"))
	f, err := os.Create(filepath.Join(dir, "events.csv"))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, cerr := s.db.Acquire(ctx)
		if cerr == nil {
			_, err = conn.Conn().PgConn().CopyTo(ctx, f, `COPY (SELECT position, tx_id, event_id, stream_id, version, type, recorded_at
				FROM strata.events ORDER BY position) TO STDOUT WITH CSV HEADER`)
			conn.Release()
		} else {
			err = cerr
		}
		f.Close()
	}
	if err != nil {
		s.t.Logf("keep the evidence: the store's events: %v", err)
	}
	s.t.Logf("the logs, the broker's state and the store's events are kept in %s", dir)
}
