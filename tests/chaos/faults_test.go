package chaos

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/strata-events/strata/internal/postgres"
)

// faultKinds are every kind the nemesis injects, in the table's order.
// A target is a recovery time Strata promises; a kind without one is only
// measured.
var faultKinds = []*fault{
	{name: "kill-writer", label: "kill -9 a standby writer, started again at once",
		measure: "appends answered through it", inject: killWriter},
	{name: "kill-relay", label: "kill -9 the active relay's writer",
		measure: "the standby publishing", target: 5 * time.Second, inject: killRelay},
	{name: "pause-relay", label: "SIGSTOP the active relay 12-16s, then SIGCONT",
		measure: "the standby publishing, from SIGSTOP", target: postgres.LeaseTTL + 5*time.Second, inject: pauseRelay},
	{name: "kill-projector", label: "kill -9 a projector",
		measure: "every partition applied again", target: sessionTimeout + 2*time.Second, inject: killProjector},
	{name: "kill-broker", label: "kill -9 the broker between two requests, started 1-4s later",
		measure: "the relay publishing after its return", target: 5 * time.Second, inject: brokerDown(syscall.SIGUSR1)},
	{name: "kill-broker-anytime", label: "kill -9 the broker at any moment (opt-in: kfake tears commits)",
		measure: "the relay publishing after its return", target: 5 * time.Second, inject: brokerDown(syscall.SIGKILL), optIn: true},
	{name: "stop-broker", label: "stop the broker (SIGTERM), started 1-4s later",
		measure: "the relay publishing after its return", target: 5 * time.Second, inject: brokerDown(syscall.SIGTERM)},
	{name: "pg-restart-fast", label: "restart PostgreSQL, fast (SIGINT)",
		measure: "appends answered after it accepts connections", target: 2 * time.Second, inject: pgRestart(syscall.SIGINT)},
	{name: "pg-restart-immediate", label: "restart PostgreSQL, immediate (SIGQUIT, crash recovery)",
		measure: "appends answered after it accepts connections", target: 2 * time.Second, inject: pgRestart(syscall.SIGQUIT)},
	{name: "net-latency", label: "latency 100-500ms on a link for 3-6s",
		measure: "the link's user working after removal", inject: netFault("latency")},
	{name: "net-blackhole", label: "blackhole a link for 3-8s, then cut its connections",
		measure: "the link's user working after removal", inject: netFault("timeout")},
	{name: "net-reset", label: "reset a link's connections mid-request for 2-4s",
		measure: "the link's user working after removal", inject: netFault("reset_peer")},
	{name: "net-slow-close", label: "slow close (2-5s) of the connections a restart of the broker or PostgreSQL ends",
		measure: "the relay publishing / appends answered", inject: slowClose},
}

