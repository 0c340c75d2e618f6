package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

const eventColumns = "e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_fp, e.data, e.metadata, e.recorded_at"

// The stream's version and a page of its events in one statement, so that
// both come from one snapshot. A stream with no event in range gives one
// row of NULL event columns, and a missing stream a NULL version too.
const readStreamForward = `SELECT s.version, ` + eventColumns + `
FROM (SELECT max(version) AS version FROM events WHERE stream_id = $1) s
LEFT JOIN LATERAL (
	SELECT * FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3
) e ON true
ORDER BY e.version`

const readStreamBackward = `SELECT s.version, ` + eventColumns + `
FROM (SELECT max(version) AS version FROM events WHERE stream_id = $1) s
LEFT JOIN LATERAL (
	SELECT * FROM events WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC LIMIT $3
) e ON true
ORDER BY e.version DESC`

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
	rows, err := s.pool.Query(ctx, sql, stream.String(), from, q.Limit)
	if err != nil {
		return eventstore.StreamPage{}, translate(err)
	}
	var page eventstore.StreamPage
	var version *int64
	var r eventRow
	dest := append([]any{&version}, r.dest()...)
	_, err = pgx.ForEachRow(rows, dest, func() error {
		if r.position == nil {
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

// eventRow scans the eventColumns. The fields are pointers because the
// stream read's outer join yields NULLs for a stream with no event in range.
type eventRow struct {
	position   *int64
	id         *[16]byte
	streamID   *string
	version    *int64
	typ        *string
	fp         *int64
	data       []byte
	metadata   []byte
	recordedAt *time.Time
}

func (r *eventRow) dest() []any {
	return []any{&r.position, &r.id, &r.streamID, &r.version, &r.typ, &r.fp, &r.data, &r.metadata, &r.recordedAt}
}

func (r *eventRow) event() (eventstore.RecordedEvent, error) {
	stream, err := eventstore.ParseStreamID(*r.streamID)
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("stored event at position %d: %w", *r.position, err)
	}
	e := eventstore.RecordedEvent{
		ID:             *r.id,
		StreamID:       stream,
		Type:           *r.typ,
		Version:        *r.version,
		GlobalPosition: *r.position,
		RecordedAt:     r.recordedAt.UTC(),
		Schema:         eventstore.Fingerprint(*r.fp),
		Data:           r.data,
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	if len(r.metadata) > 0 {
		if err := json.Unmarshal(r.metadata, &e.Metadata); err != nil {
			return eventstore.RecordedEvent{}, fmt.Errorf("stored event at position %d: metadata: %w", *r.position, err)
		}
	}
	return e, nil
}
