package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Reservation is a unique value in a scope ("customer-email",
// "a@b.c"): at most one stream holds it. Values are compared byte for
// byte; fold them first where case must not matter.
type Reservation struct {
	Scope string `json:"scope"`
	Value string `json:"value"`
}

// Reserved is a reservation and the stream holding it.
type Reserved struct {
	Scope    string `json:"scope"`
	Value    string `json:"value"`
	StreamID string `json:"streamId"`
	// Version is the holder's version after the append that claimed it.
	Version    int64     `json:"version"`
	ReservedAt time.Time `json:"reservedAt"`
}

// AppendReserving appends a.Events to a.StreamID as Append does, and in
// the same transaction claims the values of a.Reserve and gives up those
// of a.Release. A value held by another stream, claimed or released, is
// an *Error coded reservation_taken naming the holder
// (IsReservationTaken, Error.Holder), and nothing is stored; so is a
// failed expected version. A value released that no stream holds is no
// error. At most 100 values in all.
func (c *Client) AppendReserving(ctx context.Context, a StreamAppend) (AppendResult, error) {
	return c.append(ctx, a.StreamID, appendRequest{ExpectedVersion: a.ExpectedVersion, Events: a.Events, Reserve: a.Reserve, Release: a.Release})
}

// Reservation returns the stream holding value in scope; a value nobody
// holds is an *Error coded reservation_not_found.
func (c *Client) Reservation(ctx context.Context, scope, value string) (Reserved, error) {
	var r Reserved
	if _, err := c.do(ctx, http.MethodGet, "/v1/reservations/"+url.PathEscape(scope)+"/"+url.PathEscape(value), nil, nil, &r); err != nil {
		return Reserved{}, fmt.Errorf("reservation %s %q: %w", scope, value, err)
	}
	return r, nil
}
