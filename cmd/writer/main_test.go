package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/strata-events/strata/internal/harness"
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
