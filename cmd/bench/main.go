// Command bench measures Strata's figures beside baselines measured in the
// same run on the same machine, and prints them as a table. It is what
// `make bench` runs; machines are noisy, so read the ratios.
//
// It starts a throwaway PostgreSQL cluster with durable commits (fsync on),
// or uses STRATA_BENCH_DATABASE_URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/harness"
)

type benchConfig struct {
	duration time.Duration
	rounds   int
	fill     int
	only     []string

	largeFill int
}

var groups = []string{"append", "read", "full", "avro", "http", "relay", "latency", "subscribe", "projector", "scavenge", "snapshot", "scale", "rebuild"}

// optionalGroups run only when -only names them: they take long.
var optionalGroups = []string{"large"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg benchConfig
	var only string
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each measured round")
	fs.IntVar(&cfg.rounds, "rounds", 5, "rounds of each comparison, alternating ours and the baseline")
	fs.IntVar(&cfg.fill, "fill", 5_000_000, "events stored before the full-store comparison")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the benchmark process to this file")
	fs.IntVar(&cfg.largeFill, "large-fill", 50_000_000, "events stored in the large group's store")
	fs.StringVar(&only, "only", strings.Join(groups, ","), "comma-separated groups to run: "+strings.Join(groups, ", ")+
		"; and, not run by default, "+strings.Join(optionalGroups, ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, g := range strings.Split(only, ",") {
		if !slices.Contains(groups, g) && !slices.Contains(optionalGroups, g) {
			return fmt.Errorf("unknown group %q; groups are %s", g, strings.Join(slices.Concat(groups, optionalGroups), ", "))
		}
		cfg.only = append(cfg.only, g)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	url := os.Getenv("STRATA_BENCH_DATABASE_URL")
	if url == "" {
		fmt.Fprintln(stderr, "starting a throwaway PostgreSQL cluster (fsync on) ...")
		c, err := harness.StartPostgres(ctx, harness.PostgresOptions{Durable: true, SharedBuffers: "1GB"})
		if err != nil {
			return err
		}
		defer c.Stop()
		url = c.URL
	}
	version, err := serverVersion(ctx, url)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Strata benchmarks — %d cores, %s, PostgreSQL %s; %d rounds of %s, medians\n\n",
		runtime.NumCPU(), runtime.Version(), version, cfg.rounds, cfg.duration)

	var t table
	run := map[string]func(context.Context, string, benchConfig, *table, io.Writer) error{
		"append":    benchAppends,
		"read":      benchStreamRead,
		"full":      benchFullStore,
		"avro":      benchAvro,
		"http":      benchHTTP,
		"relay":     benchRelay,
		"latency":   benchRelayLatency,
		"subscribe": benchSubscribe,
		"projector": benchProjector,
		"scavenge":  benchScavenge,
		"snapshot":  benchSnapshots,
		"scale":     benchScale,
		"large":     benchLarge,
		"rebuild":   benchRebuild,
	}
	for _, g := range cfg.only {
		fmt.Fprintf(stderr, "%s:\n", g)
		if err := run[g](ctx, url, cfg, &t, stderr); err != nil {
			return fmt.Errorf("%s: %w", g, err)
		}
	}
	fmt.Fprintln(stdout)
	t.print(stdout)
	return nil
}

func serverVersion(ctx context.Context, url string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var v string
	err = conn.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return v, err
}
