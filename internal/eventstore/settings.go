package eventstore

import (
	"context"
	"time"
)

// Retention is what a stream's reads keep of it: versions from
// TruncateBefore on, the last MaxCount versions, the events recorded
// within MaxAge. Nil fields set no limit. A stream's own retention wins,
// field by field, over its category's.
type Retention struct {
	TruncateBefore *int64
	MaxCount       *int64
	MaxAge         *time.Duration
}

// MinMaxAge is the least MaxAge.
const MinMaxAge = time.Second

// Validate refuses limits that make no sense.
func (r Retention) Validate() error {
	switch {
	case r.TruncateBefore != nil && *r.TruncateBefore < 0:
		return Errorf(CodeInvalidRequest, "truncateBefore must be a version, 0 or more, not %d", *r.TruncateBefore)
	case r.MaxCount != nil && *r.MaxCount < 1:
		return Errorf(CodeInvalidRequest, "maxCount must be at least 1, not %d", *r.MaxCount)
	case r.MaxAge != nil && *r.MaxAge < MinMaxAge:
		return Errorf(CodeInvalidRequest, "maxAge must be at least %s, not %s", MinMaxAge, *r.MaxAge)
	}
	return nil
}

// Over returns r with the fields it lacks taken from fallback.
func (r Retention) Over(fallback Retention) Retention {
	if r.TruncateBefore == nil {
		r.TruncateBefore = fallback.TruncateBefore
	}
	if r.MaxCount == nil {
		r.MaxCount = fallback.MaxCount
	}
	if r.MaxAge == nil {
		r.MaxAge = fallback.MaxAge
	}
	return r
}

// RetentionStore keeps the retention of streams and categories; the
// PostgreSQL store is one.
type RetentionStore interface {
	StreamRetention(ctx context.Context, stream StreamID) (Retention, error)
	SetStreamRetention(ctx context.Context, stream StreamID, r Retention) error
	CategoryRetention(ctx context.Context, category string) (Retention, error)
	SetCategoryRetention(ctx context.Context, category string, r Retention) error
}
