package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/postgres"
)

// benchEvent is an OrderItemAdded-sized event: about 60 bytes of Avro and
// two metadata fields, as a service would send.
var benchEvent = eventstore.EventData{
	Type:   "OrderItemAdded",
	Schema: 0x5ca1ab1e0ddba11,
	Data:   []byte("\x10a1b2c3d4\x10widget-x\x04\x06\x00\x063\x8e\xb0\xa4\xcd\xd1\x62\x10a1b2c3d4\x10widget-x\x04\x06"),
	Metadata: eventstore.Metadata{
		CorrelationID: "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a",
		CausationID:   "cmd-0190b1c4-3c1e-7a6e",
	},
}

// openBenchStore opens a migrated store in a fresh schema.
func openBenchStore(ctx context.Context, url, schema string, maxConns int32) (*postgres.Store, error) {
	return openBenchStoreWith(ctx, url, schema, postgres.Options{MaxConns: maxConns})
}

func openBenchStoreWith(ctx context.Context, url, schema string, opts postgres.Options) (*postgres.Store, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	opts.Schema = schema
	s, err := postgres.Open(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	if _, err := s.Migrate(ctx, postgres.MigrateOptions{}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// rawTable makes the baseline's table: the events table's columns,
// defaults, identity, constraints and indexes. The baseline inserts rows
// with versions it computes itself, checking nothing.
func rawTable(ctx context.Context, s *postgres.Store) error {
	_, err := s.Pool().Exec(ctx, "CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
	return err
}

// streamsOf gives each worker a stream of its own and tracks its version.
type streamsOf struct {
	ids      []eventstore.StreamID
	versions []int64
}

func newStreams(prefix string, workers int) *streamsOf {
	s := &streamsOf{ids: make([]eventstore.StreamID, workers), versions: make([]int64, workers)}
	for w := range s.ids {
		s.ids[w] = eventstore.MustParseStreamID(fmt.Sprintf("Bench-%s-w%d", prefix, w))
	}
	return s
}

// appendOp appends n events to the worker's stream at its exact version.
func appendOp(s *postgres.Store, st *streamsOf, n int) op {
	events := make([]eventstore.EventData, n)
	for i := range events {
		events[i] = benchEvent
	}
	return func(ctx context.Context, w int) (int, error) {
		res, err := s.Append(ctx, st.ids[w], eventstore.ExpectedVersion(st.versions[w]), events)
		if err != nil {
			return 0, err
		}
		st.versions[w] = res.LastVersion
		return n, nil
	}
}

// rawInsertOp inserts the same rows into raw_events with one statement.
func rawInsertOp(s *postgres.Store, st *streamsOf, n int) op {
	m := benchEvent.Metadata
	if n == 1 {
		return func(ctx context.Context, w int) (int, error) {
			st.versions[w]++
			_, err := s.Pool().Exec(ctx, `INSERT INTO raw_events (event_id, stream_id, category, version, type, schema_fp, data, correlation_id, causation_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				[16]byte(eventstore.NewUUIDv7()), st.ids[w].String(), st.ids[w].Category(), st.versions[w],
				benchEvent.Type, int64(benchEvent.Schema), benchEvent.Data, m.CorrelationID, m.CausationID)
			return 1, err
		}
	}
	return func(ctx context.Context, w int) (int, error) {
		ids := make([][16]byte, n)
		versions := make([]int64, n)
		data := make([][]byte, n)
		correlation, causation := make([]string, n), make([]string, n)
		for i := range ids {
			ids[i] = eventstore.NewUUIDv7()
			st.versions[w]++
			versions[i] = st.versions[w]
			data[i] = benchEvent.Data
			correlation[i], causation[i] = m.CorrelationID, m.CausationID
		}
		_, err := s.Pool().Exec(ctx, `INSERT INTO raw_events (event_id, stream_id, category, version, type, schema_fp, data, correlation_id, causation_id)
			SELECT e.id, $2, $3, e.v, $4, $5, e.data, e.corr, e.caus
			FROM unnest($1::uuid[], $6::bigint[], $7::bytea[], $8::text[], $9::text[]) AS e(id, v, data, corr, caus)`,
			ids, st.ids[w].String(), st.ids[w].Category(), benchEvent.Type, int64(benchEvent.Schema), versions, data, correlation, causation)
		return n, err
	}
}

func benchAppends(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	s, err := openBenchStore(ctx, url, "bench_append", 64)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := rawTable(ctx, s); err != nil {
		return err
	}
	// A second store on the same tables that remembers no versions, as a
	// writer process whose streams other writers appended to last: every
	// append looks the version up.
	cold, err := postgres.Open(ctx, url, postgres.Options{Schema: "bench_append", MaxConns: 64, KnownVersions: -1})
	if err != nil {
		return err
	}
	defer cold.Close()
	cases := []struct {
		workers, events int
		target          float64
		store           *postgres.Store
		note, tag       string
	}{
		{1, 1, 0.85, s, "", ""}, {16, 1, 0.85, s, "", ""}, {64, 1, 0.85, s, "", ""},
		{64, 1, 0, cold, ", versions not known", "cold"},
		{4, 100, 0.75, s, "", ""},
	}
	for _, c := range cases {
		name := fmt.Sprintf("append %d event(s), concurrency %d%s", c.events, c.workers, c.note)
		fmt.Fprintf(log, "  %s ...\n", name)
		ours := newStreams(fmt.Sprintf("c%de%d%s", c.workers, c.events, c.tag), c.workers)
		base := newStreams(fmt.Sprintf("c%de%d%s", c.workers, c.events, c.tag), c.workers)
		p, err := compare(ctx, cfg.rounds, c.workers, cfg.duration, appendOp(c.store, ours, c.events), rawInsertOp(s, base, c.events))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r := p.ratio()
		target, v := fmt.Sprintf(">= %.2f", c.target), verdict(r >= c.target)
		if c.target == 0 {
			target, v = "(for reference)", ""
		}
		t.add(row{
			name:    name + " (events/s)",
			ours:    fmt.Sprintf("%s p50 %s p99 %s", perSecond(median(p.ours)), ms(percentile(p.oursLat, 0.5)), ms(percentile(p.oursLat, 0.99))),
			base:    perSecond(median(p.base)),
			ratio:   fmt.Sprintf("%.2f", r),
			target:  target,
			verdict: v,
		})
	}
	return nil
}

func benchStreamRead(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	s, err := openBenchStore(ctx, url, "bench_read", 8)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(log, "  read a 1,000-event stream ...\n")
	stream := eventstore.MustParseStreamID("Bench-read")
	events := make([]eventstore.EventData, 1000)
	for i := range events {
		events[i] = benchEvent
	}
	if _, err := s.Append(ctx, stream, eventstore.NoStream, events); err != nil {
		return err
	}
	ours := func(ctx context.Context, _ int) (int, error) {
		page, err := s.ReadStream(ctx, stream, eventstore.StreamQuery{Limit: 1000})
		if err == nil && len(page.Events) != 1000 {
			err = fmt.Errorf("read %d events, want 1000", len(page.Events))
		}
		return 1, err
	}
	raw := func(ctx context.Context, _ int) (int, error) {
		rows, err := s.Pool().Query(ctx, `SELECT position, event_id, stream_id, version, type, schema_fp, data,
			correlation_id, causation_id, user_id, tenant_id, custom, recorded_at
			FROM events WHERE stream_id = $1 ORDER BY version LIMIT 1000`, stream.String())
		if err != nil {
			return 0, err
		}
		var (
			pos, ver, fp             int64
			id                       [16]byte
			sid, typ                 string
			data, custom             []byte
			corr, caus, user, tenant *string
			at                       time.Time
		)
		n := 0
		_, err = pgx.ForEachRow(rows, []any{&pos, &id, &sid, &ver, &typ, &fp, &data, &corr, &caus, &user, &tenant, &custom, &at}, func() error { n++; return nil })
		if err == nil && n != 1000 {
			err = fmt.Errorf("read %d rows, want 1000", n)
		}
		return 1, err
	}
	p, err := compare(ctx, cfg.rounds, 1, cfg.duration, ours, raw)
	if err != nil {
		return err
	}
	oursMs := 1000 / median(p.ours)
	baseMs := 1000 / median(p.base)
	t.add(row{
		name:    "read a 1,000-event stream (time per read)",
		ours:    fmt.Sprintf("%.2f ms p99 %s", oursMs, ms(percentile(p.oursLat, 0.99))),
		base:    fmt.Sprintf("%.2f ms", baseMs),
		ratio:   fmt.Sprintf("%.2f", 1/p.ratio()),
		target:  "<= 5 ms",
		verdict: verdict(oursMs <= 5),
	})
	return nil
}

// benchFullStore compares one-event appends at concurrency 16 on a store
// that already holds cfg.fill events with the same on an empty store.
func benchFullStore(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	full, err := openBenchStore(ctx, url, "bench_full", 64)
	if err != nil {
		return err
	}
	defer full.Close()
	empty, err := openBenchStore(ctx, url, "bench_empty", 64)
	if err != nil {
		return err
	}
	defer empty.Close()
	if err := fill(ctx, full, cfg.fill, log); err != nil {
		return err
	}
	const workers = 16
	name := fmt.Sprintf("append 1 event, concurrency %d, on %s stored events (events/s)", workers, thousands(float64(cfg.fill)))
	fmt.Fprintf(log, "  %s ...\n", name)
	p, err := compare(ctx, cfg.rounds, workers, cfg.duration,
		appendOp(full, newStreams("full", workers), 1), appendOp(empty, newStreams("empty", workers), 1))
	if err != nil {
		return err
	}
	t.add(ratioRow(name, p, "empty store", 0.9))
	return nil
}

// fill stores n events in streams of 100, with SQL on the server: the point
// is the size of the tables and indexes, not how they were filled.
func fill(ctx context.Context, s *postgres.Store, n int, log io.Writer) error {
	const perStream, chunk = 100, 5000 // streams per statement
	streams := n / perStream
	start := time.Now()
	for lo := 1; lo <= streams; lo += chunk {
		hi := min(lo+chunk-1, streams)
		_, err := s.Pool().Exec(ctx, `
			INSERT INTO events (event_id, stream_id, category, version, type, schema_fp, data, correlation_id, causation_id)
			SELECT gen_random_uuid(), 'Fill-' || i, 'Fill', v, $4, $5, $6, $7, $8
			FROM generate_series($1::int, $2::int) i, generate_series(1, $3::int) v`,
			lo, hi, perStream, benchEvent.Type, int64(benchEvent.Schema), benchEvent.Data,
			benchEvent.Metadata.CorrelationID, benchEvent.Metadata.CausationID)
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		done := hi * perStream
		elapsed := time.Since(start)
		eta := time.Duration(float64(elapsed) / float64(done) * float64(n-done))
		fmt.Fprintf(log, "\r  filling: %s of %s events, %s left   ", thousands(float64(done)), thousands(float64(n)), eta.Round(time.Second))
	}
	fmt.Fprintf(log, "\n  filled in %s; vacuuming ...\n", time.Since(start).Round(time.Second))
	_, err := s.Pool().Exec(ctx, "VACUUM ANALYZE events")
	return err
}
