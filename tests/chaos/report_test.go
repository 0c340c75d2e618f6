package chaos

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is what a run did and found: the table it prints.
type report struct {
	seed                uint64
	duration, faultTime time.Duration
	settle              time.Duration
	appends, acked      int
	unanswered, retries int
	stored, published   int
	kinds               []*fault // the kinds the run chose, in the table
	injections          []*injection
	invariants          []*invariant
	notes               []string
}

// injection is one fault injected, and the recovery measured after it.
type injection struct {
	kind     *fault
	detail   string
	at       time.Time
	recovery time.Duration
	measured bool   // recovery is a measurement
	failed   string // why recovery was not measured: not seen in time, or the fault could not be set up
}

func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// misses lists the injections whose recovery missed the kind's target.
func (r *report) misses() []string {
	var out []string
	for _, inj := range r.injections {
		switch {
		case inj.failed != "":
			out = append(out, fmt.Sprintf("%s (%s): %s", inj.kind.label, inj.detail, inj.failed))
		case inj.kind.target > 0 && inj.measured && inj.recovery > inj.kind.target:
			out = append(out, fmt.Sprintf("%s (%s): %s recovered in %s, target %s", inj.kind.label, inj.detail, inj.kind.measure, round(inj.recovery), inj.kind.target))
		}
	}
	return out
}

func round(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// table renders the report.
func (r *report) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run: seed %d, faults for %s (DURATION=%s)\n", r.seed, r.faultTime.Round(time.Second), r.duration)
	fmt.Fprintf(&b, "load: %d appends (%d acknowledged, %d never answered: recovery probes, which are not retried), %d retries of unanswered appends; %d events stored, %d records in Kafka; settled and checked in %s\n\n",
		r.appends, r.acked, r.unanswered, r.retries, r.stored, r.published, r.settle.Round(100*time.Millisecond))

	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tinjected\trecovery measured\ttarget\tmedian\tmax\tmissed")
	for _, k := range r.kinds {
		var times []time.Duration
		n, missed := 0, 0
		for _, inj := range r.injections {
			if inj.kind != k {
				continue
			}
			n++
			if inj.measured {
				times = append(times, inj.recovery)
			}
			if inj.failed != "" || k.target > 0 && inj.measured && inj.recovery > k.target {
				missed++
			}
		}
		target := "-"
		if k.target > 0 {
			target = k.target.String()
		}
		median, worst := "-", "-"
		if len(times) > 0 {
			slices.Sort(times)
			median, worst = round(times[len(times)/2]), round(times[len(times)-1])
		}
		missedText := "-"
		if k.target > 0 || missed > 0 {
			missedText = fmt.Sprint(missed)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", k.label, n, k.measure, target, median, worst, missedText)
	}
	tw.Flush()

	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	sum := func(names ...string) int {
		n := 0
		for _, v := range r.invariants {
			for _, name := range names {
				if strings.HasPrefix(v.name, name) {
					n += v.count
				}
			}
		}
		return n
	}
	fmt.Fprintln(tw, "invariant\tcount")
	fmt.Fprintf(tw, "LOST (acknowledged but not stored, or stored but not in Kafka)\t%d\n",
		sum("acknowledged events not stored", "stored events not in Kafka"))
	fmt.Fprintf(tw, "DOUBLED (in the store or in Kafka)\t%d\n", sum("events stored twice", "events in Kafka more than once"))
	fmt.Fprintf(tw, "REORDERED (a stream out of version order in Kafka)\t%d\n", sum("streams out of version order"))
	fmt.Fprintf(tw, "READ-MODEL ROWS WRONG (against a replay of the store)\t%d\n", sum("read-model rows wrong"))
	for _, v := range r.invariants {
		fmt.Fprintf(tw, "  %s\t%d\n", v.name, v.count)
	}
	tw.Flush()

	if len(r.injections) > 0 {
		b.WriteString("\ninjections:\n")
		for _, inj := range r.injections {
			outcome := ""
			switch {
			case inj.failed != "":
				outcome = "NOT RECOVERED: " + inj.failed
			case inj.measured:
				outcome = inj.kind.measure + " in " + round(inj.recovery)
			}
			fmt.Fprintf(&b, "  %s  %s (%s): %s\n", inj.at.Format("15:04:05.000"), inj.kind.label, inj.detail, outcome)
		}
	}
	if len(r.notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	return b.String()
}
