//go:build containers

package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/modules/redpanda"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The images the container backend runs.
const (
	PostgresImage = "postgres:15-alpine"
	// RedpandaImage speaks the Kafka protocol, transactions and
	// consumer groups included, and starts in seconds.
	RedpandaImage = "docker.redpanda.com/redpandadata/redpanda:v24.2.18"
)

func startPostgresContainer(ctx context.Context) (string, func(), error) {
	if err := DockerEngine(ctx); err != nil {
		return "", nil, fmt.Errorf("STRATA_TEST_BACKEND=containers: %w", err)
	}
	c, err := tcpostgres.Run(ctx, PostgresImage,
		tcpostgres.WithDatabase("strata"),
		tcpostgres.WithUsername("strata"),
		tcpostgres.WithPassword("strata"),
		testcontainers.WithWaitStrategy(wait.ForLog("database system is ready to accept connections").
			WithOccurrence(2).WithStartupTimeout(2*time.Minute)),
	)
	if err != nil {
		return "", nil, fmt.Errorf("start the PostgreSQL container: %w", err)
	}
	url, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		testcontainers.TerminateContainer(c)
		return "", nil, err
	}
	return url, func() { testcontainers.TerminateContainer(c) }, nil
}

func startKafkaContainer(ctx context.Context) ([]string, func(), error) {
	if err := DockerEngine(ctx); err != nil {
		return nil, nil, fmt.Errorf("STRATA_TEST_BACKEND=containers: %w", err)
	}
	c, err := redpanda.Run(ctx, RedpandaImage,
		// Tests of crashed workers use short consumer-group sessions.
		redpanda.WithBootstrapConfig("group_min_session_timeout_ms", 500),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("start the Redpanda container: %w", err)
	}
	broker, err := c.KafkaSeedBroker(ctx)
	if err != nil {
		testcontainers.TerminateContainer(c)
		return nil, nil, err
	}
	return []string{broker}, func() { testcontainers.TerminateContainer(c) }, nil
}
