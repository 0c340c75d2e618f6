package postgres

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// snapshot is a pg_snapshot: which transactions had finished when it was
// taken. A transaction x is visible in it when x < xmin, or x < xmax and x
// is not in xip (those were still running).
type snapshot struct {
	xmin, xmax uint64
	xip        []uint64 // sorted, each in [xmin, xmax)
}

// origin is the snapshot before every transaction: nothing is visible in
// it. The first batch of a reader that starts from the beginning is
// (origin, now].
var origin = snapshot{xmin: 1, xmax: 1}

// parseSnapshot reads pg_snapshot's text form "xmin:xmax:xip,xip,...".
func parseSnapshot(text string) (snapshot, error) {
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("malformed snapshot %q", text)
	}
	var s snapshot
	var err error
	if s.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return snapshot{}, fmt.Errorf("malformed snapshot %q", text)
	}
	if s.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return snapshot{}, fmt.Errorf("malformed snapshot %q", text)
	}
	if parts[2] != "" {
		for _, f := range strings.Split(parts[2], ",") {
			x, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return snapshot{}, fmt.Errorf("malformed snapshot %q", text)
			}
			s.xip = append(s.xip, x)
		}
	}
	if err := s.validate(); err != nil {
		return snapshot{}, err
	}
	return s, nil
}

// validate checks the invariants pg_snapshot's input function also checks.
func (s snapshot) validate() error {
	if s.xmin < 1 || s.xmin > s.xmax {
		return fmt.Errorf("snapshot xmin %d is not within 1..xmax %d", s.xmin, s.xmax)
	}
	for i, x := range s.xip {
		if x < s.xmin || x >= s.xmax || i > 0 && x <= s.xip[i-1] {
			return fmt.Errorf("snapshot xip %v is not sorted within [%d, %d)", s.xip, s.xmin, s.xmax)
		}
	}
	return nil
}

// String returns pg_snapshot's text form.
func (s snapshot) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(s.xmin, 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(s.xmax, 10))
	b.WriteByte(':')
	for i, x := range s.xip {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(x, 10))
	}
	return b.String()
}

// xipText returns the running transactions as text, for a $n::text[] argument.
func (s snapshot) xipText() []string { return s.xipFrom(0) }

// xipFrom returns the running transactions from tx on, as xipText does.
func (s snapshot) xipFrom(tx uint64) []string {
	out := make([]string, 0, len(s.xip))
	for _, x := range s.xip {
		if x >= tx {
			out = append(out, strconv.FormatUint(x, 10))
		}
	}
	return out
}

func (s snapshot) equal(o snapshot) bool {
	return s.xmin == o.xmin && s.xmax == o.xmax && slices.Equal(s.xip, o.xip)
}

// contains reports whether every transaction visible in s is visible in o
// too, which holds when o was taken after s on the same server.
func (s snapshot) containedIn(o snapshot) bool {
	if s.xmax > o.xmax {
		return false
	}
	for _, x := range o.xip {
		if x < s.xmax && !slices.Contains(s.xip, x) {
			return false // finished in s, running in o
		}
	}
	return true
}

// cut returns the snapshot that sees what s sees among transactions below
// x, and nothing from x on. Because it only drops transactions from s, the
// set it sees is fixed, like s's: cutting (a, s] at x gives two batches,
// (a, cut] and (cut, s], that together are (a, s]. x must be at least
// a's xmax for a valid cut of a batch (a, s].
func (s snapshot) cut(x uint64) snapshot {
	if x >= s.xmax {
		return s
	}
	c := snapshot{xmin: min(s.xmin, x), xmax: x}
	for _, r := range s.xip {
		if r < x {
			c.xip = append(c.xip, r)
		}
	}
	return c
}
