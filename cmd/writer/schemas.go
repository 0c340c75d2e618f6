package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
)

var schemasCommand = config.Command{
	Name: "writer schemas apply",
	Summary: `Registers the event schemas of the schemas directory (STRATA_SCHEMAS_DIR):
{Name}.avsc is version 1 of the record Name, {Name}.vN.avsc its version N. The
subject is the record's full name. A file whose canonical form the subject
already holds is unchanged; a new one becomes the subject's next version once
it passes the subject's compatibility level (FULL_TRANSITIVE unless configured
otherwise). Every file is checked before anything is registered: one that is
incompatible fails the whole run, naming the file and the rule it breaks.
Docs, defaults and aliases are not part of the canonical form: a file that
changes only them is unchanged.

With STRATA_REGISTRY_URL it registers in that external Confluent-compatible
registry; otherwise in the embedded one, in the store's database, in one
transaction (run "writer migrate" first). --dry-run prints the plan only.`,
	Settings: []config.Setting{config.DatabaseURL, config.DatabaseSchema, config.SchemasDir, config.RegistryURL,
		config.LogLevel, config.LogFormat},
}

// applier is what schemas apply needs of a registry: the embedded
// *registry.Registry and the external *registry.Client both are one.
type applier interface {
	Apply(ctx context.Context, files []registry.SchemaFile, dryRun bool) ([]registry.Applied, error)
}

func schemas(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "apply" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-help" || args[0] == "-h" || args[0] == "help") {
			args = []string{"apply", "--help"}
		} else {
			fmt.Fprint(stderr, "Usage: writer schemas apply [--dry-run] [flags]\n")
			if len(args) == 0 {
				return errors.New("schemas: no subcommand given; the subcommand is apply")
			}
			return fmt.Errorf("schemas: unknown subcommand %q; the subcommand is apply", args[0])
		}
	}
	var dryRun bool
	cmd := schemasCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "check the files and print the plan, registering nothing")
	}
	cfg, rest, err := config.Load(cmd, args[1:], getenv, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("schemas apply takes no arguments, got %q", strings.Join(rest, " "))
	}
	files, err := registry.ReadSchemaDir(cfg.SchemasDir)
	if err != nil {
		return fmt.Errorf("schemas apply: %w", err)
	}
	files = registry.WithSystemSchemas(files)

	var reg applier
	where := "the embedded registry (schema " + cfg.DatabaseSchema + ")"
	if cfg.RegistryURL != "" {
		if reg, err = registry.NewClient(cfg.RegistryURL, registry.ClientOptions{}); err != nil {
			return err
		}
		where = "the registry at " + config.Redact(cfg.RegistryURL)
	} else {
		logger := cfg.Logger(stderr)
		store, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Schema: cfg.DatabaseSchema, Logger: logger})
		if err != nil {
			return err
		}
		defer store.Close()
		if err := store.Check(ctx); err != nil {
			return fmt.Errorf("schemas apply: %w", err)
		}
		reg = registry.New(postgres.NewRegistryStore(store), registry.Options{Logger: logger})
	}

	applied, err := reg.Apply(ctx, files, dryRun)
	if err != nil {
		return fmt.Errorf("schemas apply: nothing was registered: %w", err)
	}
	report(stdout, applied, dryRun, where)
	return nil
}

// report prints one line per file and a summary.
func report(w io.Writer, applied []registry.Applied, dryRun bool, where string) {
	var registered, unchanged int
	for _, a := range applied {
		id := ""
		if a.ID > 0 {
			id = fmt.Sprintf(" (schema id %d)", a.ID)
		}
		switch {
		case !a.New:
			unchanged++
			fmt.Fprintf(w, "unchanged      %s version %d%s: %s\n", a.Subject, a.Version, id, a.File.Path)
		case dryRun:
			registered++
			fmt.Fprintf(w, "would register %s version %d%s: %s\n", a.Subject, a.Version, id, a.File.Path)
		default:
			registered++
			fmt.Fprintf(w, "registered     %s version %d%s: %s\n", a.Subject, a.Version, id, a.File.Path)
		}
	}
	if dryRun {
		fmt.Fprintf(w, "dry run against %s: %d to register, %d unchanged; nothing was registered\n", where, registered, unchanged)
		return
	}
	fmt.Fprintf(w, "%s: %d registered, %d unchanged\n", where, registered, unchanged)
}
