package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/postgres"
)

// smallStore is the events of the store the large one is compared with.
const smallStore = 100_000

// largePages is how many pages of eventstore.MaxReadLimit events the
// relay's read reads on, from the middle cursor: fewer than half of the
// small store holds.
const largePages = 20

// largeCategory is the category read from the middle: a tenth of the
// store (see fillLarge).
const largeCategory = "Large0"

// middle is where a store's first half ends: the cursors of $all and of
// largeCategory at that point, and a stream of the first half.
type middle struct {
	all, category eventstore.Cursor
	stream        eventstore.StreamID
}

// benchLarge compares a store of cfg.largeFill events with one of
// smallStore events, both filled the same way in the same run: one-event
// appends, reads of a stream, of a category and of $all from a cursor in
// the middle of the store, and the relay's read of pages on from there.
// The large store's schema is dropped at the end.
func benchLarge(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	if cfg.largeFill < smallStore {
		return fmt.Errorf("-large-fill %d is smaller than the small store's %s events", cfg.largeFill, thousands(smallStore))
	}
	stores := map[string]*postgres.Store{}
	for _, schema := range []string{"bench_large_small", "bench_large"} {
		s, err := openBenchStore(ctx, url, schema, 64)
		if err != nil {
			return err
		}
		defer s.Close()
		// Dropped even when the run is interrupted: the large one takes
		// tens of gigabytes.
		defer dropSchema(context.WithoutCancel(ctx), s, schema)
		stores[schema] = s
	}
	small, large := stores["bench_large_small"], stores["bench_large"]
	smallMid, err := fillLarge(ctx, small, smallStore, log)
	if err != nil {
		return err
	}
	start := time.Now()
	largeMid, err := fillLarge(ctx, large, cfg.largeFill, log)
	if err != nil {
		return err
	}
	var bytes int64
	if err := large.Pool().QueryRow(ctx, "SELECT pg_total_relation_size('events')").Scan(&bytes); err != nil {
		return err
	}
	size := thousands(float64(cfg.largeFill))
	t.add(row{
		name: fmt.Sprintf("store of %s events: events table and indexes", size),
		ours: fmt.Sprintf("%.1f GB, filled and vacuumed in %s", float64(bytes)/(1<<30), time.Since(start).Round(time.Second)),
	})

	const workers = 16
	name := fmt.Sprintf("append 1 event, concurrency %d, on %s events (events/s)", workers, size)
	fmt.Fprintf(log, "  %s ...\n", name)
	p, err := compare(ctx, cfg.rounds, workers, cfg.duration,
		appendOp(large, newStreams("large", workers), 1), appendOp(small, newStreams("small", workers), 1))
	if err != nil {
		return err
	}
	t.add(ratioRow(name, p, thousands(smallStore)+" events", 0.9))

	reads := []struct {
		name        string
		most        float64 // the most ratio of time to the small store's
		read        func(s *postgres.Store, m middle) op
		pages, each int // pages a read reads, events a page holds
	}{
		{"read a 100-event stream", 2, streamRead, 1, 100},
		{"read 1,000 events of a category from the middle", 2, categoryRead, 1, eventstore.MaxReadLimit},
		{"read 1,000 events of $all from the middle", 2, allRead(1), 1, eventstore.MaxReadLimit},
		{fmt.Sprintf("relay's read: %d pages of 1,000 of $all from the middle, per page", largePages), 1.2, allRead(largePages), largePages, eventstore.MaxReadLimit},
	}
	for _, r := range reads {
		name := fmt.Sprintf("%s, on %s events (time per read)", r.name, size)
		fmt.Fprintf(log, "  %s ...\n", name)
		p, err := compare(ctx, cfg.rounds, 1, cfg.duration, r.read(large, largeMid), r.read(small, smallMid))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// The ops count pages: per page, time is the inverse of the rate.
		oursMs, baseMs, ratio := 1000/median(p.ours), 1000/median(p.base), 1/p.ratio()
		t.add(row{
			name:    name,
			ours:    fmt.Sprintf("%.2f ms p99 %s", oursMs, ms(percentile(p.oursLat, 0.99)/time.Duration(r.pages))),
			base:    fmt.Sprintf("%.2f ms (%s events)", baseMs, thousands(smallStore)),
			ratio:   fmt.Sprintf("%.2f", ratio),
			target:  fmt.Sprintf("<= %.2f", r.most),
			verdict: verdict(ratio <= r.most),
		})
	}
	return nil
}

// streamRead reads the middle stream whole.
func streamRead(s *postgres.Store, m middle) op {
	return func(ctx context.Context, _ int) (int, error) {
		page, err := s.ReadStream(ctx, m.stream, eventstore.StreamQuery{Limit: 100})
		if err == nil && len(page.Events) != 100 {
			err = fmt.Errorf("read %d events of %s, want 100", len(page.Events), m.stream)
		}
		return 1, err
	}
}

