package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// An append is one statement: one round trip and one commit, whatever the
// number of events. The CTE b yields the stream's version before the
// append, or no row when the expectation fails; the events get versions
// b.v+1, b.v+2, ... The unique index on (stream_id, version) makes two
// appends at the same version impossible: the later one fails with a
// unique violation, which the expectation turns into a wrong version (or,
// for "any", into another try).
//
// $1 stream id, $2 category, $3..$14 the events (scalars for one event,
// arrays for more), $15 the exact expected version.
var appendBase = map[eventstore.ExpectedVersion]string{
	eventstore.NoStream:     `SELECT 0::bigint AS v`,
	knownExact:              `SELECT $15::bigint AS v`,
	eventstore.Any:          `SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = $1`,
	eventstore.StreamExists: `SELECT max(version) AS v FROM events WHERE stream_id = $1 HAVING max(version) > 0`,
	exact:                   `SELECT $15::bigint AS v WHERE EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND version = $15)`,
}

// exact stands for every expected version N >= 1 in appendBase, and
// knownExact for one whose version N is known to be committed (see
// knownVersions), which needs no look-up.
const (
	exact      eventstore.ExpectedVersion = 1
	knownExact eventstore.ExpectedVersion = 2
)

const (
	oneEvent = `SELECT $3::uuid AS id, $4::text AS type, $5::bigint AS fp, $6::bytea AS data,
		$7::text AS correlation, $8::text AS causation, $9::text AS usr, $10::text AS tenant, $11::jsonb AS custom,
		$12::text AS subject, $13::text AS traceparent, $14::text AS tracestate, 1::bigint AS ord`
	manyEvents = `SELECT * FROM unnest($3::uuid[], $4::text[], $5::bigint[], $6::bytea[],
		$7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::text[], $13::text[], $14::text[])
		WITH ORDINALITY AS u(id, type, fp, data, correlation, causation, usr, tenant, custom, subject, traceparent, tracestate, ord)`
)

// notHardDeleted guards every append: a hard-deleted stream ($1) takes no
// more events. It is one probe of a small table's primary key.
const notHardDeleted = `NOT EXISTS (SELECT 1 FROM stream_deletions d WHERE d.stream_id = $1 AND d.hard)`

// appendSQL holds the statement for each expectation, one event or many.
var appendSQL = func() map[[2]int]string {
	m := map[[2]int]string{}
	for expected, base := range appendBase {
		for many, source := range []string{oneEvent, manyEvents} {
			m[[2]int{int(expected), many}] = `WITH b AS (SELECT * FROM (` + base + `) b0 WHERE ` + notHardDeleted + `)
INSERT INTO events (event_id, stream_id, category, version, type, schema_fp, data,
	correlation_id, causation_id, user_id, tenant_id, custom, data_subject, trace_parent, trace_state)
SELECT e.id, $1, $2, b.v + e.ord, e.type, e.fp, e.data, e.correlation, e.causation, e.usr, e.tenant, e.custom, e.subject,
	e.traceparent, e.tracestate
FROM b, (` + source + `) e
ORDER BY e.ord
RETURNING position, version`
		}
	}
	return m
}()

// maxAnyTries bounds the tries of an "any" append that keeps losing races
// for the next version to other appends of the same stream.
const maxAnyTries = 1000

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := s.checkDirect(ctx); err != nil {
		return eventstore.AppendResult{}, translate(err)
	}
	events = eventstore.AssignIDs(events)
	for try := 1; ; try++ {
		known := expected > 0 && s.versions.get(stream.String()) >= int64(expected)
		var res eventstore.AppendResult
		var err error
		if len(events) == 1 && try == 1 && s.groups != nil {
			res, err = s.appendGrouped(ctx, stream, expected, known, events[0])
		} else {
			res, err = s.appendOnce(ctx, stream, expected, known, events)
		}
		if err == nil {
			s.versions.saw(stream.String(), res.LastVersion)
			return res, nil
		}
		if !isConflict(err) {
			return eventstore.AppendResult{}, translate(err)
		}
		// A retry of an append that succeeded conflicts one way or the
		// other: look for the events before reporting the conflict.
		replay, found, lookErr := s.findStored(ctx, stream, events)
		switch {
		case lookErr != nil:
			return eventstore.AppendResult{}, translate(lookErr)
		case found:
			s.versions.saw(stream.String(), replay.LastVersion)
			return replay, nil
		case isUniqueViolation(err, "events_stream_version") && (expected == eventstore.Any || expected == eventstore.StreamExists) && try < maxAnyTries:
			continue // another append took the version just now
		}
		switch deleted, err := hardDeletion(ctx, s.pool, stream); {
		case err != nil:
			return eventstore.AppendResult{}, translate(err)
		case deleted != nil:
			return eventstore.AppendResult{}, deleted
		}
		return eventstore.AppendResult{}, s.conflictError(ctx, stream, expected, err)
	}
}

