package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a strings.Builder safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTheDemoRunsThroughAndStopsCleanly runs the whole demo, as `make demo`
// does, in a directory laid out like the repository's, and interrupts it
// when it waits for Ctrl-C.
func TestTheDemoRunsThroughAndStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	// PostgreSQL runs as the postgres user when the tests run as root: it
	// must be able to reach .data/ through the temporary directories.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"writer", "projector"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", name), "../"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	for _, d := range []string{"schemas", "projections"} {
		abs, err := filepath.Abs("../../" + d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	t.Setenv("DISPLAY", "") // no browser opened
	t.Setenv("WAYLAND_DISPLAY", "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &stdout, &stderr) }()
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(stdout.String(), "Press Ctrl-C to stop.") {
		select {
		case err := <-done:
			t.Fatalf("the demo ended before the walkthrough did: %v\n%s\n%s", err, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatalf("the walkthrough did not finish in 3 minutes:\n%s\n%s", stdout.String(), stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The console is named as soon as the writer is up, and its
	// projection pages reach the first projector through the writer.
	m := regexp.MustCompile(`The console(?:, opened in your browser)?: (?:open )?(http://\S+)/console/`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Errorf("the demo's output names no console URL:\n%s", stdout.String())
	} else if res, err := http.Get(m[1] + "/console/projector/v1/projections"); err != nil || res.StatusCode != 200 {
		t.Errorf("GET the projections through the demo's writer = %v, %v; want 200", res, err)
	} else {
		res.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the demo returned %v after Ctrl-C\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"409 Conflict wrong_expected_version",
		"→ 201 Created, version 4",
		"422 Unprocessable Entity schema_violation",
		"→ rejected: order a1b2c3d4 is shipped: no items can be added",
		`"total": "57.47"`,
		"order a1b2c3d4  3 × widget-x",
		"e5f6a7b8  open     espresso-beans  1         20.00  EUR",
		"projector 1 stopped",
		"PostgreSQL stopped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("the demo's output:\n%s", out)
	}
}
