package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// Reservations (see eventstore.Reservation): an append claims values with
// "reserve": [{"scope", "value"}] and gives them up with "release", in the
// same transaction as its events; GET /v1/reservations/{scope}/{value}
// (role reader) names the holder.

type reservationResponse struct {
	Scope      string    `json:"scope"`
	Value      string    `json:"value"`
	StreamID   string    `json:"streamId"`
	Version    int64     `json:"version"`
	ReservedAt time.Time `json:"reservedAt"`
}

// appendReserving stores one stream's append with its reservations, in a
// multi-stream append of that one stream, which the PostgreSQL store runs
// as one transaction.
func (s *Server) appendReserving(ctx context.Context, a eventstore.StreamAppend) (eventstore.AppendResult, error) {
	ma, ok := s.store.(eventstore.MultiAppender)
	if !ok {
		return eventstore.AppendResult{}, eventstore.Errorf(eventstore.CodeInvalidRequest, "this store keeps no reservations: append without reserve and release")
	}
	results, err := ma.AppendMulti(ctx, []eventstore.StreamAppend{a}, nil)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return results[0], nil
}

func (s *Server) readReservation(store eventstore.ReservationReader) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ Token) error {
		res, err := store.Reservation(r.Context(), eventstore.Reservation{Scope: r.PathValue("scope"), Value: r.PathValue("value")})
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, reservationResponse{Scope: res.Scope, Value: res.Value, StreamID: res.Stream.String(),
			Version: res.Version, ReservedAt: res.At})
		return nil
	}
}