// activeRelay finds the writer whose relay is active: exactly one says so.
func (s *system) activeRelay(within time.Duration) (*proc, error) {
	var active *proc
	err := poll(within, 50*time.Millisecond, func() error {
		var found []*proc
		for _, w := range s.writers {
			if st, err := s.relay(w); err == nil && st.active {
				found = append(found, w)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%d relays say they are active", len(found))
		}
		active = found[0]
		return nil
	})
	return active, err
}

func (s *system) others(w *proc) []*proc {
	var out []*proc
	for _, o := range s.writers {
		if o != w {
			out = append(out, o)
		}
	}
	return out
}

// measured records a recovery seen at seen, counted from from.
func (inj *injection) measuredAt(from, seen time.Time, err error) {
	if err != nil {
		inj.failed = err.Error()
		return
	}
	inj.recovery, inj.measured = seen.Sub(from), true
}

func (inj *injection) setupFailed(err error) { inj.failed = "could not inject: " + err.Error() }

func killWriter(n *nemesis, inj *injection) {
	active, err := n.s.activeRelay(10 * time.Second)
	if err != nil {
		inj.setupFailed(err)
		return
	}
	others := n.s.others(active)
	w := others[n.rng.IntN(len(others))]
	inj.detail = w.name
	w.kill(syscall.SIGKILL)
	from := time.Now()
	if err := w.start(); err != nil {
		inj.failed = err.Error()
		return
	}
	seen, err := n.s.appendsAnswer([]*proc{w}, from, measureWithin)
	inj.measuredAt(from, seen, err)
}

func killRelay(n *nemesis, inj *injection) {
	w, err := n.s.activeRelay(10 * time.Second)
	if err != nil {
		inj.setupFailed(err)
		return
	}
	inj.detail = w.name
	others := n.s.others(w)
	base := n.s.relayBase(others)
	w.kill(syscall.SIGKILL)
	from := time.Now()
	seen, err := n.s.publishedSince(others, base, measureWithin)
	inj.measuredAt(from, seen, err)
	if err := w.start(); err != nil {
		inj.failed = err.Error()
	}
}

// pauseRelay stops the active relay's process for longer than its lease
// (postgres.LeaseTTL): its sessions stay open, but it falls silent, so
// the server ends its lease session and the standby takes over while the
// old relay sleeps, perhaps inside a Kafka transaction. Continued, the
// old relay must stand down without publishing (the checker finds any
// record it got through). Recovery is the standby's takeover, counted
// from SIGSTOP: the lease's TTL, then at most 5s.
func pauseRelay(n *nemesis, inj *injection) {
	w, err := n.s.activeRelay(10 * time.Second)
	if err != nil {
		inj.setupFailed(err)
		return
	}
	pause := n.between(12*time.Second, 16*time.Second)
	others := n.s.others(w)
	base := n.s.relayBase(others)
	w.pause()
	stopped := time.Now()
	defer w.resume()
	seen, err := n.s.publishedSince(others, base, pause)
	inj.measuredAt(stopped, seen, err)
	time.Sleep(time.Until(stopped.Add(pause))) // the rest of the pause
	w.resume()
	continued := time.Now()
	// At its next lease check it finds its lease gone.
	stood := poll(measureWithin, 50*time.Millisecond, func() error {
		if st, err := n.s.relay(w); err != nil || st.active {
			return errNotYet
		}
		return nil
	})
	inj.detail = fmt.Sprintf("%s for %s; it stood down %s after SIGCONT", w.name, round(pause), round(time.Since(continued)))
	switch {
	case err != nil:
		inj.failed = fmt.Sprintf("no standby took over while %s was stopped for %s", w.name, round(pause))
	case stood != nil:
		inj.failed = fmt.Sprintf("%s still says its relay is active %s after SIGCONT", w.name, measureWithin)
	}
}

func killProjector(n *nemesis, inj *injection) {
	p := n.s.projectors[n.rng.IntN(len(n.s.projectors))]
	inj.detail = p.name
	base := n.s.offsetsNow()
	p.kill(syscall.SIGKILL)
	from := time.Now()
	seen, err := n.s.partitionsApplied(base, measureWithin)
	inj.measuredAt(from, seen, err)
	if err := p.start(); err != nil {
		inj.failed = err.Error()
	}
}

// brokerDown ends the broker with sig — SIGTERM, SIGKILL, or SIGUSR1,
// which has the suite's broker SIGKILL itself between two requests — and
// starts it again.
func brokerDown(sig syscall.Signal) func(*nemesis, *injection) {
	return func(n *nemesis, inj *injection) {
		down := n.between(time.Second, 4*time.Second)
		inj.detail = "down " + round(down)
		n.s.broker.kill(sig)
		time.Sleep(down) // the outage itself
		if err := n.s.broker.start(); err != nil {
			inj.failed = err.Error()
			return
		}
		back := time.Now()
		seen, err := n.s.publishedSince(n.s.writers, n.s.relayBase(n.s.writers), measureWithin)
		inj.measuredAt(back, seen, err)
	}
}

func pgRestart(sig syscall.Signal) func(*nemesis, *injection) {
	return func(n *nemesis, inj *injection) {
		inj.detail = "stopped and started at once"
		accepted, err := n.s.restartPG(sig)
		if err != nil {
			inj.failed = err.Error()
			return
		}
		seen, err := n.s.appendsAnswer(n.s.writers, accepted, measureWithin)
		inj.measuredAt(accepted, seen, err)
	}
}

func (s *system) restartPG(sig syscall.Signal) (accepted time.Time, err error) {
	s.pg.stop(sig)
	return s.pg.start(context.Background())
}

// target is a link the nemesis puts a fault on, and how to tell that its
// users work again.
type target struct {
	desc      string
	links     []*link
	recovered func(from time.Time) (time.Time, error)
}

// pickTarget chooses the Kafka link, every PostgreSQL link, or one
// process's PostgreSQL link.
func (n *nemesis) pickTarget() target {
	s := n.s
	switch c := n.rng.IntN(4); {
	case c == 0:
		return target{"the broker (every Kafka client)", []*link{s.kafkaLink}, func(from time.Time) (time.Time, error) {
			return s.publishedSince(s.writers, s.relayBase(s.writers), measureWithin)
		}}
	case c == 1:
		var ls []*link
		for _, l := range s.pgLinks {
			ls = append(ls, l)
		}
		return target{"PostgreSQL (every process)", ls, func(from time.Time) (time.Time, error) {
			return s.appendsAnswer(s.writers, from, measureWithin)
		}}
	case c == 2:
		w := s.writers[n.rng.IntN(len(s.writers))]
		return target{"PostgreSQL from " + w.name, []*link{s.pgLinks[w.name]}, func(from time.Time) (time.Time, error) {
			return s.appendsAnswer([]*proc{w}, from, measureWithin)
		}}
	default:
		p := s.projectors[n.rng.IntN(len(s.projectors))]
		return target{"PostgreSQL from " + p.name, []*link{s.pgLinks[p.name]}, func(from time.Time) (time.Time, error) {
			return s.partitionsApplied(s.offsetsNow(), measureWithin)
		}}
	}
}

func netFault(typ string) func(*nemesis, *injection) {
	return func(n *nemesis, inj *injection) {
		t := n.pickTarget()
		var attrs map[string]any
		var d time.Duration
		switch typ {
		case "latency":
			lat := n.between(100*time.Millisecond, 500*time.Millisecond)
			attrs = map[string]any{"latency": lat.Milliseconds(), "jitter": lat.Milliseconds() / 4}
			d = n.between(3*time.Second, 6*time.Second)
			inj.detail = fmt.Sprintf("%s, %dms for %s", t.desc, lat.Milliseconds(), round(d))
		case "timeout":
			attrs = map[string]any{"timeout": 0} // hold every byte, close nothing
			d = n.between(3*time.Second, 8*time.Second)
			inj.detail = fmt.Sprintf("%s for %s", t.desc, round(d))
		case "reset_peer":
			wait := n.rng.IntN(200)
			attrs = map[string]any{"timeout": wait}
			d = n.between(2*time.Second, 4*time.Second)
			inj.detail = fmt.Sprintf("%s, RST %dms after data, for %s", t.desc, wait, round(d))
		}
		for _, l := range t.links {
			if err := l.toxic(typ, attrs); err != nil {
				inj.setupFailed(err)
				return
			}
		}
		time.Sleep(d) // the fault itself
		for _, l := range t.links {
			l.clear()
			if typ == "timeout" {
				// A blackhole dropped bytes that TCP would have
				// delivered late: no connection through it can go on.
				if err := l.cut(); err != nil {
					inj.failed = err.Error()
					return
				}
			}
		}
		from := time.Now()
		seen, err := t.recovered(from)
		inj.measuredAt(from, seen, err)
	}
}

// slowClose delays, by 2-5s, every close that crosses the links to the
// broker or to PostgreSQL, then restarts that service: its clients learn
// late that their connections are gone.
func slowClose(n *nemesis, inj *injection) {
	s := n.s
	delay := n.between(2*time.Second, 5*time.Second)
	attrs := map[string]any{"delay": delay.Milliseconds()}
	var links []*link
	kafka := n.rng.IntN(2) == 0
	if kafka {
		links = []*link{s.kafkaLink}
	} else {
		for _, l := range s.pgLinks {
			links = append(links, l)
		}
	}
	defer func() {
		for _, l := range links {
			l.clear()
		}
	}()
	for _, l := range links {
		if err := l.toxic("slow_close", attrs); err != nil {
			inj.setupFailed(err)
			return
		}
	}
	if kafka {
		inj.detail = fmt.Sprintf("the broker stopped and started, closes delayed %s", round(delay))
		s.broker.kill(syscall.SIGTERM)
		if err := s.broker.start(); err != nil {
			inj.failed = err.Error()
			return
		}
		back := time.Now()
		seen, err := s.publishedSince(s.writers, s.relayBase(s.writers), measureWithin)
		inj.measuredAt(back, seen, err)
		return
	}
	inj.detail = fmt.Sprintf("PostgreSQL restarted fast, closes delayed %s", round(delay))
	accepted, err := s.restartPG(syscall.SIGINT)
	if err != nil {
		inj.failed = err.Error()
		return
	}
	seen, err := s.appendsAnswer(s.writers, accepted, measureWithin)
	inj.measuredAt(accepted, seen, err)
}
