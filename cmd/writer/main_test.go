package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/httpapi"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

func runWriter(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestMigrateCommand(t *testing.T) {
	url, schema := harness.NewSchema(t)
	env := map[string]string{"STRATA_DATABASE_URL": url, "STRATA_DATABASE_SCHEMA": schema}
	out, _, err := runWriter(t, env, "migrate")
	if err != nil || !strings.Contains(out, "applied 0001_events") {
		t.Fatalf("first migrate = %q, %v", out, err)
	}
	out, _, err = runWriter(t, env, "migrate")
	if err != nil || !strings.Contains(out, "is current") {
		t.Errorf("second migrate = %q, %v; want the schema reported current", out, err)
	}
	if _, _, err := runWriter(t, env, "migrate", "extra"); err == nil {
		t.Errorf("migrate with an argument succeeded")
	}
}

func TestMigrateReportsAnUnreachableDatabase(t *testing.T) {
	env := map[string]string{"STRATA_DATABASE_URL": "postgres://strata:pw@127.0.0.1:1/x?connect_timeout=2"}
	_, _, err := runWriter(t, env, "migrate")
	if err == nil || !strings.Contains(err.Error(), "unavailable") || strings.Contains(err.Error(), ":pw@") {
		t.Errorf("migrate against a closed port = %v; want an unavailable error without the password", err)
	}
}

func TestUsage(t *testing.T) {
	if _, stderr, err := runWriter(t, nil); err == nil || !strings.Contains(stderr, "Commands:") {
		t.Errorf("writer with no command = %v, stderr %q; want an error and the usage", err, stderr)
	}
	if _, _, err := runWriter(t, nil, "frobnicate"); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("writer frobnicate = %v; want an error naming the command", err)
	}
	if out, _, err := runWriter(t, nil, "migrate", "--help"); err == nil || !strings.Contains(out, "STRATA_DATABASE_URL") {
		t.Errorf("migrate --help = %q, %v; want the settings listed and flag.ErrHelp", out, err)
	}
}

func TestServeRefusesAnOpenAddressWithoutTokens(t *testing.T) {
	url, schema := harness.NewSchema(t)
	env := map[string]string{"STRATA_DATABASE_URL": url, "STRATA_DATABASE_SCHEMA": schema}
	if _, _, err := runWriter(t, env, "migrate"); err != nil {
		t.Fatal(err)
	}
	_, _, err := runWriter(t, env, "serve", "--http-addr", "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), "without authentication") {
		t.Fatalf("serve on 0.0.0.0 without tokens = %v, want a refusal", err)
	}

	// With the override it serves, and stops cleanly when its context ends.
	env["STRATA_ALLOW_UNAUTHENTICATED"] = "true"
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--http-addr", "0.0.0.0:0"}, func(k string) string { return env[k] }, out, io.Discard)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "writer listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("serve with STRATA_ALLOW_UNAUTHENTICATED=true did not start: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after its context ended = %v, want nil", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

func TestServeHelpShowsTheEventLimit(t *testing.T) {
	out, _, err := runWriter(t, nil, "serve", "--help")
	if err == nil || !strings.Contains(out, "STRATA_MAX_EVENT_BYTES") || !strings.Contains(out, "--max-event-bytes") ||
		!strings.Contains(out, "default 1000000") || !strings.Contains(out, "--body-timeout") {
		t.Errorf("serve --help = %q, %v; want --max-event-bytes (STRATA_MAX_EVENT_BYTES, default 1000000) and --body-timeout", out, err)
	}
	if config.DefaultMaxEventBytes != httpapi.DefaultMaxEventBytes {
		t.Errorf("the writer's default event limit is %d, the API's %d", config.DefaultMaxEventBytes, httpapi.DefaultMaxEventBytes)
	}
}

func TestServeTakesTheSubscriptionLimits(t *testing.T) {
	out, _, _ := runWriter(t, nil, "serve", "--help")
	if !strings.Contains(out, "--max-subscriptions ") || !strings.Contains(out, "default 10000") ||
		!strings.Contains(out, "--max-subscriptions-per-token") || !strings.Contains(out, "default 1000\n") {
		t.Errorf("serve --help = %q; want --max-subscriptions (default 10000) and --max-subscriptions-per-token (default 1000)", out)
	}
	url, schema := harness.NewSchema(t)
	env := map[string]string{"STRATA_DATABASE_URL": url, "STRATA_DATABASE_SCHEMA": schema}
	for _, flag := range []string{"--max-subscriptions", "--max-subscriptions-per-token"} {
		_, _, err := runWriter(t, env, "serve", flag, "0")
		if err == nil || !strings.Contains(err.Error(), "at least 1") {
			t.Errorf("serve %s 0 = %v, want a refusal", flag, err)
		}
	}
}
