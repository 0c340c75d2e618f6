// Package projector is Strata's projector command line: `projector run`,
// `list`, `status`, `rebuild`, `resume` and `parked`. It runs the
// declarative SQL projections of STRATA_PROJECTIONS_DIR and the Go
// projections it is given.
//
// Strata's own bin/projector is
//
//	func main() { projector.Main(orders.SummaryProjection()) }
//
// and a program of yours that adds Go projections (see package projection)
// is the same, with yours:
//
//	func main() { projector.Main(myproj.Invoices(), myproj.Stock()) }
package projector

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/strata-events/strata/projection"
)

// Main runs the command line of os.Args with the Go projections code, in
// addition to the declarative ones, and exits: 0 on success, 1 after
// printing an error. SIGINT and SIGTERM stop it cleanly.
func Main(code ...*projection.Projection) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, code...)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "projector: %v\n", err)
		os.Exit(1)
	}
}

const usage = `Usage: projector <command> [flags]

Strata's projector builds read models in PostgreSQL from the events in Kafka,
exactly once, and serves them over HTTP.

Commands:
  run             run the projections (all, or --projections a,b) and the read API
  list            list the projections: declarative ones from STRATA_PROJECTIONS_DIR
                  and the ones built in
  status          per projection: state, lag per partition, events/s, parked events
  rebuild NAME    replay a projection into fresh tables and swap them in
  resume NAME     resume a projection halted by a poison event
  parked NAME     list a projection's parked (dead-letter) events; --retry ID
                  applies one again, --discard ID removes it

Run "projector <command> --help" for a command's flags and settings.
`

// Run runs the command line args (without the program's name) with the
// Go projections code, reading settings through getenv. It returns
// flag.ErrHelp after printing help that was asked for.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, code ...*projection.Projection) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr, code: code}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return c.run(ctx, rest)
	case "list":
		return c.list(ctx, rest)
	case "status":
		return c.status(ctx, rest)
	case "rebuild":
		return c.rebuild(ctx, rest)
	case "resume":
		return c.resume(ctx, rest)
	case "parked":
		return c.parked(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// cli is one invocation of the command line.
type cli struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	code           []*projection.Projection
}
