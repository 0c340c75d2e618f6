package postgres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

var _ eventstore.ReservationReader = (*Store)(nil)

// A reservation's row is keyed by its scope and the SHA-256 of its value
// (migration 0010): the value itself is not stored.
func valueHash(value string) []byte {
	h := sha256.Sum256([]byte(value))
	return h[:]
}

// reservationRow is a claim or a release of a multi-stream append, with
// the stream it is for and that stream's version after the append.
type reservationRow struct {
	eventstore.Reservation
	hash    []byte
	stream  eventstore.StreamID
	version int64
}

// reserveIn makes the claims and releases of a multi-stream append whose
// events are stored, in its transaction. Each is one statement over all
// of the append's values, in (scope, hash) order, so that two
// transactions wait for each other's values in one order and cannot
// deadlock on them; and values come after streams in every transaction.
// A value claimed by another stream is refused; claimed again by its
// holder, it keeps its first claim and takes the new version. A value
// released that another stream holds is refused; one nobody holds is
// released already.
func reserveIn(ctx context.Context, tx pgx.Tx, items []*multiItem, results []eventstore.AppendResult) error {
	var claims, releases []reservationRow
	for _, it := range items {
		if it.index < 0 {
			continue
		}
		version := results[it.index].LastVersion
		for _, r := range it.reserve {
			claims = append(claims, reservationRow{r, valueHash(r.Value), it.stream, version})
		}
		for _, r := range it.release {
			releases = append(releases, reservationRow{r, valueHash(r.Value), it.stream, version})
		}
	}
	if len(claims) > 0 {
		done, err := reservationStatement(ctx, tx, claims, `INSERT INTO reservations (scope, value_hash, stream_id, version)
			SELECT r.scope, r.hash, r.stream, r.version FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[]) AS r(scope, hash, stream, version)
			ORDER BY r.scope, r.hash
			ON CONFLICT (scope, value_hash) DO UPDATE SET version = excluded.version
			WHERE reservations.stream_id = excluded.stream_id
			RETURNING scope, value_hash`)
		if err != nil {
			return err
		}
		if err := refuseHeld(ctx, tx, claims, done, false); err != nil {
			return err
		}
	}
	if len(releases) > 0 {
		done, err := reservationStatement(ctx, tx, releases, `DELETE FROM reservations v
			USING (SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[]) AS r(scope, hash, stream, version) ORDER BY r.scope, r.hash) r
			WHERE v.scope = r.scope AND v.value_hash = r.hash AND v.stream_id = r.stream
			RETURNING v.scope, v.value_hash`)
		if err != nil {
			return err
		}
		return refuseHeld(ctx, tx, releases, done, true)
	}
	return nil
}

// reservationStatement runs sql over rows and returns the keys of the rows
// it claimed or released.
func reservationStatement(ctx context.Context, tx pgx.Tx, rows []reservationRow, sql string) (map[string]bool, error) {
	slices.SortFunc(rows, func(a, b reservationRow) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), bytes.Compare(a.hash, b.hash))
	})
	scopes, hashes, streams, versions := make([]string, len(rows)), make([][]byte, len(rows)), make([]string, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		scopes[i], hashes[i], streams[i], versions[i] = r.Scope, r.hash, r.stream.String(), r.version
	}
	result, err := tx.Query(ctx, sql, scopes, hashes, streams, versions)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var scope string
	var hash []byte
	_, err = pgx.ForEachRow(result, []any{&scope, &hash}, func() error {
		done[scope+"\x00"+string(hash)] = true
		return nil
	})
	return done, err
}

// refuseHeld returns a *eventstore.ReservationTakenError for the first of
// rows that the statement did not claim or release and that another
// stream holds.
func refuseHeld(ctx context.Context, tx pgx.Tx, rows []reservationRow, done map[string]bool, release bool) error {
	for _, r := range rows {
		if done[r.Scope+"\x00"+string(r.hash)] {
			continue
		}
		var holder string
		err := tx.QueryRow(ctx, "SELECT stream_id FROM reservations WHERE scope = $1 AND value_hash = $2", r.Scope, r.hash).Scan(&holder)
		switch {
		case errors.Is(err, pgx.ErrNoRows) && release:
			continue // held by nobody: released already
		case err != nil:
			return err
		}
		stream, err := eventstore.ParseStreamID(holder)
		if err != nil {
			return err
		}
		return &eventstore.ReservationTakenError{Reservation: r.Reservation, Holder: stream, Release: release}
	}
	return nil
}

// Reservation implements eventstore.ReservationReader.
func (s *Store) Reservation(ctx context.Context, r eventstore.Reservation) (eventstore.Reserved, error) {
	if err := r.Validate(); err != nil {
		return eventstore.Reserved{}, err
	}
	var holder string
	var version int64
	var at time.Time
	err := s.pool.QueryRow(ctx, "SELECT stream_id, version, reserved_at FROM reservations WHERE scope = $1 AND value_hash = $2",
		r.Scope, valueHash(r.Value)).Scan(&holder, &version, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Reserved{}, eventstore.Errorf(eventstore.CodeReservationNotFound, "no stream holds %s", r)
	}
	if err != nil {
		return eventstore.Reserved{}, translate(err)
	}
	stream, err := eventstore.ParseStreamID(holder)
	if err != nil {
		return eventstore.Reserved{}, err
	}
	return eventstore.Reserved{Reservation: r, Stream: stream, Version: version, At: at.UTC()}, nil
}
