package projection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/strata-events/strata/internal/avro"
)

// apply is the ApplyFunc of a SQL projection. It queues the statement of
// each event in one batch, so that a batch of events costs one round trip.
//
// An error names the file and line of the failing statement (the line
// PostgreSQL points at, when it does) and the event, and wraps the
// driver's error: a *pgconn.PgError when the server refused it. When a
// statement cannot be prepared, or a value not sent, pgx does not say for
// which event: the first event of that statement's type is named.
func (sp *SQLProjection) apply(ctx context.Context, tx pgx.Tx, events []Event) error {
	var batch pgx.Batch
	queued := make([]int, 0, len(events))
	for i := range events {
		e := &events[i]
		st := sp.byType[e.Type]
		if st == nil {
			continue
		}
		args := make([]any, len(st.params))
		for j, p := range st.params {
			v, err := bindValue(p.value(e))
			if err != nil {
				return sp.eventError(st, e, p.line, fmt.Errorf(":%s: %w", p.name, err))
			}
			args[j] = v
		}
		batch.Queue(st.sql, args...)
		queued = append(queued, i)
	}
	if len(queued) == 0 {
		return nil
	}
	results := tx.SendBatch(ctx, &batch)
	for _, i := range queued {
		if _, err := results.Exec(); err != nil {
			results.Close()
			return sp.execError(events, queued, i, err)
		}
	}
	if err := results.Close(); err != nil {
		return fmt.Errorf("%s: %w", sp.def.Source, err)
	}
	return nil
}

// execError explains the failure of the statement of events[i].
func (sp *SQLProjection) execError(events []Event, queued []int, i int, err error) error {
	e := &events[i]
	var pre pgx.ErrPreprocessingBatch
	if errors.As(err, &pre) {
		for _, j := range queued {
			if sp.byType[events[j].Type].sql == pre.SQL() {
				e = &events[j]
				break
			}
		}
	}
	st := sp.byType[e.Type]
	line := st.line
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Position > 0 {
		line = st.lineAt(int(pgErr.Position))
	}
	return sp.eventError(st, e, line, err)
}

func (sp *SQLProjection) eventError(st *statement, e *Event, line int, err error) error {
	return fmt.Errorf("%s:%d: %s (stream %s, version %d): %w", sp.def.Source, line, st.eventType, e.StreamID, e.Version, err)
}

// lineAt returns the line of the file that holds character pos (from 1,
// as PostgreSQL counts) of the statement.
func (st *statement) lineAt(pos int) int {
	line, n := st.line, 1
	for _, r := range st.sql {
		if n == pos {
			break
		}
		if r == '\n' {
			line++
		}
		n++
	}
	return line
}

// bindValue converts a value of Event.Data into what pgx sends for it
// (see ParseSQL).
func bindValue(v any) (any, error) {
	switch v := v.(type) {
	case Decimal:
		return pgtype.Numeric{Int: v.Unscaled(), Exp: -int32(v.Scale()), Valid: true}, nil
	case time.Duration:
		return pgtype.Interval{Microseconds: v.Microseconds(), Valid: true}, nil
	case avro.Duration:
		if v.Months > math.MaxInt32 || v.Days > math.MaxInt32 {
			return nil, fmt.Errorf("the duration %+v does not fit a PostgreSQL interval", v)
		}
		return pgtype.Interval{Months: int32(v.Months), Days: int32(v.Days), Microseconds: int64(v.Milliseconds) * 1000, Valid: true}, nil
	case []any, map[string]any:
		return jsonText(v)
	}
	return v, nil
}

// jsonText returns the JSON text of an array, map or record.
func jsonText(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jsonValue(v)); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// jsonValue returns v with the values that encoding/json would not write
// as natural JSON replaced by ones it does: decimals as exact numbers,
// times as RFC 3339, times of day as text, NaN and infinities as text.
func jsonValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = jsonValue(x)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = jsonValue(x)
		}
		return a
	case Decimal:
		return json.Number(v.String())
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case time.Duration:
		if v < 0 || v >= 24*time.Hour {
			return v.Microseconds()
		}
		return time.Unix(0, int64(v)).UTC().Format("15:04:05.999999")
	case float32:
		return jsonFloat(float64(v), v)
	case float64:
		return jsonFloat(v, v)
	}
	return v
}

// jsonFloat returns v, or the text of f when JSON has no number for it.
func jsonFloat(f float64, v any) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return v
}
