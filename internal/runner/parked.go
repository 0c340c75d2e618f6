package runner

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Parked is an event the park policy set aside, with the error it caused.
type Parked struct {
	ID         int64     `json:"id"`
	Generation int64     `json:"generation"`
	Topic      string    `json:"topic"`
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"`
	EventID    string    `json:"eventId,omitempty"`
	StreamID   string    `json:"streamId,omitempty"`
	Version    int64     `json:"version,omitempty"`
	Type       string    `json:"type,omitempty"`
	Error      string    `json:"error"`
	Attempts   int       `json:"attempts"`
	ParkedAt   time.Time `json:"parkedAt"`
}

// Parked returns up to limit parked events of the serving generation of
// projection name, oldest first.
func (m *Monitor) Parked(ctx context.Context, name string, limit int) ([]Parked, error) {
	if set, err := m.book.exists(ctx, m.db); !set || err != nil {
		return nil, err
	}
	rows, err := m.db.Query(ctx, `SELECT p.id, p.generation, p.topic, p.partition, p."offset",
			coalesce(p.event_id, ''), coalesce(p.stream_id, ''), coalesce(p.version, 0), coalesce(p.type, ''),
			p.error, p.attempts, p.parked_at
		FROM `+m.book.schema+`.parked_events p
		JOIN `+m.book.schema+`.projections j ON j.name = p.projection AND j.generation = p.generation
		WHERE p.projection = $1 ORDER BY p.id LIMIT $2`, name, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Parked])
}