// categoryRead reads a page of largeCategory from the middle.
func categoryRead(s *postgres.Store, m middle) op {
	return func(ctx context.Context, _ int) (int, error) {
		page, err := s.ReadCategory(ctx, largeCategory, m.category, eventstore.MaxReadLimit)
		if err == nil && len(page.Events) != eventstore.MaxReadLimit {
			err = fmt.Errorf("read %d events of %s, want %d", len(page.Events), largeCategory, eventstore.MaxReadLimit)
		}
		return 1, err
	}
}

// allRead reads pages of $all from the middle, each from the last one's
// cursor, as the relay does; it counts pages.
func allRead(pages int) func(s *postgres.Store, m middle) op {
	return func(s *postgres.Store, m middle) op {
		return func(ctx context.Context, _ int) (int, error) {
			cursor := m.all
			for range pages {
				page, err := s.ReadAll(ctx, cursor, eventstore.MaxReadLimit)
				if err != nil {
					return 0, err
				}
				if len(page.Events) != eventstore.MaxReadLimit {
					return 0, fmt.Errorf("read %d events of $all, want %d", len(page.Events), eventstore.MaxReadLimit)
				}
				cursor = page.Next
			}
			return pages, nil
		}
	}
}

// fillLarge stores n events (rounded down to a hundred) in streams of
// 100, a transaction each, as appends of whole streams would, with SQL on
// the server; halfway it takes the cursors of the middle. Stream i is in
// category Large{i%10}. Event ids are ordered, as the writer's UUIDv7 are,
// so that the id index grows at its end. The fill's own connection
// commits without waiting for the flush: the point is the size of the
// tables and indexes, not how they were filled.
func fillLarge(ctx context.Context, s *postgres.Store, n int, log io.Writer) (middle, error) {
	var m middle
	cfg, err := pgx.ParseConfig(s.Pool().Config().ConnString())
	if err != nil {
		return m, err
	}
	cfg.RuntimeParams["synchronous_commit"] = "off"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return m, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	const perStream, chunk = 100, 5000 // streams per statement
	streams := n / perStream
	half := streams / 2
	m.stream = eventstore.MustParseStreamID(fmt.Sprintf("Large%d-%d", half%10, half))
	start := time.Now()
	for lo, hi := 1, 0; lo <= streams; lo = hi + 1 {
		hi = min(lo+chunk-1, streams)
		if lo <= half && hi > half {
			hi = half // the middle ends a statement
		}
		if err := conn.PgConn().Exec(ctx, fillSQL(s.Schema(), lo, hi)).Close(); err != nil {
			return m, fmt.Errorf("fill: %w", err)
		}
		if hi == half {
			if m.all, err = s.Head(ctx, ""); err != nil {
				return m, err
			}
			if m.category, err = s.Head(ctx, largeCategory); err != nil {
				return m, err
			}
		}
		done := hi * perStream
		elapsed := time.Since(start)
		eta := time.Duration(float64(elapsed) / float64(done) * float64(streams*perStream-done))
		fmt.Fprintf(log, "\r  filling %s: %s of %s events, %s left   ", s.Schema(), thousands(float64(done)), thousands(float64(streams*perStream)), eta.Round(time.Second))
	}
	fmt.Fprintf(log, "\n  filled in %s; vacuuming ...\n", time.Since(start).Round(time.Second))
	_, err = conn.Exec(ctx, "VACUUM ANALYZE "+pgx.Identifier{s.Schema(), "events"}.Sanitize())
	return m, err
}

// fillSQL stores streams lo to hi, each of 100 events in a transaction of
// its own. A DO block takes no parameters: its constants are literals.
func fillSQL(schema string, lo, hi int) string {
	e := benchEvent
	return fmt.Sprintf(`DO $fill$
BEGIN
	FOR i IN %d..%d LOOP
		INSERT INTO %s (event_id, stream_id, category, version, type, schema_fp, data, correlation_id, causation_id)
		SELECT ('00000000' || lpad(to_hex(i::bigint * 100 + v), 24, '0'))::uuid, 'Large' || i %% 10 || '-' || i, 'Large' || i %% 10, v,
			%s, %d, '\x%s'::bytea, %s, %s
		FROM generate_series(1, 100) v;
		COMMIT;
	END LOOP;
END
$fill$`, lo, hi, pgx.Identifier{schema, "events"}.Sanitize(), literal(e.Type), int64(e.Schema), hex.EncodeToString(e.Data),
		literal(e.Metadata.CorrelationID), literal(e.Metadata.CausationID))
}

// literal quotes s as an SQL string constant.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
