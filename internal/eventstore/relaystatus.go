package eventstore

import (
	"context"
	"time"
)

// RelayReport is what the active outbox relay says of itself. Its
// checkpoint lives in Kafka, where a writer that is not the active relay
// cannot see it: so the active relay keeps its report in the store, for
// every writer to tell.
type RelayReport struct {
	// Instance names the relay (host/pid), and ActiveSince is when it
	// took the relay lease.
	Instance    string
	ActiveSince time.Time
	// Checkpoint is the last one it committed, or loaded when its term
	// began.
	Checkpoint RelayCheckpoint
	// LagSeconds is, while the relay is behind, the age of the last event
	// it published; 0 once it has caught up.
	LagSeconds float64
	// Halted is set while the relay is halted.
	Halted *RelayHalt
}

// RelayCheckpoint is a committed relay checkpoint, in the figures people
// read: the last published event's global position, the number of events
// published so far, and when it was committed (zero for a store whose
// relay never committed). Partitions is the partition count of each topic
// the relay published to, by topic: a stream's partition among them is
// where its events go.
type RelayCheckpoint struct {
	// Cursor is the checkpoint's position in the store: every event
	// before it is published (the scavenger removes none after it).
	Cursor     Cursor
	Position   int64
	Published  int64
	At         time.Time
	Partitions map[string]int
}

// RelayHalt is why the relay stopped publishing until an operator acts
// (relay.HaltError), and since when.
type RelayHalt struct {
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Remedy  string    `json:"remedy"`
	Since   time.Time `json:"since"`
}

// RelayStatus is what a store knows of its relay.
type RelayStatus struct {
	// Active says whether a relay holds the store's relay lease now.
	Active bool
	// Last is the last report of the relay that is active, or was
	// active last; nil when no relay ever reported.
	Last *RelayReport
	// UpdatedAt is when Last was saved. LagEvents is the store's last
	// position less Last's checkpoint position: an upper bound of the
	// events not yet published, since positions may have holes.
	UpdatedAt time.Time
	LagEvents int64
}

// RelayStatusReader is a store that tells what it knows of its relay.
type RelayStatusReader interface {
	RelayStatus(ctx context.Context) (RelayStatus, error)
}
