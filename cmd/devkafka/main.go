// Command devkafka runs an embedded Kafka-protocol broker (franz-go's
// kfake) for development and the demo: transactions, consumer groups, and
// its state kept in a directory across restarts; topics are created when
// first written to, as Kafka does by default. It is not Apache Kafka;
// deploy/compose runs the real one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/strata-events/strata/internal/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "devkafka: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devkafka", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: devkafka [flags]\n\nRuns an embedded Kafka-protocol broker for development, on 127.0.0.1.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	port := fs.Int("port", 9092, "port on 127.0.0.1; 0 picks a free one")
	dir := fs.String("data-dir", ".data/kafka", `directory that keeps the broker's state across restarts; "" keeps it in memory`)
	partitions := fs.Int("partitions", 12, "partitions of topics created without a count")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir != "" {
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return err
		}
		*dir = abs
	}
	k, err := harness.StartKafka(harness.KafkaOptions{Port: *port, Dir: *dir, Partitions: *partitions, AutoCreateTopics: true})
	if err != nil {
		return err
	}
	where := "in memory"
	if *dir != "" {
		where = "in " + *dir
	}
	fmt.Fprintf(stdout, "Kafka-protocol broker on %s (state %s); Ctrl-C stops it\n", k.Brokers()[0], where)
	<-ctx.Done()
	k.Stop()
	return nil
}
