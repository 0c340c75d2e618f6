package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/postgres"
)

const keysUsage = `Usage: writer keys <subcommand> [flags]

  keys new FILE   write a new master key file (mode 0600), for STRATA_MASTER_KEY_FILE
  keys rewrap     wrap every data subject's key with the current master key:
                  the second step of a rotation (see the README's "Personal data")
`

var rewrapCommand = config.Command{
	Name: "writer keys rewrap",
	Summary: `Wraps every data subject's key that an earlier master key wraps with the current
one: the first line of STRATA_MASTER_KEY_FILE. A rotation without downtime:

  1. put a new key on the first line of every writer's and projector's master
     key file, keeping the old one on the next line, and restart them one at a
     time (each reads keys wrapped by either);
  2. run writer keys rewrap, with that file;
  3. remove the old line from the files, restart the processes again, and
     destroy the old key.

It rewraps in batches of 500, each in its own transaction, printing progress;
it can be stopped and run again. At the end it rewrites the keys' table so that
no copy wrapped by the old key stays in its files.`,
	Settings: []config.Setting{config.DatabaseURL, config.DatabaseSchema, config.MasterKeyFile, config.LogLevel, config.LogFormat},
}

func keys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: no subcommand given; the subcommands are new and rewrap")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "new":
		if len(rest) != 1 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprint(stderr, keysUsage)
			return errors.New("keys new takes one argument: the file to write")
		}
		if err := personal.WriteMasterKeyFile(rest[0]); err != nil {
			return fmt.Errorf("write the master key file: %w", err)
		}
		fmt.Fprintf(stdout, "wrote a new master key to %s: keep it apart from the database's backups\n", rest[0])
		return nil
	case "rewrap":
		return rewrap(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("keys: unknown subcommand %q; the subcommands are new and rewrap", args[0])
}

func rewrap(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := config.Load(rewrapCommand, args, getenv, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("keys rewrap takes no arguments, got %q", strings.Join(rest, " "))
	}
	if cfg.MasterKeyFile == "" {
		return errors.New("keys rewrap needs the master key file: set STRATA_MASTER_KEY_FILE or --master-key-file")
	}
	master, err := personal.LoadMasterKeys(cfg.MasterKeyFile)
	if err != nil {
		return err
	}
	store, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Schema: cfg.DatabaseSchema, GroupSlots: -1, Logger: cfg.Logger(stderr)})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Check(ctx); err != nil {
		return err
	}
	n, err := postgres.NewKeyStore(store, master).Rewrap(ctx, func(done int) {
		fmt.Fprintf(stdout, "rewrapped %d keys\n", done)
	})
	if err != nil {
		return fmt.Errorf("after %d keys: %w", n, err)
	}
	fmt.Fprintf(stdout, "every data subject's key is wrapped by master key %s (%d rewrapped)\n", master.Current(), n)
	return nil
}
