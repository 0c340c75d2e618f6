// Package tests holds the end-to-end suites: they build Strata's binaries,
// run them as processes against real services, and check the results from
// outside, as a user would.
package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// build compiles ./cmd/name into a temporary directory.
func build(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

func TestWriterMigrateBinaryCreatesTheStore(t *testing.T) {
	writer := build(t, "writer")
	url, schema := harness.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	migrate := func() string {
		cmd := exec.CommandContext(ctx, writer, "migrate")
		cmd.Env = append(os.Environ(), "STRATA_DATABASE_URL="+url, "STRATA_DATABASE_SCHEMA="+schema)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("writer migrate: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := migrate(); !strings.Contains(out, "applied 0001_events") {
		t.Errorf("first writer migrate printed %q", out)
	}
	if out := migrate(); !strings.Contains(out, "is current") {
		t.Errorf("second writer migrate printed %q", out)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'events'", schema).Scan(&tables); err != nil || tables != 1 {
		t.Errorf("events table in %s: %d, %v", schema, tables, err)
	}
}

func TestWriterRefusesBadSettingsWithAClearMessage(t *testing.T) {
	writer := build(t, "writer")
	cmd := exec.Command(writer, "migrate")
	cmd.Env = append(os.Environ(), "STRATA_DATABASE_URL=mysql://db/x")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "STRATA_DATABASE_URL") {
		t.Errorf("writer migrate with a mysql URL: %v, %q; want a failure naming the setting", err, out)
	}
}
