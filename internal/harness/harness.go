// Package harness starts the real services that Strata's tests, benchmarks
// and demo run against: a PostgreSQL cluster and the Kafka-protocol broker
// (franz-go's kfake, embedded).
//
// Tests never skip for want of a service. Where the environment names one
// (STRATA_TEST_DATABASE_URL), it is used; with STRATA_TEST_BACKEND=containers
// the services run in containers from testcontainers-go — PostgreSQL and
// Redpanda, a Kafka-protocol broker (a Docker engine must answer, and the
// tests must be built with -tags containers); otherwise a throwaway cluster
// starts from the machine's binaries, and kfake in the test process, and
// both are removed after.
//
// A test package that needs PostgreSQL or Kafka calls Main from its
// TestMain and PostgresURL, NewSchema or KafkaBrokers from its tests.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by the harness.
const (
	EnvDatabaseURL = "STRATA_TEST_DATABASE_URL"
	EnvBackend     = "STRATA_TEST_BACKEND" // "local" (default) or "containers"
)

var shared struct {
	sync.Mutex
	url     string
	err     error
	cluster *PostgresCluster
	stop    func()
}

var sharedKafka struct {
	sync.Mutex
	cluster *KafkaCluster
	brokers []string // of the container backend's broker
}

// stops are the services Main stops when the tests end.
var stops struct {
	sync.Mutex
	fns []func()
}

func registerStop(fn func()) {
	stops.Lock()
	defer stops.Unlock()
	stops.fns = append(stops.fns, fn)
}

// Main runs a test package's tests and then stops the services it started.
// Use it as: func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	stops.Lock()
	for _, fn := range stops.fns {
		fn()
	}
	stops.Unlock()
	shared.Lock()
	defer shared.Unlock()
	if shared.stop != nil {
		shared.stop()
	}
	return code
}

// PostgresURL returns the URL of the test database, starting the package's
// shared cluster on first use. It fails the test when no database can be had.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.url == "" && shared.err == nil {
		shared.url, shared.stop, shared.err = startPostgres()
	}
	if shared.err != nil {
		tb.Fatalf("no PostgreSQL for the tests: %v", shared.err)
	}
	return shared.url
}

// SharedCluster returns the package's local cluster, for tests that stop and
// restart it. It fails the test when the database is not a local cluster.
func SharedCluster(tb testing.TB) *PostgresCluster {
	tb.Helper()
	PostgresURL(tb)
	if shared.cluster == nil {
		tb.Fatalf("this test restarts PostgreSQL, so it needs the local cluster; unset %s and %s", EnvDatabaseURL, EnvBackend)
	}
	return shared.cluster
}

func startPostgres() (url string, stop func(), err error) {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		return u, nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	switch b := os.Getenv(EnvBackend); b {
	case "", "local":
		c, err := StartPostgres(ctx, PostgresOptions{})
		if err != nil {
			return "", nil, err
		}
		shared.cluster = c
		return c.URL, c.Stop, nil
	case "containers":
		return startPostgresContainer(ctx)
	default:
		return "", nil, fmt.Errorf("%s=%q: want local or containers", EnvBackend, b)
	}
}

// NewSchema creates a schema with a unique name for one test, drops it when
// the test ends, and returns its name and the database URL.
func NewSchema(tb testing.TB) (url, schema string) {
	tb.Helper()
	url = PostgresURL(tb)
	schema = "t_" + randomHex(6)
	ctx := context.Background()
	if err := execSQL(ctx, url, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		tb.Fatalf("create test schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := execSQL(ctx, url, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Logf("drop test schema %s: %v", schema, err)
		}
	})
	return url, schema
}

func execSQL(ctx context.Context, url, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
