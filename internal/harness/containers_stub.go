//go:build !containers

package harness

import (
	"context"
	"errors"
)

func startPostgresContainer(context.Context) (string, func(), error) {
	return "", nil, errors.New("STRATA_TEST_BACKEND=containers needs the tests built with -tags containers (make test does this when the variable is set)")
}

func startKafkaContainer(context.Context) ([]string, func(), error) {
	return nil, nil, errors.New("STRATA_TEST_BACKEND=containers needs the tests built with -tags containers (make test does this when the variable is set)")
}
