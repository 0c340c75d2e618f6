package projector

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/runner"
)

var rebuildCommand = config.Command{
	Name: "projector rebuild",
	Summary: `projector rebuild NAME: replays every event of the projection's topics into fresh
tables (schema {STRATA_READMODEL_SCHEMA}_build_NAME) while the current read model
keeps serving and its workers keep it up to date, then swaps the new tables in, in
one transaction (blue/green). The workers then go on from where the replay ended.
Shows a progress bar with an ETA on a terminal, and a progress line every few
seconds otherwise. Interrupted (Ctrl-C, a crash), it resumes where it stopped the
next time, unless --restart.`,
	Settings: settings(readModelSettings, kafkaSettings, registrySettings),
}

func (c *cli) rebuild(ctx context.Context, args []string) error {
	var restart bool
	cmd := rebuildCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		fs.BoolVar(&restart, "restart", false, "discard an interrupted rebuild and start over")
	}
	s, name, err := c.loadNamed(ctx, cmd, args)
	if err != nil {
		return err
	}
	defer s.close()
	r := s.runnerOf(name)
	if r == nil {
		return fmt.Errorf("no projection is named %q; the projections are %s", name, names(s.runners))
	}
	if err := s.withRegistry(ctx); err != nil {
		return err
	}
	p := newProgress(c.stderr, name)
	start := time.Now()
	gen, err := r.Rebuild(ctx, runner.RebuildOptions{
		Restart: restart,
		Open: func(ctx context.Context, schema string) (*pgxpool.Pool, error) {
			return openPool(ctx, s.cfg.ReadModelURL(), schema)
		},
		Progress: p.update,
	})
	p.finish(err == nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("rebuild of %s interrupted; run it again to resume where it stopped", name)
		}
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	fmt.Fprintf(c.stdout, "%s rebuilt in %s: generation %d serves now\n", name, time.Since(start).Round(time.Millisecond), gen)
	return nil
}

func names(rs []*runner.Runner) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Projection().Name
	}
	return strings.Join(out, ", ")
}

// progress reports a rebuild's progress: a bar redrawn in place on a
// terminal, a line every lineEvery otherwise.
type progress struct {
	w         io.Writer
	name      string
	tty       bool
	start     time.Time
	last      time.Time // of the last report
	done      int64
	total     int64
	reported  int64 // done when last reported, -1 before
	lineEvery time.Duration
}

func newProgress(w io.Writer, name string) *progress {
	return &progress{w: w, name: name, tty: isTerminal(w), start: time.Now(), reported: -1, lineEvery: 5 * time.Second}
}

// isTerminal reports whether w is a character device, and not a dumb one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) update(done, total int64) {
	p.done, p.total = done, total
	now := time.Now()
	every := p.lineEvery
	if p.tty {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every && done < total {
		return
	}
	p.last = now
	p.report(now)
}

func (p *progress) report(now time.Time) {
	p.reported = p.done
	elapsed := now.Sub(p.start)
	frac := 1.0
	if p.total > 0 {
		frac = min(1, float64(p.done)/float64(p.total))
	}
	rate := float64(p.done) / max(elapsed.Seconds(), 1e-3)
	eta := "?"
	if rate > 0 && p.done > 0 {
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if p.tty {
		const width = 30
		fill := int(frac * width)
		fmt.Fprintf(p.w, "\r\033[K%s [%s%s] %3.0f%% %d/%d events  %.0f/s  ETA %s",
			p.name, strings.Repeat("█", fill), strings.Repeat("░", width-fill), 100*frac, p.done, p.total, rate, eta)
		return
	}
	fmt.Fprintf(p.w, "rebuild %s: %.0f%% (%d of %d events), %.0f events/s, ETA %s\n", p.name, 100*frac, p.done, p.total, rate, eta)
}

// finish reports the end, unless it was, and ends the bar's line.
func (p *progress) finish(ok bool) {
	if ok && p.reported != p.done {
		p.report(time.Now())
	}
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
