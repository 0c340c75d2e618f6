package projector

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/runner"
)

var listCommand = config.Command{
	Name: "projector list",
	Summary: `Lists the projections this projector runs: the declarative ones of
STRATA_PROJECTIONS_DIR (which it parses, reporting any error with its file and
line) and the Go ones built into the program, with their categories and poison
policies. It connects to nothing.`,
	Settings: []config.Setting{config.ProjectionsDir, config.LogLevel, config.LogFormat},
}

func (c *cli) list(_ context.Context, args []string) error {
	var asJSON bool
	cmd := listCommand
	cmd.Flags = func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") }
	cfg, rest, err := config.Load(cmd, args, c.getenv, c.stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("list takes no arguments, got %q", strings.Join(rest, " "))
	}
	defs, err := c.definitions(cfg.ProjectionsDir)
	if err != nil {
		return err
	}
	if asJSON {
		type entry struct {
			Name       string   `json:"name"`
			Kind       string   `json:"kind"`
			Categories []string `json:"categories"`
			OnPoison   string   `json:"onPoison"`
			Source     string   `json:"source"`
			Queries    []string `json:"queries"` // their routes
		}
		out := []entry{}
		for _, d := range defs {
			out = append(out, entry{d.p.Name, d.kind(), d.p.Categories, string(d.p.Policy()), d.p.Source, d.queryRoutes()})
		}
		return writeJSON(c.stdout, out)
	}
	if len(defs) == 0 {
		fmt.Fprintf(c.stdout, "no projections (none built in, and no .sql files in %s)\n", cfg.ProjectionsDir)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tCATEGORIES\tON POISON\tSOURCE\tQUERIES")
	for _, d := range defs {
		var names []string
		for _, q := range d.queries() {
			names = append(names, q.Name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.p.Name, d.kind(), strings.Join(d.p.Categories, ","), d.p.Policy(), d.p.Source, strings.Join(names, ","))
	}
	return tw.Flush()
}

var statusCommand = config.Command{
	Name: "projector status",
	Summary: `Shows each projection's state (running, halted by a poison event, or new), its
lag per partition (Kafka's last stable offset minus the next offset to apply), the
events applied per second over --sample, the events applied and parked in the
serving generation, and a rebuild in progress. With --watch it repeats.`,
	Settings: settings(readModelSettings, kafkaSettings),
}

func (c *cli) status(ctx context.Context, args []string) error {
	var (
		asJSON bool
		watch  time.Duration
		sample time.Duration
	)
	cmd := statusCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		fs.DurationVar(&watch, "watch", 0, "repeat at this interval until interrupted; 0 shows the status once")
		fs.DurationVar(&sample, "sample", time.Second, "measure events/s over this long before the first report; 0 skips it")
	}
	cfg, rest, err := config.Load(cmd, args, c.getenv, c.stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("status takes no arguments, got %q", strings.Join(rest, " "))
	}
	if watch < 0 || sample < 0 {
		return fmt.Errorf("--watch and --sample must not be negative")
	}
	defs, err := c.definitions(cfg.ProjectionsDir)
	if err != nil {
		return err
	}
	s, err := open(ctx, cfg, defs, cfg.Logger(c.stderr))
	if err != nil {
		return err
	}
	defer s.close()
	statuses := func() ([]runner.Status, error) {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return s.monitor.Statuses(sctx)
	}
	if sample > 0 {
		if _, err := statuses(); err != nil {
			return err
		}
		if err := sleep(ctx, sample); err != nil {
			return nil
		}
	}
	for {
		all, err := statuses()
		if err != nil {
			return err
		}
		if asJSON {
			if err := writeJSON(c.stdout, all); err != nil {
				return err
			}
		} else {
			if watch > 0 {
				fmt.Fprintf(c.stdout, "— %s\n", time.Now().Format(time.TimeOnly))
			}
			printStatuses(c.stdout, all)
		}
		if watch == 0 {
			return nil
		}
		if err := sleep(ctx, watch); err != nil {
			return nil
		}
	}
}

// printStatuses writes statuses for people.
func printStatuses(w io.Writer, all []runner.Status) {
	if len(all) == 0 {
		fmt.Fprintln(w, "no projections")
		return
	}
	for _, s := range all {
		rate := "-"
		if s.EventsPerSecond != nil {
			rate = fmt.Sprintf("%.1f", *s.EventsPerSecond)
		}
		fmt.Fprintf(w, "%s: %s, generation %d, on poison %s\n", s.Name, strings.ToUpper(s.State), s.Generation, orDash(s.Policy))
		fmt.Fprintf(w, "  lag %d events · %s events/s · %d applied · %d parked\n", s.Lag, rate, s.Applied, s.Parked)
		if h := s.Halted; h != nil {
			fmt.Fprintf(w, "  halted at %s: %s[%d] offset %d, %s version %d (%s): %s\n",
				h.At.Local().Format(time.DateTime), h.Topic, h.Partition, h.Offset, h.StreamID, h.Version, h.Type, h.Error)
			fmt.Fprintf(w, "  fix the cause, then: projector resume %s\n", s.Name)
		}
		if b := s.Rebuild; b != nil {
			pct := 0.0
			if b.Total > 0 {
				pct = 100 * float64(b.Done) / float64(b.Total)
			}
			fmt.Fprintf(w, "  rebuilding generation %d since %s: %d of %d events (%.0f%%)\n",
				b.Generation, b.StartedAt.Local().Format(time.DateTime), b.Done, b.Total, pct)
		}
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		for _, p := range s.Partitions {
			end := "?"
			if p.End >= 0 {
				end = fmt.Sprint(p.End)
			}
			fmt.Fprintf(tw, "    %s[%d]\toffset %d\tend %s\tlag %d\t\n", p.Topic, p.Partition, p.Offset, end, p.Lag)
		}
		tw.Flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var resumeCommand = config.Command{
	Name: "projector resume",
	Summary: `projector resume NAME: resumes a projection that a poison event or a gap halted. Its
workers try the event again (fix the projection or the data first), and go on from there. A gap (an
event whose stream's earlier versions were never applied) is accepted: the event is applied, and the
versions missing are dropped should they come later; rebuild instead to apply what the topics hold.`,
	Settings: readModelSettings,
}

func (c *cli) resume(ctx context.Context, args []string) error {
	s, name, err := c.loadNamed(ctx, resumeCommand, args)
	if err != nil {
		return err
	}
	defer s.close()
	h, err := s.monitor.Resume(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case h == nil:
		fmt.Fprintf(c.stdout, "%s was not halted\n", name)
	case h.GapAfter != nil:
		fmt.Fprintf(c.stdout, "%s resumed: the gap in %s is accepted, and its workers go on with version %d, "+
			"which halted it. Should the versions missing (%d to %d) come later, they are dropped as applied before; "+
			"a rebuild applies all that the topics hold.\n", name, h.StreamID, h.Version, *h.GapAfter+1, h.Version-1)
	default:
		fmt.Fprintf(c.stdout, "%s resumed: its workers go on with the event that halted it\n", name)
	}
	return nil
}

var parkedCommand = config.Command{
	Name: "projector parked",
	Summary: `projector parked NAME: lists the events a projection with the park policy set
aside (its dead letters, table parked_events of the read-model schema), oldest first,
with the error each caused. With --retry ID it applies parked event ID again, read
back from its Kafka record (fix what made it fail first; if it fails again it stays
parked, with the new error); with --discard ID it removes it for good.`,
	Settings: settings(readModelSettings, kafkaSettings, registrySettings),
}

func (c *cli) parked(ctx context.Context, args []string) error {
	var (
		asJSON         bool
		limit          int
		retry, discard int64
	)
	cmd := parkedCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		fs.IntVar(&limit, "limit", 100, "show at most this many")
		fs.Int64Var(&retry, "retry", 0, "apply the parked event of this id again")
		fs.Int64Var(&discard, "discard", 0, "discard the parked event of this id for good")
	}
	s, name, err := c.loadNamed(ctx, cmd, args)
	if err != nil {
		return err
	}
	defer s.close()
	switch {
	case limit < 1:
		return fmt.Errorf("--limit must be at least 1")
	case retry < 0 || discard < 0 || (retry > 0 && discard > 0):
		return fmt.Errorf("--retry and --discard take a parked event's id (see projector parked %s), one of them at a time", name)
	case s.runnerOf(name) == nil:
		return fmt.Errorf("no projection is named %q; the projections are %s", name, names(s.runners))
	case discard > 0:
		p, err := s.monitor.Discard(ctx, name, discard)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "#%d discarded: %s version %d %s will not be applied (a rebuild meets it again)\n", p.ID, p.StreamID, p.Version, p.Type)
		return nil
	case retry > 0:
		if err := s.withRegistry(ctx); err != nil {
			return err
		}
		p, err := s.monitor.RetryParked(ctx, name, retry)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "#%d applied: %s version %d %s is no longer parked\n", p.ID, p.StreamID, p.Version, p.Type)
		return nil
	}
	parked, err := s.monitor.Parked(ctx, name, limit)
	if err != nil {
		return err
	}
	if asJSON {
		if parked == nil {
			parked = []runner.Parked{}
		}
		return writeJSON(c.stdout, parked)
	}
	if len(parked) == 0 {
		fmt.Fprintf(c.stdout, "%s has no parked events\n", name)
		return nil
	}
	for _, p := range parked {
		fmt.Fprintf(c.stdout, "#%d %s  %s[%d] offset %d  %s version %d %s  after %d attempts\n    %s\n",
			p.ID, p.ParkedAt.Local().Format(time.DateTime), p.Topic, p.Partition, p.Offset, p.StreamID, p.Version, p.Type, p.Attempts, p.Error)
	}
	return nil
}

// loadNamed loads a command that takes one projection name, before or
// after its flags, and opens the system with every projection defined
// (they carry the read-model schema and topics).
func (c *cli) loadNamed(ctx context.Context, cmd config.Command, args []string) (*system, string, error) {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	cfg, rest, err := config.Load(cmd, args, c.getenv, c.stdout)
	if err != nil {
		return nil, "", err
	}
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if name == "" || len(rest) > 0 {
		return nil, "", fmt.Errorf("%s takes one projection name (see %s --help)", cmd.Name, cmd.Name)
	}
	defs, err := c.definitions(cfg.ProjectionsDir)
	if err != nil {
		return nil, "", err
	}
	s, err := open(ctx, cfg, defs, cfg.Logger(c.stderr))
	return s, name, err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// sleep waits d, or returns ctx's error when it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
