package projector

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestProgressOnATerminalRedrawsABarWithAnETA(t *testing.T) {
	var out strings.Builder
	p := &progress{w: &out, name: "order_summary", tty: true, start: time.Now().Add(-2 * time.Second), reported: -1, lineEvery: 5 * time.Second}
	p.update(50, 200)
	p.update(60, 200) // within 100ms of the last draw: not drawn
	p.update(200, 200)
	p.finish(true)
	draws := strings.Split(out.String(), "\r\033[K")
	if len(draws) != 3 { // "", 50 and 200
		t.Fatalf("draws = %q, want three", draws)
	}
	if !strings.Contains(draws[1], "order_summary [███████░░░░░░░░░░░░░░░░░░░░░░░]  25% 50/200 events") ||
		!regexp.MustCompile(`ETA [0-9]+s`).MatchString(draws[1]) {
		t.Errorf("first draw = %q", draws[1])
	}
	if !strings.Contains(draws[2], "100% 200/200 events") || !strings.Contains(draws[2], "ETA 0s") {
		t.Errorf("last draw = %q", draws[2])
	}
	if !strings.HasSuffix(out.String(), "\n") {
		t.Error("the bar's line is not ended")
	}
}

func TestProgressElsewherePrintsALineNowAndThen(t *testing.T) {
	var out strings.Builder
	p := &progress{w: &out, name: "shipped_items", start: time.Now().Add(-time.Second), reported: -1, lineEvery: time.Hour}
	p.update(10, 100)
	p.update(20, 100) // within the hour: not printed
	p.update(100, 100)
	p.finish(true)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "rebuild shipped_items: 10% (10 of 100 events), ") ||
		!strings.HasPrefix(lines[1], "rebuild shipped_items: 100% (100 of 100 events)") || strings.Contains(out.String(), "\r") {
		t.Errorf("lines = %q", lines)
	}
}
