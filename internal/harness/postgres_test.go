package harness

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestLocalClusterKeepsCommittedDataAcrossACrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := StartPostgres(ctx, PostgresOptions{Durable: true})
	if err != nil {
		t.Fatalf("StartPostgres: %v", err)
	}
	defer c.Stop()
	dir := c.Dir()

	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.URL)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE TABLE t (v int)")
	exec("INSERT INTO t VALUES (42)")

	port := c.Port()
	c.Kill()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start after Kill: %v", err)
	}
	if c.Port() != port {
		t.Errorf("port after restart = %d, want %d", c.Port(), port)
	}
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
		t.Errorf("SELECT v after crash = %d, %v; want 42", v, err)
	}
	conn.Close(ctx)

	c.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Stop left %s behind (stat error %v)", dir, err)
	}
}

func TestNewSchemaIsolatesTests(t *testing.T) {
	url, schema := NewSchema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema %s exists %d times (%v), want once", schema, n, err)
	}
}

func TestDockerEngineAnswersOrSaysWhyNot(t *testing.T) {
	// No engine is needed: the probe must return promptly either way.
	start := time.Now()
	err := DockerEngine(context.Background())
	if time.Since(start) > 3*time.Second {
		t.Errorf("DockerEngine took %v, want at most 2s", time.Since(start))
	}
	t.Logf("DockerEngine: %v", err)
}
