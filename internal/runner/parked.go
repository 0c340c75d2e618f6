package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/projection"
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
	rows, err := m.db.Query(ctx, parkedSelect(m.book.schema)+`
		WHERE p.projection = $1 ORDER BY p.id LIMIT $2`, name, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Parked])
}

// Errors of the operations on parked events.
var (
	// ErrNotParked: no parked event of the serving generation has the id.
	ErrNotParked = errors.New("no such parked event")
	// ErrRecordGone: Kafka no longer holds the parked event's record
	// (the topic's retention removed it).
	ErrRecordGone = errors.New("the parked event's record is no longer in Kafka")
)

// ApplyError is the failure of a parked event applied again: the
// projection's error. The event stays parked, with this error.
type ApplyError struct{ Err error }

func (e *ApplyError) Error() string { return "the event failed again: " + e.Err.Error() }
func (e *ApplyError) Unwrap() error { return e.Err }

// Discard removes parked event id of projection name for good, and
// returns it. The projection never applies it; a rebuild would meet it
// again.
func (m *Monitor) Discard(ctx context.Context, name string, id int64) (Parked, error) {
	var p Parked
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		var err error
		if p, err = m.book.lockParked(ctx, tx, name, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM "+m.book.schema+".parked_events WHERE id = $1", id)
		return err
	})
	return p, err
}

// RetryParked applies parked event id of projection name again, from its
// record in Kafka, and removes it from the parked events once applied.
// Fix what made it fail first. It is applied after the events that came
// later on its stream, which the projection went on with: its place in
// the stream's order is lost, as parking it lost it. If it fails again it
// stays parked with the new error, and the answer is an *ApplyError.
func (m *Monitor) RetryParked(ctx context.Context, name string, id int64) (Parked, error) {
	r := m.runners[name]
	if r == nil {
		return Parked{}, fmt.Errorf("%w: projection %s does not run here", ErrNotParked, name)
	}
	return r.retryParked(ctx, id)
}

func (r *Runner) retryParked(ctx context.Context, id int64) (Parked, error) {
	p, err := r.book.parkedEvent(ctx, r.db, r.p.Name, id)
	if err != nil {
		return Parked{}, err
	}
	rec, err := r.fetch(ctx, p.Topic, p.Partition, p.Offset)
	if err != nil {
		return p, err
	}
	a := r.newApplier(r.db, target{projection: r.p.Name, generation: p.Generation})
	ev, err := a.decode(ctx, rec)
	if err == nil {
		err = pgx.BeginFunc(ctx, r.db, func(tx pgx.Tx) error {
			if _, err := r.book.lockParked(ctx, tx, r.p.Name, id); err != nil {
				return err
			}
			if err := r.p.Apply(ctx, tx, []projection.Event{ev}); err != nil {
				return &ApplyError{Err: err}
			}
			_, err := tx.Exec(ctx, "DELETE FROM "+r.book.schema+".parked_events WHERE id = $1", id)
			return err
		})
	} else {
		err = &ApplyError{Err: err}
	}
	var failed *ApplyError
	if errors.As(err, &failed) {
		p.Error, p.Attempts = failed.Err.Error(), p.Attempts+1
		if _, uerr := r.db.Exec(ctx, "UPDATE "+r.book.schema+".parked_events SET error = $2, attempts = attempts + 1 WHERE id = $1",
			id, p.Error); uerr != nil {
			r.log.Warn("could not record the failed retry of a parked event", "id", id, "error", uerr)
		}
		return p, err
	}
	if err == nil {
		r.log.Info("parked event applied on retry", "id", id, "stream", p.StreamID, "version", p.Version)
		r.m.events.WithLabelValues(r.p.Name, "retried").Inc()
	}
	return p, err
}

// fetch reads the record at offset of a partition from Kafka.
func (r *Runner) fetch(ctx context.Context, topic string, partition int32, offset int64) (Record, error) {
	if r.consumers == nil {
		return Record{}, errors.New("no Kafka brokers are configured")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := r.consumers.Partitions(ctx, []string{topic}, map[string]map[int32]int64{topic: {partition: offset}})
	if err != nil {
		return Record{}, err
	}
	defer c.Close()
	for {
		batches, err := c.Poll(ctx)
		if err != nil {
			return Record{}, fmt.Errorf("reading %s[%d] offset %d: %w", topic, partition, offset, err)
		}
		for _, b := range batches {
			if b.Topic != topic || b.Partition != partition {
				continue
			}
			for _, rec := range b.Records {
				switch {
				case rec.Offset == offset && !rec.Control:
					return rec, nil
				case rec.Offset >= offset:
					return Record{}, fmt.Errorf("%w: %s[%d] starts after offset %d", ErrRecordGone, topic, partition, offset)
				}
			}
		}
	}
}

// parkedEvent returns parked event id of the serving generation of
// projection name.
func (b book) parkedEvent(ctx context.Context, q querier, name string, id int64) (Parked, error) {
	return b.scanParked(ctx, q, name, id, "")
}

// lockParked is parkedEvent, locking the row in tx.
func (b book) lockParked(ctx context.Context, tx pgx.Tx, name string, id int64) (Parked, error) {
	return b.scanParked(ctx, tx, name, id, " FOR UPDATE OF p")
}

func (b book) scanParked(ctx context.Context, q querier, name string, id int64, lock string) (Parked, error) {
	rows, err := q.Query(ctx, parkedSelect(b.schema)+" WHERE p.projection = $1 AND p.id = $2"+lock, name, id)
	if err != nil {
		return Parked{}, err
	}
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Parked])
	if errors.Is(err, pgx.ErrNoRows) {
		return Parked{}, fmt.Errorf("%w: %s has no parked event %d", ErrNotParked, name, id)
	}
	return p, err
}

// parkedSelect selects the parked events of the serving generations.
func parkedSelect(schema string) string {
	return `SELECT p.id, p.generation, p.topic, p.partition, p."offset",
			coalesce(p.event_id, ''), coalesce(p.stream_id, ''), coalesce(p.version, 0), coalesce(p.type, ''),
			p.error, p.attempts, p.parked_at
		FROM ` + schema + `.parked_events p
		JOIN ` + schema + `.projections j ON j.name = p.projection AND j.generation = p.generation`
}
