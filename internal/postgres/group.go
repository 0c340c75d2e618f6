package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// Group commit. Appends of one event that arrive together — the common
// case, a command making one event, from many clients at once — are stored
// by one statement in one transaction: one round trip and one commit for
// the group instead of one each. Each append is still answered only after
// the commit, and each keeps its own expected-version check.
//
// The first append to arrive when a slot is free leads: it runs at once
// with whatever is pending, so a lone append waits for nothing. Appends
// arriving while the statements run wait and form the next group, which
// one of the leaders runs as soon as its statement is done. A caller leads
// only until its own append's group is done: under sustained load the
// queue may never empty, and its request must not wait for that. It then
// hands the slot to a goroutine of the store's, which runs groups until
// none is pending.
//
// Every row carries its own guard, and ON CONFLICT DO NOTHING turns a
// conflict into a missing row instead of failing the group: an append
// whose row is missing goes the single way (appendOnce), which tells a
// retry from a wrong version or a duplicate id. Rows are inserted in
// stream order, so two groups take their locks in the same order and
// cannot deadlock.

// groupSQL stores a group. $1.. are arrays with one element per append:
// stream, category, expected version, whether that version is known to be
// committed, and the event.
const groupSQL = `
INSERT INTO events (event_id, stream_id, category, version, type, schema_fp, data,
	correlation_id, causation_id, user_id, tenant_id, custom, data_subject, trace_parent, trace_state)
SELECT e.id, e.stream, e.category, b.v + 1, e.type, e.fp, e.data, e.correlation, e.causation, e.usr, e.tenant, e.custom, e.subject,
	e.traceparent, e.tracestate
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bool[], $5::uuid[], $6::text[], $7::bigint[], $8::bytea[],
	$9::text[], $10::text[], $11::text[], $12::text[], $13::jsonb[], $14::text[], $15::text[], $16::text[])
	WITH ORDINALITY AS e(stream, category, expected, known, id, type, fp, data, correlation, causation, usr, tenant, custom, subject,
		traceparent, tracestate, ord)
CROSS JOIN LATERAL (SELECT CASE
	WHEN e.expected > 0 AND e.known THEN e.expected
	WHEN e.expected > 0 THEN (SELECT e.expected WHERE EXISTS (SELECT 1 FROM events x WHERE x.stream_id = e.stream AND x.version = e.expected))
	WHEN e.expected = 0 THEN 0
	ELSE (SELECT coalesce(max(x.version), 0) FROM events x WHERE x.stream_id = e.stream)
	END AS v) b
WHERE b.v IS NOT NULL AND (e.expected <> -2 OR b.v > 0)
	AND NOT EXISTS (SELECT 1 FROM stream_deletions d WHERE d.stream_id = e.stream AND d.hard)
ORDER BY e.stream, e.ord
ON CONFLICT DO NOTHING
RETURNING event_id, position, version`

// groupedAppend is one append waiting in a group.
type groupedAppend struct {
	stream   eventstore.StreamID
	expected eventstore.ExpectedVersion
	known    bool
	event    eventstore.EventData
	done     chan groupedResult
	sent     bool // taken into a group; guarded by appendGroups.mu
}

type groupedResult struct {
	res     eventstore.AppendResult
	ok      bool  // stored by the group
	err     error // the group failed as a whole
	settled bool  // err is final: the group's outcome was settled
}

// appendGroups gathers single-event appends into groups.
type appendGroups struct {
	mu       sync.Mutex
	pending  []*groupedAppend
	running  int // statements in flight
	slots    int // most statements in flight at once
	maxGroup int

	statements, appends atomic.Int64 // run so far, for metrics
}

func newAppendGroups(slots, maxGroup int) *appendGroups {
	return &appendGroups{slots: slots, maxGroup: maxGroup}
}

// appendGrouped stores one event as part of a group. When the group could
// not store it (a conflict of any kind), it goes the single way.
func (s *Store) appendGrouped(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, known bool, e eventstore.EventData) (eventstore.AppendResult, error) {
	a := &groupedAppend{stream: stream, expected: expected, known: known, event: e, done: make(chan groupedResult, 1)}
	g := s.groups
	g.mu.Lock()
	g.pending = append(g.pending, a)
	lead := g.running < g.slots
	if lead {
		g.running++
	}
	g.mu.Unlock()
	var r groupedResult
	if lead {
		// A leader stops leading once its own append has been sent in a
		// group (its own, or the other slot's): its answer is then the
		// outcome, whether or not its deadline passed meanwhile.
		s.leadGroups(ctx, a)
		r = <-a.done
	} else {
		select {
		case r = <-a.done:
		case <-ctx.Done():
			if g.withdraw(a) {
				return eventstore.AppendResult{}, ctx.Err() // never sent: nothing was stored
			}
			// Its group is running and may store it: wait for the
			// group's answer, which comes within groupTimeout and the
			// settle timeout, rather than give one that may be false.
			r = <-a.done
		}
	}
	if r.ok || r.settled {
		return r.res, r.err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err // the group did not store it, and the caller has left
	}
	return s.appendOnce(ctx, stream, expected, known, []eventstore.EventData{e})
}

// withdraw takes a out of pending and reports whether it was still there,
// that is, not yet sent in a group.
func (g *appendGroups) withdraw(a *groupedAppend) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.Index(g.pending, a)
	if i < 0 {
		return false
	}
	g.pending = slices.Delete(g.pending, i, i+1)
	return true
}

