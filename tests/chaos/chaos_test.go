// Package chaos is Strata's fault-injection suite: the real binaries as
// processes on loopback — two writers (one relay active, one standing by),
// three projectors, the suite's own PostgreSQL and Kafka-protocol broker,
// each process reaching PostgreSQL and Kafka through a TCP proxy — under a
// steady load of appends from several clients, while a nemesis injects
// faults; then a checker compares what the system holds with a ledger of
// what it acknowledged. See README.md, "The chaos suite".
//
// Settings (environment): DURATION (how long the nemesis runs; default
// 60s), CHAOS_SEED (replays a run's choices), CHAOS_RATE (appends per
// second, all clients together; default 100), CHAOS_FAULTS (the fault
// kinds to inject, comma-separated; default all but the opt-in ones,
// "none" for none),
// CHAOS_LOG_LEVEL (the processes' log level; default info).
package chaos

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const nClients = 4

// settings are a run's parameters, from the environment.
type settings struct {
	duration time.Duration
	seed     uint64
	rate     float64
	faults   []string
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	st := settings{duration: 60 * time.Second, seed: rand.Uint64() % 1_000_000_000, rate: 100}
	if v := os.Getenv("DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("DURATION=%q: want a positive duration such as 90s or 10m", v)
		}
		st.duration = d
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: want a whole number", v)
		}
		st.seed = n
	}
	if v := os.Getenv("CHAOS_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			t.Fatalf("CHAOS_RATE=%q: want appends per second", v)
		}
		st.rate = r
	}
	switch v := os.Getenv("CHAOS_FAULTS"); v {
	case "":
		for _, f := range faultKinds {
			if !f.optIn {
				st.faults = append(st.faults, f.name)
			}
		}
	case "none":
	default:
		for _, name := range strings.Split(v, ",") {
			if faultKind(strings.TrimSpace(name)) == nil {
				var known []string
				for _, f := range faultKinds {
					known = append(known, f.name)
				}
				t.Fatalf("CHAOS_FAULTS: unknown fault %q; known: %s", name, strings.Join(known, ", "))
			}
			st.faults = append(st.faults, strings.TrimSpace(name))
		}
	}
	return st
}

// TestChaos runs the system under load and faults, then checks it.
func TestChaos(t *testing.T) {
	cfg := loadSettings(t)
	t.Logf("seed %d (CHAOS_SEED=%d replays this run's choices); faults for %s: %s", cfg.seed, cfg.seed, cfg.duration, strings.Join(cfg.faults, ", "))
	s := startSystem(t)

	// The load.
	stopLoad := make(chan struct{})
	giveUp, cancelGiveUp := context.WithCancel(context.Background())
	defer cancelGiveUp()
	var clients sync.WaitGroup
	every := time.Duration(float64(time.Second) * nClients / cfg.rate)
	for c := range nClients {
		lc := &loadClient{n: c, rng: rand.New(rand.NewPCG(cfg.seed, uint64(c))), ledger: s.ledger,
			writers: s.writerURLs, http: newClient(5 * time.Second), every: every}
		clients.Add(1)
		go func() { defer clients.Done(); lc.run(stopLoad, giveUp) }()
	}
	stopClients := func() {
		close(stopLoad)
		done := make(chan struct{})
		go func() { clients.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			t.Errorf("the clients' appends in hand were not answered within 90s of the end of the faults")
			cancelGiveUp()
			<-done
		}
	}
	if err := s.healthy(90 * time.Second); err != nil {
		stopClients()
		t.Fatalf("the system did not come up: %v", err)
	}

	rep := &report{seed: cfg.seed, duration: cfg.duration}
	n := newNemesis(s, rand.New(rand.NewPCG(cfg.seed, 1<<32)), cfg.faults, rep)
	rep.kinds = n.kinds
	start := time.Now()
	n.run(cfg.duration)
	rep.faultTime = time.Since(start)

	// The faults stop; the system settles.
	if dead := s.heal(); len(dead) > 0 {
		rep.note("after the last fault, %s had exited and were started again", strings.Join(dead, ", "))
	}
	if err := s.healthy(90 * time.Second); err != nil {
		rep.note("the system was not healthy within 90s of the last fault: %v", err)
		t.Errorf("the system was not healthy within 90s of the last fault: %v", err)
	}
	stopClients()
	rep.appends, rep.acked, rep.unanswered = s.ledger.counts()
	rep.retries = s.ledger.retries

	check(t, s, rep)
	t.Log("\n" + rep.table())
	for _, v := range rep.invariants {
		if v.count > 0 {
			t.Errorf("%s: %d, want 0; e.g.\n  %s", v.name, v.count, strings.Join(v.samples, "\n  "))
		}
	}
	for _, m := range rep.misses() {
		t.Errorf("recovery target missed: %s", m)
	}
	for _, u := range s.ledger.unexpected {
		t.Errorf("unexpected answer: %s", u)
	}
}

// check waits for the relay and the projectors to catch up, then counts
// every invariant's violations into rep.
func check(t *testing.T, s *system, rep *report) {
	ctx := context.Background()
	st, err := readStore(ctx, s)
	if err != nil {
		t.Fatalf("read the store: %v", err)
	}
	rep.stored = len(st.events)
	rep.invariants = append(rep.invariants, checkStore(st, s.ledger.snapshot())...)

	// Kafka: read until every stored event is there, or until the topic
	// stops growing for a minute.
	kr, err := newKafkaReader(s)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.close()
	settleStart := time.Now()
	lastGrowth, lastCount := time.Now(), -1
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := kr.catchUp(cctx)
		cancel()
		have := map[string]bool{}
		for _, r := range kr.records {
			have[header(r, "ce_id")] = true
		}
		all := true
		for _, e := range st.events {
			if !have[e.ID] {
				all = false
				break
			}
		}
		if all {
			break
		}
		if len(kr.records) != lastCount {
			lastGrowth, lastCount = time.Now(), len(kr.records)
		}
		if time.Since(lastGrowth) > time.Minute {
			rep.note("Kafka stopped growing short of the store (last error: %v)", err)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	rep.published = len(kr.records)
	rep.invariants = append(rep.invariants, checkKafka(st, kr.records, partitions)...)

	// The read models: poll until they equal the replay, or stop changing
	// for a minute.
	want := replay(st)
	var diffs []*invariant
	lastChange, lastWrong := time.Now(), -1
	for {
		got, err := readReadModels(ctx, s)
		if err == nil {
			diffs = compareReadModels(want, got)
			wrong := 0
			for _, d := range diffs {
				wrong += d.count
			}
			if wrong == 0 {
				break
			}
			if wrong != lastWrong {
				lastChange, lastWrong = time.Now(), wrong
			}
		}
		if time.Since(lastChange) > time.Minute {
			if err != nil {
				t.Errorf("read the read models: %v", err)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	rep.settle = time.Since(settleStart)
	rep.invariants = append(rep.invariants, diffs...)
}

// newClient is a load client's HTTP client: an unanswered request is
// abandoned after timeout, and retried.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
}