// appendOnce runs the append on a connection of its own, so that if the
// connection fails after the statement was sent, the outcome can be
// settled with the server process that ran it (see settle).
func (s *Store) appendOnce(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, known bool, events []eventstore.EventData) (eventstore.AppendResult, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	b := backendOf(conn)
	res, err := appendIn(ctx, conn, stream, expected, known, events)
	conn.Release()
	if err != nil && ambiguous(ctx, err) {
		return s.settle(stream, events, b, err)
	}
	return res, err
}

func isConflict(err error) bool {
	var wrong *eventstore.WrongExpectedVersionError
	return errors.As(err, &wrong) || isUniqueViolation(err, "events_stream_version") || isUniqueViolation(err, "events_event_id")
}

// conflictError reports a conflict that is not a replay.
func (s *Store) conflictError(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, err error) error {
	var wrong *eventstore.WrongExpectedVersionError
	switch {
	case errors.As(err, &wrong):
		s.versions.saw(stream.String(), wrong.Actual)
		return wrong
	case isUniqueViolation(err, "events_stream_version"):
		actual, err := streamVersion(ctx, s.pool, stream)
		if err != nil {
			return translate(err)
		}
		s.versions.saw(stream.String(), actual)
		return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	// An id conflict that findStored did not explain: the other event
	// is gone, which cannot happen without deletes.
	return fmt.Errorf("append: event id conflict without a stored event: %w", err)
}

// appendIn stores events with one statement on q, a pool or a transaction.
// known says that version expected (N >= 1) is known to be committed. It
// returns *WrongExpectedVersionError when the expectation fails before the
// insert, and the driver's error otherwise (a unique violation when another
// append took a version or an id first).
func appendIn(ctx context.Context, q querier, stream eventstore.StreamID, expected eventstore.ExpectedVersion, known bool, events []eventstore.EventData) (eventstore.AppendResult, error) {
	n := len(events)
	kind := expected
	switch {
	case expected > 0 && known:
		kind = knownExact
	case expected > 0:
		kind = exact
	}
	args := make([]any, 0, 15)
	args = append(args, stream.String(), stream.Category())
	if n == 1 {
		e := events[0]
		m := e.Metadata
		args = append(args, [16]byte(e.ID), e.Type, int64(e.Schema), e.Data,
			orNull(m.CorrelationID), orNull(m.CausationID), orNull(m.UserID), orNull(m.TenantID), customJSON(m.Custom),
			orNull(m.DataSubject), orNull(m.TraceParent), orNull(m.TraceState))
	} else {
		ids := make([][16]byte, n)
		types := make([]string, n)
		fps := make([]int64, n)
		data := make([][]byte, n)
		correlation, causation, user, tenant := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		custom := make([]json.RawMessage, n)
		subject, traceParent, traceState := make([]*string, n), make([]*string, n), make([]*string, n)
		for i, e := range events {
			ids[i], types[i], fps[i], data[i] = e.ID, e.Type, int64(e.Schema), e.Data
			m := &events[i].Metadata
			correlation[i], causation[i], user[i], tenant[i] = nullable(&m.CorrelationID), nullable(&m.CausationID), nullable(&m.UserID), nullable(&m.TenantID)
			custom[i], subject[i] = customJSON(m.Custom), nullable(&m.DataSubject)
			traceParent[i], traceState[i] = nullable(&m.TraceParent), nullable(&m.TraceState)
		}
		args = append(args, ids, types, fps, data, correlation, causation, user, tenant, custom, subject, traceParent, traceState)
	}
	if expected > 0 {
		args = append(args, int64(expected))
	}
	sql := appendSQL[[2]int{int(kind), min(n-1, 1)}]
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	res := eventstore.AppendResult{Stream: stream, Events: make([]eventstore.AppendedEvent, 0, n)}
	var position, version int64
	_, err = pgx.ForEachRow(rows, []any{&position, &version}, func() error {
		res.Events = append(res.Events, eventstore.AppendedEvent{Version: version, GlobalPosition: position})
		return nil
	})
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if len(res.Events) == 0 {
		actual, err := streamVersion(ctx, q, stream)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	if len(res.Events) != n {
		return eventstore.AppendResult{}, fmt.Errorf("append: the database stored %d events of %d", len(res.Events), n)
	}
	// RETURNING gives rows in insertion order, which is version order.
	for i := range res.Events {
		res.Events[i].ID = events[i].ID
	}
	res.FirstVersion, res.LastVersion = res.Events[0].Version, res.Events[n-1].Version
	return res, nil
}

// customJSON returns the custom metadata as JSON, or nil (NULL) when empty.
func customJSON(custom map[string]string) json.RawMessage {
	if len(custom) == 0 {
		return nil
	}
	b, _ := json.Marshal(custom) // a map of strings always marshals
	return b
}

// orNull is s, or nil (NULL) when s is empty.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullable is s, or nil (NULL) when *s is empty.
func nullable(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}

func streamVersion(ctx context.Context, q querier, stream eventstore.StreamID) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1", stream.String()).Scan(&v)
	return v, err
}

// storedEvent is what findStored compares an event with.
type storedEvent struct {
	streamID     string
	version, pos int64
	typ          string
	fp           int64
	data         []byte
}

// findStored looks for events already stored under the ids of events. It
// reports found when all of them are stored in stream, in this order at
// consecutive versions, with the same type, schema and data: the append was
// done before, and its result is returned. When only some are, or any
// differs, it returns a *DuplicateEventIDError; when all are placed so and
// only schemas or data differ, the error holds the stored events (Stored),
// for a layer that knows the schemas to compare. When none is, found is
// false.
func (s *Store) findStored(ctx context.Context, stream eventstore.StreamID, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	ids := make([][16]byte, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT event_id, stream_id, version, position, type, schema_fp, data
		FROM events WHERE event_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return eventstore.AppendResult{}, false, err
	}
	found := make(map[eventstore.UUID]storedEvent, len(events))
	var id [16]byte
	var st storedEvent
	_, err = pgx.ForEachRow(rows, []any{&id, &st.streamID, &st.version, &st.pos, &st.typ, &st.fp, &st.data}, func() error {
		found[id] = st
		return nil
	})
	if err != nil || len(found) == 0 {
		return eventstore.AppendResult{}, false, err
	}
	res := eventstore.AppendResult{Stream: stream, Replayed: true}
	differs := false
	for i, e := range events {
		got, ok := found[e.ID]
		placed := ok && got.streamID == stream.String() && got.typ == e.Type &&
			(i == 0 || got.version == res.Events[i-1].Version+1)
		if !placed {
			return eventstore.AppendResult{}, false, duplicateError(found, events, nil)
		}
		differs = differs || got.fp != int64(e.Schema) || !bytes.Equal(got.data, e.Data)
		res.Events = append(res.Events, eventstore.AppendedEvent{ID: e.ID, Version: got.version, GlobalPosition: got.pos})
	}
	if differs {
		stored := make([]eventstore.RecordedEvent, len(events))
		for i, e := range events {
			got := found[e.ID]
			stored[i] = eventstore.RecordedEvent{ID: e.ID, StreamID: stream, Type: got.typ, Version: got.version,
				GlobalPosition: got.pos, Schema: eventstore.Fingerprint(got.fp), Data: got.data}
		}
		return eventstore.AppendResult{}, false, duplicateError(found, events, stored)
	}
	res.FirstVersion, res.LastVersion = res.Events[0].Version, res.Events[len(res.Events)-1].Version
	return res, true, nil
}

// duplicateError names the first event of the append whose id is stored,
// with the stored events when findStored found them all in place.
func duplicateError(found map[eventstore.UUID]storedEvent, events []eventstore.EventData, stored []eventstore.RecordedEvent) error {
	for _, e := range events {
		if got, ok := found[e.ID]; ok {
			holder, _ := eventstore.ParseStreamID(got.streamID)
			return &eventstore.DuplicateEventIDError{ID: e.ID, Stream: holder, Stored: stored}
		}
	}
	return eventstore.ErrDuplicateEventID
}

// AppendInTx appends in a transaction that stays open while hold runs, and
// commits it after, or rolls it back when hold returns an error (which it
// then returns). It is for tests and tools that need to hold a commit back
// — a late commit, a long transaction — and not for services: an open
// transaction holds back the readability of nothing but its own events,
// but it holds its stream's next version. A concurrent append that took
// the version first is a *WrongExpectedVersionError.
func (s *Store) AppendInTx(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.EventData, hold func() error) error {
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return err
	}
	events = eventstore.AssignIDs(events)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return translate(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := appendIn(ctx, tx, stream, expected, false, events); err != nil {
		if isUniqueViolation(err, "events_stream_version") {
			return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected}
		}
		return translate(err)
	}
	if err := hold(); err != nil {
		return err
	}
	return translate(tx.Commit(ctx))
}
