package readapi

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/projection"
)

// The queries that declarative projections declare (projection.Query)
// are served as GET /v1/projections/{projection}/queries/{name}: the
// query's parameters come from the request's, by name, and the answer is
// QueryAnswer.

// QueryAnswer is the answer of a declared query: its rows, in the
// statement's order, each an object of its columns in select-list order.
// Values are JSON as their PostgreSQL types suggest: numbers for
// integers and floating point (NaN and infinities as strings), exact
// decimal strings for numeric ("59.98"), RFC 3339 strings in UTC for
// timestamps and dates, base64 strings for bytea, the usual text for
// uuid and intervals, JSON for json and jsonb, arrays for arrays, and
// null for NULL.
type QueryAnswer struct {
	Rows []QueryRow `json:"rows"`
}

// QueryRow is a row of a QueryAnswer.
type QueryRow struct {
	Columns []string
	Values  []any
}

// MarshalJSON writes the row as an object whose keys keep the columns'
// order.
func (r QueryRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range r.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		v, err := json.Marshal(r.Values[i])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// queryKey identifies a query by its projection and name.
func queryKey(projection, name string) string { return projection + "/" + name }

// runQuery answers GET /v1/projections/{projection}/queries/{query},
// waiting first for the writes the request names on the query's
// projection.
func (a *API) runQuery(w http.ResponseWriter, r *http.Request, tok httpapi.Token) error {
	name, query := r.PathValue("projection"), r.PathValue("query")
	q := a.queries[queryKey(name, query)]
	if q == nil {
		if !a.queryProjections[name] {
			return eventstore.Errorf(httpapi.CodeNotFound, "no projection %.80q declares queries", name)
		}
		return eventstore.Errorf(httpapi.CodeNotFound, "projection %s declares no query %.80q", name, query)
	}
	args, limit, err := bindQuery(r, q)
	if err != nil {
		return err
	}
	return a.waiting(func(w http.ResponseWriter, r *http.Request, _ httpapi.Token) error {
		return a.answerQuery(w, r, q, args, limit)
	}, q.Projection)(w, r, tok)
}

// bindQuery returns the arguments and limit of q from the request's
// parameters, refusing unknown and repeated ones.
func bindQuery(r *http.Request, q *projection.Query) (args []any, limit int64, _ error) {
	values := map[string]string{}
	for name, vs := range r.URL.Query() {
		if name == "waitFor" || name == "waitForPosition" || name == "timeout" {
			continue
		}
		if _, ok := q.Param(name); !ok {
			names := make([]string, len(q.Params))
			for i, p := range q.Params {
				names[i] = p.Name
			}
			return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "unknown parameter %.40q: query %s takes %s", name, q.Name, strings.Join(names, ", "))
		}
		if len(vs) > 1 {
			return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "%s is given %d times", name, len(vs))
		}
		values[name] = vs[0]
	}
	args, limit, err := q.Bind(values)
	var pe *projection.ParamError
	if errors.As(err, &pe) {
		return nil, 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "%v", pe)
	}
	return args, limit, err
}

// answerQuery runs q with args and writes its first limit rows.
func (a *API) answerQuery(w http.ResponseWriter, r *http.Request, q *projection.Query, args []any, limit int64) error {
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	answer := QueryAnswer{Rows: []QueryRow{}}
	var bug error // of the query, not the database: internal
	// A read-only transaction: whatever the statement says, it cannot
	// change the read model.
	err := pgx.BeginTxFunc(ctx, a.db, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q.SQL(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var columns []string
		for _, f := range rows.FieldDescriptions() {
			if slices.Contains(columns, f.Name) {
				// An object cannot hold both: a bug of the query.
				bug = fmt.Errorf("query %s of %s: two columns are named %s; name them apart with AS", q.Name, q.Source, f.Name)
				return bug
			}
			columns = append(columns, f.Name)
		}
		for int64(len(answer.Rows)) < limit && rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return err
			}
			for i, v := range vals {
				vals[i] = jsonValue(v)
			}
			answer.Rows = append(answer.Rows, QueryRow{Columns: columns, Values: vals})
		}
		rows.Close()
		return rows.Err()
	})
	switch {
	case bug != nil:
		return bug
	case err != nil:
		return a.readError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, answer)
	return nil
}

// jsonValue returns v, a value pgx decoded, as QueryAnswer writes it.
func jsonValue(v any) any {
	switch v := v.(type) {
	case nil, bool, string, int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, []byte, map[string]any:
		return v
	case float32:
		return jsonValue(float64(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case [16]byte: // uuid
		h := hex.EncodeToString(v[:])
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	case pgtype.Numeric:
		s, err := v.Value()
		if err != nil {
			return nil
		}
		return s
	case []any:
		out := slices.Clone(v)
		for i, e := range out {
			out[i] = jsonValue(e)
		}
		return out
	case driver.Valuer:
		s, err := v.Value()
		if err != nil {
			return fmt.Sprint(v)
		}
		return jsonValue(s)
	}
	return v
}
