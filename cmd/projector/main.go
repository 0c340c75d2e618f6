// Command projector runs Strata's projections: Kafka consumer groups that
// build read models in PostgreSQL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "projector: %v\n", err)
		os.Exit(1)
	}
}

const usage = `Usage: projector <command> [flags]

Strata's projector builds read models from the events in Kafka.
This build has no projection commands yet (run, list, status and rebuild
come with the projection runner).
`

func run(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	if len(args) == 0 {
		return errors.New("no command given")
	}
	return fmt.Errorf("unknown command %q", args[0])
}
