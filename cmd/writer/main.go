// Command writer is Strata's write side: it migrates the store, registers
// event schemas, serves the HTTP API and runs the outbox relay.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// The writer's live heap is a few megabytes, and each request
		// leaves some kilobytes of garbage: at the default target the
		// collector runs every few milliseconds under load. Four times
		// the live heap is still far within any memory budget.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "writer: %v\n", err)
		os.Exit(1)
	}
}

const usage = `Usage: writer <command> [flags]

Strata's writer: appends events to PostgreSQL and publishes them to Kafka.

Commands:
  migrate        create or upgrade the store's tables (idempotent)
  schemas apply  register the event schemas of the schemas directory
  serve          serve the HTTP API and run the outbox relay to Kafka
  relay          run the outbox relay alone
  keys           make a master key file; rewrap the data subjects' keys

Run "writer <command> --help" for a command's flags and settings.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "schemas":
		return schemas(ctx, rest, getenv, stdout, stderr)
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "relay":
		return relayMain(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return keys(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
