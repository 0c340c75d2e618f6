package main

import (
	"context"
	"errors"
	"io"
)

func schemas(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("schemas: not built yet")
}
