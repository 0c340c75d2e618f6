package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/postgres"
)

var migrateCommand = config.Command{
	Name: "writer migrate",
	Summary: `Creates the store's tables in the database, or upgrades them to this version.
Running it again is harmless; concurrent runs wait for each other.

It refuses a database whose stored transaction ids are ahead of the server's,
which is what a restore from a logical dump (pg_dump) produces: positions read
from it would be misordered. --rebaseline re-baselines such a database; position
cursors and relay checkpoints issued before it are then refused, by running
writers and relays too. It refuses a database that does not need it (whose ids
are behind the server's) unless --force is given: every reader would read the
whole store again, and the relay would halt.`,
	Settings: []config.Setting{config.DatabaseURL, config.DatabaseSchema, config.LogLevel, config.LogFormat},
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var rebaseline, force bool
	cmd := migrateCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		fs.BoolVar(&rebaseline, "rebaseline", false, "re-baseline stored transaction ids after a logical restore")
		fs.BoolVar(&force, "force", false, "with --rebaseline: re-baseline even a database that does not need it")
	}
	cfg, rest, err := config.Load(cmd, args, getenv, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("migrate takes no arguments, got %q", strings.Join(rest, " "))
	}
	if force && !rebaseline {
		return fmt.Errorf("--force goes with --rebaseline only")
	}
	store, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Schema: cfg.DatabaseSchema, Logger: cfg.Logger(stderr)})
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx, postgres.MigrateOptions{Rebaseline: rebaseline, Force: force})
	if err != nil {
		return err
	}
	switch {
	case len(applied) > 0:
		fmt.Fprintf(stdout, "schema %s migrated: applied %s\n", cfg.DatabaseSchema, strings.Join(applied, ", "))
	default:
		fmt.Fprintf(stdout, "schema %s is current\n", cfg.DatabaseSchema)
	}
	if rebaseline {
		fmt.Fprintf(stdout, "schema %s re-baselined: earlier position cursors are now refused\n", cfg.DatabaseSchema)
	}
	return nil
}
