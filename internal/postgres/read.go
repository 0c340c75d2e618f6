package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/strata-events/strata/internal/eventstore"
)

const eventColumns = `e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_fp, e.data,
	e.correlation_id, e.causation_id, e.user_id, e.tenant_id, e.custom, e.recorded_at, e.data_subject, e.trace_parent, e.trace_state`

// The stream's version and a page of its events in one statement, so that
// both come from one snapshot. A stream with no event in range gives one
// row of NULL event columns, and a missing stream a NULL version too.
// A deleted stream's deletion comes along: a soft one hides the events up
// to its $StreamDeleted (version d.version), a hard one all of them. So do
// the retention settings of the stream and of its category ($4), field by
// field: k.lo is the first version they keep, k.since the oldest time.
const readStreamFrom = `SELECT s.version, d.version, d.hard, ` + eventColumns + `
FROM (SELECT max(version) AS version FROM events WHERE stream_id = $1) s
LEFT JOIN stream_deletions d ON d.stream_id = $1
LEFT JOIN stream_settings ss ON ss.stream_id = $1
LEFT JOIN category_settings cs ON cs.category = $4
CROSS JOIN LATERAL (SELECT
	greatest(coalesce(d.version, 0) + 1, coalesce(ss.truncate_before, cs.truncate_before, 0),
		s.version - coalesce(ss.max_count, cs.max_count, s.version) + 1) AS lo,
	now() - interval '1 millisecond' * coalesce(ss.max_age_ms, cs.max_age_ms) AS since) k
LEFT JOIN LATERAL (
	SELECT * FROM events WHERE stream_id = $1 AND %s AND d.hard IS NOT TRUE AND (k.since IS NULL OR recorded_at >= k.since)
	ORDER BY version %s LIMIT $3
) e ON true
ORDER BY e.version %[2]s`

var (
	readStreamForward  = fmt.Sprintf(readStreamFrom, "version >= greatest($2, k.lo)", "")
	readStreamBackward = fmt.Sprintf(readStreamFrom, "version <= $2 AND version >= k.lo", "DESC")
)

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamID, q eventstore.StreamQuery) (eventstore.StreamPage, error) {
	q, err := q.Normalize(stream)
	if err != nil {
		return eventstore.StreamPage{}, err
	}
	from, sql := q.From, readStreamForward
	if q.Direction == eventstore.Backward {
		sql = readStreamBackward
		if from == 0 {
			from = 1<<63 - 1
		}
	} else if from == 0 {
		from = 1
	}
	rows, err := s.pool.Query(ctx, sql, stream.String(), from, q.Limit, stream.Category())
	if err != nil {
		return eventstore.StreamPage{}, translate(err)
	}
	var page eventstore.StreamPage
	var version, deleted *int64
	var hard *bool
	var r eventRow
	dest := append([]any{&version, &deleted, &hard}, r.dest()...)
	_, err = pgx.ForEachRow(rows, dest, func() error {
		if !r.position.Valid {
			return nil
		}
		e, err := r.event()
		if err != nil {
			return err
		}
		page.Events = append(page.Events, e)
		return nil
	})
	if err != nil {
		return eventstore.StreamPage{}, translate(err)
	}
	if version == nil {
		return eventstore.StreamPage{}, eventstore.Errorf(eventstore.CodeStreamNotFound, "stream %s not found", stream)
	}
	if deleted != nil && (*hard || *deleted == *version) {
		return eventstore.StreamPage{}, &eventstore.StreamDeletedError{Stream: stream, Version: *deleted, Hard: *hard}
	}
	page.Version = *version
	s.versions.saw(stream.String(), page.Version)
	page.Next = nextVersion(q.Direction, from, page)
	return page, nil
}

func nextVersion(dir eventstore.Direction, from int64, page eventstore.StreamPage) int64 {
	n := len(page.Events)
	if dir == eventstore.Forward {
		if n == 0 {
			return from
		}
		return page.Events[n-1].Version + 1
	}
	if n == 0 {
		return min(from, page.Version)
	}
	return page.Events[n-1].Version - 1
}

// eventRow scans the eventColumns. The fields can hold NULL because the
// stream read's outer join yields NULLs for a stream with no event in
// range; pgtype's value types do that without allocating.
type eventRow struct {
	position   pgtype.Int8
	id         pgtype.UUID
	streamID   pgtype.Text
	version    pgtype.Int8
	typ        pgtype.Text
	fp         pgtype.Int8
	data       []byte
	meta       [7]pgtype.Text // correlation, causation, user, tenant, data subject, trace parent and state
	custom     []byte
	recordedAt pgtype.Timestamptz

	// The last stream id parsed: rows of a page often share the stream.
	lastStream string
	lastParsed eventstore.StreamID
}

func (r *eventRow) dest() []any {
	return []any{&r.position, &r.id, &r.streamID, &r.version, &r.typ, &r.fp, &r.data,
		&r.meta[0], &r.meta[1], &r.meta[2], &r.meta[3], &r.custom, &r.recordedAt, &r.meta[4], &r.meta[5], &r.meta[6]}
}

func (r *eventRow) event() (eventstore.RecordedEvent, error) {
	if r.streamID.String != r.lastStream || r.lastParsed.IsZero() {
		stream, err := eventstore.ParseStreamID(r.streamID.String)
		if err != nil {
			return eventstore.RecordedEvent{}, fmt.Errorf("stored event at position %d: %w", r.position.Int64, err)
		}
		r.lastStream, r.lastParsed = r.streamID.String, stream
	}
	e := eventstore.RecordedEvent{
		ID:             r.id.Bytes,
		StreamID:       r.lastParsed,
		Type:           r.typ.String,
		Version:        r.version.Int64,
		GlobalPosition: r.position.Int64,
		RecordedAt:     r.recordedAt.Time.UTC(),
		Schema:         eventstore.Fingerprint(r.fp.Int64),
		Data:           r.data,
		Metadata: eventstore.Metadata{
			CorrelationID: r.meta[0].String,
			CausationID:   r.meta[1].String,
			UserID:        r.meta[2].String,
			TenantID:      r.meta[3].String,
			DataSubject:   r.meta[4].String,
			TraceParent:   r.meta[5].String,
			TraceState:    r.meta[6].String,
		},
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	if len(r.custom) > 0 {
		if err := json.Unmarshal(r.custom, &e.Metadata.Custom); err != nil {
			return eventstore.RecordedEvent{}, fmt.Errorf("stored event at position %d: custom metadata: %w", r.position.Int64, err)
		}
	}
	return e, nil
}
