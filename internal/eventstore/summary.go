package eventstore

import (
	"context"
	"time"
)

// Summary is what a store holds, in figures cheap enough to ask for
// every few seconds at any size.
type Summary struct {
	// Events and Streams count what is stored: exactly on a small store,
	// and from the database's statistics on a large one (Estimated).
	Events    int64 `json:"events"`
	Streams   int64 `json:"streams"`
	Estimated bool  `json:"estimated"`
	// Categories are the categories that have events, in name order.
	Categories []string `json:"categories"`
	// LastPosition and LastRecordedAt are those of the latest event, if
	// any: their change between two summaries says how fast the store
	// grows.
	LastPosition   int64      `json:"lastPosition"`
	LastRecordedAt *time.Time `json:"lastRecordedAt,omitempty"`
	// Head is a cursor past every event committed when the summary was
	// made: a subscription to $all after it gets what comes next.
	Head Cursor `json:"head"`
}

// Summarizer is a store that can summarize itself.
type Summarizer interface {
	Summarize(ctx context.Context) (Summary, error)
}
