package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// fault is a kind of fault the nemesis injects, and the recovery it
// measures after it.
type fault struct {
	name    string        // in CHAOS_FAULTS
	label   string        // in the table
	measure string        // what recovery is, and from when
	target  time.Duration // the recovery target; 0: none, only measured
	// optIn kinds run only when CHAOS_FAULTS names them: faults that
	// the suite's broker, not Strata, is known not to survive.
	optIn  bool
	inject func(n *nemesis, inj *injection)
}

func faultKind(name string) *fault {
	for _, f := range faultKinds {
		if f.name == name {
			return f
		}
	}
	return nil
}

// healthyWithin bounds the wait, after each fault, for the whole system to
// work again before the next fault.
const healthyWithin = 60 * time.Second

// measureWithin bounds the wait for each recovery that is measured.
const measureWithin = 45 * time.Second

// nemesis injects faults one after the other, at random: each into a
// healthy system, measuring its recovery, then healing what remains of it.
// One at a time, so that each recovery time is the recovery from one
// fault.
type nemesis struct {
	s     *system
	rng   *rand.Rand
	kinds []*fault
	deck  []*fault
	rep   *report
}

func newNemesis(s *system, rng *rand.Rand, names []string, rep *report) *nemesis {
	n := &nemesis{s: s, rng: rng, rep: rep}
	for _, name := range names {
		n.kinds = append(n.kinds, faultKind(name))
	}
	return n
}

// draw deals the next kind from a shuffled deck of every kind, so that a
// run long enough injects every kind, each about as often, in random order.
func (n *nemesis) draw() *fault {
	if len(n.deck) == 0 {
		n.deck = append(n.deck, n.kinds...)
		n.rng.Shuffle(len(n.deck), func(i, j int) { n.deck[i], n.deck[j] = n.deck[j], n.deck[i] })
	}
	f := n.deck[0]
	n.deck = n.deck[1:]
	return f
}

// between returns a random duration in [lo, hi).
func (n *nemesis) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)))
}

// run injects faults until d has passed (the fault in hand is finished).
// With no kinds it lets the load run for d.
func (n *nemesis) run(d time.Duration) {
	end := time.Now().Add(d)
	if len(n.kinds) == 0 {
		time.Sleep(d)
		return
	}
	for time.Now().Before(end) {
		f := n.draw()
		inj := &injection{kind: f, at: time.Now()}
		n.rep.injections = append(n.rep.injections, inj)
		f.inject(n, inj)
		n.s.t.Logf("%s %s (%s): recovery %s %s", inj.at.Format("15:04:05.000"), f.label, inj.detail, round(inj.recovery), inj.failed)
		if dead := n.s.heal(); len(dead) > 0 {
			n.rep.note("after %s (%s), %s had exited by itself and was started again", f.label, inj.detail, strings.Join(dead, ", "))
		}
		if err := n.s.healthy(healthyWithin); err != nil {
			msg := fmt.Sprintf("the system was not healthy again within %s: %v", healthyWithin, err)
			if inj.failed == "" {
				inj.failed = msg
			} else {
				inj.failed += "; " + msg
			}
			n.rep.note("the nemesis stopped after %s (%s): %s", f.label, inj.detail, msg)
			return
		}
		time.Sleep(n.between(500*time.Millisecond, 2*time.Second))
	}
}
