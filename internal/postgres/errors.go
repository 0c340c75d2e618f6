package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-events/strata/internal/eventstore"
)

// querier is what both a pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// wrap prefixes a non-nil error with the operation, once, where it happens.
func wrap(errp *error, op string) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", op, *errp)
	}
}

// translate turns driver errors into the store's: a database that cannot be
// reached becomes eventstore.ErrUnavailable (with the cause in the message);
// context errors pass through; anything else is returned as it is.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var code interface{ ErrorCode() string }
	if errors.As(err, &code) {
		return err // already the store's
	}
	if isUnavailable(err) {
		return &unavailableError{cause: err}
	}
	return err
}

// unavailableError is eventstore.ErrUnavailable with its cause kept for logs.
type unavailableError struct{ cause error }

func (e *unavailableError) Error() string {
	return "the database is unavailable: " + e.cause.Error()
}
func (e *unavailableError) Unwrap() error        { return e.cause }
func (e *unavailableError) ErrorCode() string    { return eventstore.CodeUnavailable }
func (e *unavailableError) Is(target error) bool { return eventstore.ErrUnavailable.Is(target) }

func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, crashed, starting
			pgErr.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.Timeout(err) || strings.Contains(err.Error(), "conn closed") ||
		strings.Contains(err.Error(), "closed pool")
}

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

// isSerializationFailure reports a transaction in repeatable read that met
// a row changed after its snapshot: it is to be tried again.
func isSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40001"
}