// leadGroups runs groups until own has been sent in one, and, when own is
// nil, until none is pending; then it gives its slot back, or hands it to
// a goroutine of its own when appends still wait. A caller's append is
// answered when leadGroups returns, or, when another leader sent it, by
// that leader's group.
func (s *Store) leadGroups(ctx context.Context, own *groupedAppend) {
	g := s.groups
	for {
		g.mu.Lock()
		if own != nil && own.sent && len(g.pending) > 0 {
			g.mu.Unlock()
			go s.leadGroups(context.WithoutCancel(ctx), nil)
			return
		}
		var batch []*groupedAppend
		if own == nil || !own.sent {
			batch = g.take()
		}
		if len(batch) == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupTimeout)
		s.runGroup(gctx, batch)
		cancel()
	}
}

// take takes the next group out of pending: the oldest appends, up to
// maxGroup, but none whose event id an append already in the group has.
// One statement cannot tell which of two rows with one id it stored, so
// the later stays pending, for a later group, where it conflicts with the
// stored one and goes the single way (a replay or a duplicate id). The
// caller holds g.mu.
func (g *appendGroups) take() []*groupedAppend {
	var batch, rest []*groupedAppend
	ids := make(map[eventstore.UUID]bool, min(len(g.pending), g.maxGroup))
	for i, a := range g.pending {
		if len(batch) == g.maxGroup {
			rest = append(rest, g.pending[i:]...)
			break
		}
		if ids[a.event.ID] {
			rest = append(rest, a)
			continue
		}
		ids[a.event.ID] = true
		a.sent = true
		batch = append(batch, a)
	}
	g.pending = rest
	return batch
}

// groupTimeout bounds a group's statement; the appends in it are the
// requests of many callers, so it must not hang on any one's deadline.
const groupTimeout = 30 * time.Second

// runGroup stores a group with one statement and tells each append what
// became of it.
func (s *Store) runGroup(ctx context.Context, batch []*groupedAppend) {
	s.groups.statements.Add(1)
	s.groups.appends.Add(int64(len(batch)))
	if len(batch) == 1 {
		// Alone: the single statement, run while holding the slot, so
		// that appends arriving meanwhile gather into the next group.
		a := batch[0]
		res, err := s.appendOnce(ctx, a.stream, a.expected, a.known, []eventstore.EventData{a.event})
		a.done <- groupedResult{ok: err == nil, res: res, err: err, settled: true}
		return
	}
	n := len(batch)
	streams, categories := make([]string, n), make([]string, n)
	expected, known := make([]int64, n), make([]bool, n)
	ids := make([][16]byte, n)
	types := make([]string, n)
	fps := make([]int64, n)
	data := make([][]byte, n)
	correlation, causation, user, tenant := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	custom := make([]json.RawMessage, n)
	subject, traceParent, traceState := make([]*string, n), make([]*string, n), make([]*string, n)
	for i, a := range batch {
		streams[i], categories[i] = a.stream.String(), a.stream.Category()
		expected[i], known[i] = int64(a.expected), a.known
		e := &a.event
		ids[i], types[i], fps[i], data[i] = e.ID, e.Type, int64(e.Schema), e.Data
		m := &e.Metadata
		correlation[i], causation[i], user[i], tenant[i] = nullable(&m.CorrelationID), nullable(&m.CausationID), nullable(&m.UserID), nullable(&m.TenantID)
		custom[i], subject[i] = customJSON(m.Custom), nullable(&m.DataSubject)
		traceParent[i], traceState[i] = nullable(&m.TraceParent), nullable(&m.TraceState)
	}

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		for _, a := range batch {
			a.done <- groupedResult{err: err, settled: true} // nothing was sent
		}
		return
	}
	b := backendOf(conn)
	rows, err := conn.Query(ctx, groupSQL, streams, categories, expected, known, ids, types, fps, data, correlation, causation, user, tenant, custom, subject,
		traceParent, traceState)
	stored := map[eventstore.UUID]eventstore.AppendedEvent{} // by event id, unique in a group (see take)
	if err == nil {
		var id [16]byte
		var position, version int64
		_, err = pgx.ForEachRow(rows, []any{&id, &position, &version}, func() error {
			stored[id] = eventstore.AppendedEvent{ID: id, Version: version, GlobalPosition: position}
			return nil
		})
	}
	conn.Release()
	if err != nil {
		s.groupFailed(ctx, batch, b, err)
		return
	}
	for _, a := range batch {
		e, ok := stored[a.event.ID]
		if !ok {
			a.done <- groupedResult{} // a conflict: the single way decides
			continue
		}
		s.versions.saw(a.stream.String(), e.Version)
		a.done <- groupedResult{ok: true, res: eventstore.AppendResult{
			Stream: a.stream, FirstVersion: e.Version, LastVersion: e.Version, Events: []eventstore.AppendedEvent{e},
		}}
	}
}

// groupFailed handles a group whose statement failed as a whole. A failure
// the server reported (a deadlock, say) stored nothing: each append tries
// the single way. A lost connection may have committed the group: its
// outcome is settled, for all its appends at once, and each is told.
func (s *Store) groupFailed(ctx context.Context, batch []*groupedAppend, b backend, err error) {
	if !ambiguous(ctx, err) {
		for _, a := range batch {
			if isUnavailable(err) {
				a.done <- groupedResult{err: translate(err), settled: true} // nothing was sent
			} else {
				a.done <- groupedResult{}
			}
		}
		return
	}
	us := make([]*unsettled, len(batch))
	for i, a := range batch {
		us[i] = &unsettled{stream: a.stream, events: []eventstore.EventData{a.event}}
	}
	s.settleAll(us, b, err)
	for i, u := range us {
		if u.err == nil {
			s.versions.saw(u.stream.String(), u.res.LastVersion)
		}
		batch[i].done <- groupedResult{ok: u.err == nil, res: u.res, err: u.err, settled: true}
	}
}
