package runner

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// States of a projection.
const (
	// StateRunning: its workers apply events.
	StateRunning = "running"
	// StateHalted: a poison event stopped it (policy halt) until
	// `projector resume`; Status.Halted says which event and why.
	StateHalted = "halted"
	// StateNew: defined, but no worker has set it up yet.
	StateNew = "new"
)

// Status is what `projector status` and GET /v1/projections show of a
// projection.
type Status struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Generation int64  `json:"generation"`
	// Policy is the poison policy, "halt" or "park".
	Policy string `json:"policy"`
	// Partitions holds one entry per partition of its topics.
	Partitions []PartitionStatus `json:"partitions"`
	// Lag is the sum of the partitions' lags, in events.
	Lag int64 `json:"lag"`
	// EventsPerSecond is the rate of events applied by all workers over
	// the last sampling interval, when known.
	EventsPerSecond *float64 `json:"eventsPerSecond,omitempty"`
	// Applied counts events applied in this generation.
	Applied int64 `json:"applied"`
	// Parked counts the events parked in this generation.
	Parked int64 `json:"parked"`
	// Halted describes the poison event that halted it.
	Halted *Halt `json:"halted,omitempty"`
	// Rebuild describes a rebuild in progress.
	Rebuild *RebuildStatus `json:"rebuild,omitempty"`
}

// PartitionStatus is one partition's progress. Offset is the next offset
// to apply; End the partition's last stable offset in Kafka (-1 when
// Kafka could not be asked); Lag their difference, in records.
type PartitionStatus struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	End       int64     `json:"end"`
	Lag       int64     `json:"lag"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Halt is the event that halted a projection, and the error it caused.
type Halt struct {
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	StreamID  string    `json:"streamId,omitempty"`
	Version   int64     `json:"version,omitempty"`
	Type      string    `json:"type,omitempty"`
	// GapAfter, for a halt on a gap, is the stream's version stored when
	// the event came: versions GapAfter+1 to Version-1 were never applied.
	GapAfter *int64 `json:"gapAfter,omitempty"`
}

// RebuildStatus is a rebuild's progress: the generation it builds, and
// how many of the records present when it started it has applied.
type RebuildStatus struct {
	Generation int64     `json:"generation"`
	StartedAt  time.Time `json:"startedAt"`
	Done       int64     `json:"done"`
	Total      int64     `json:"total"`
}

// Monitor reports the status of projections, for `projector status`,
// `projector list` and the read API. It remembers its last sample to give
// rates. Safe for concurrent use.
type Monitor struct {
	db        *pgxpool.Pool
	book      book
	consumers Consumers
	topic     func(string) string
	defs      map[string][]string // projection → categories
	policies  map[string]string
	runners   map[string]*Runner

	mu   sync.Mutex
	last map[string]sample
}

type sample struct {
	at      time.Time
	applied int64
}

// NewMonitor returns a Monitor of the projections defined (name →
// runner), reading the bookkeeping through db and end offsets through
// consumers (nil: lags are not computed).
func NewMonitor(db *pgxpool.Pool, runners []*Runner, consumers Consumers) *Monitor {
	m := &Monitor{db: db, consumers: consumers, defs: map[string][]string{}, policies: map[string]string{},
		runners: map[string]*Runner{}, last: map[string]sample{}}
	m.book = newBook(DefaultSchema)
	m.topic = func(c string) string { return "events." + c }
	for _, r := range runners {
		m.book, m.topic = r.book, r.opts.Topic
		m.defs[r.p.Name] = r.p.Categories
		m.policies[r.p.Name] = string(r.p.Policy())
		m.runners[r.p.Name] = r
	}
	return m
}

// Statuses returns the status of every projection defined here or known to
// the read-model database, by name.
func (m *Monitor) Statuses(ctx context.Context) ([]Status, error) {
	set, err := m.book.exists(ctx, m.db)
	if err != nil {
		return nil, err
	}
	var rows []projectionRow
	parked := map[string]int64{}
	if set { // else no projection has been set up yet: all are new
		if rows, err = m.book.loadAll(ctx, m.db); err != nil {
			return nil, err
		}
		if parked, err = m.parked(ctx); err != nil {
			return nil, err
		}
	}
	byName := map[string]projectionRow{}
	var names []string
	for _, r := range rows {
		byName[r.Name] = r
		names = append(names, r.Name)
	}
	for name := range m.defs {
		if _, ok := byName[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	var out []Status
	now := time.Now()
	for _, name := range names {
		row, known := byName[name]
		s := Status{Name: name, State: StateNew, Policy: m.policies[name], Parked: parked[name]}
		if known {
			s.State, s.Generation = row.State, row.Generation
			s.Halted = row.HaltedEvent
			if row.BuildGeneration != nil {
				s.Rebuild = &RebuildStatus{Generation: *row.BuildGeneration, StartedAt: deref(row.BuildStartedAt),
					Done: deref(row.BuildDone), Total: deref(row.BuildTotal)}
			}
		}
		if err := m.partitions(ctx, &s, known); err != nil {
			return nil, err
		}
		m.mu.Lock()
		if prev, ok := m.last[name]; ok && now.Sub(prev.at) > 0 && s.Applied >= prev.applied {
			rate := float64(s.Applied-prev.applied) / now.Sub(prev.at).Seconds()
			s.EventsPerSecond = &rate
		}
		m.last[name] = sample{at: now, applied: s.Applied}
		m.mu.Unlock()
		out = append(out, s)
	}
	return out, nil
}

// parked counts the parked events of each projection's serving generation.
func (m *Monitor) parked(ctx context.Context) (map[string]int64, error) {
	rows, err := m.db.Query(ctx, `SELECT p.projection, count(*) FROM `+m.book.schema+`.parked_events p
		JOIN `+m.book.schema+`.projections j ON j.name = p.projection AND j.generation = p.generation GROUP BY 1`)
	if err != nil {
		return nil, err
	}
	parked := map[string]int64{}
	var name string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error { parked[name] = n; return nil })
	return parked, err
}

// partitions fills in the partitions, their lags and the applied count.
func (m *Monitor) partitions(ctx context.Context, s *Status, known bool) error {
	stored := map[partitionKey]PartitionStatus{}
	if known {
		rows, err := m.db.Query(ctx, `SELECT topic, partition, next_offset, applied, updated_at FROM `+m.book.schema+`.projection_offsets
			WHERE projection = $1 AND generation = $2`, s.Name, s.Generation)
		if err != nil {
			return err
		}
		var p PartitionStatus
		var applied int64
		_, err = pgx.ForEachRow(rows, []any{&p.Topic, &p.Partition, &p.Offset, &applied, &p.UpdatedAt}, func() error {
			stored[partitionKey{p.Topic, p.Partition}] = p
			s.Applied += applied
			return nil
		})
		if err != nil {
			return err
		}
	}
	ends := map[string]map[int32]int64{}
	if cats := m.defs[s.Name]; m.consumers != nil && len(cats) > 0 {
		topics := make([]string, len(cats))
		for i, c := range cats {
			topics[i] = m.topic(c)
		}
		var err error
		if ends, err = m.consumers.EndOffsets(ctx, topics); err != nil {
			ends = map[string]map[int32]int64{}
		}
	}
	for topic, ps := range ends {
		for p, end := range ps {
			k := partitionKey{topic, p}
			st, ok := stored[k]
			if !ok {
				st = PartitionStatus{Topic: topic, Partition: p}
			}
			st.End = end
			st.Lag = max(0, end-st.Offset)
			stored[k] = st
		}
	}
	for _, p := range stored {
		if _, ok := ends[p.Topic][p.Partition]; !ok {
			p.End, p.Lag = -1, 0
		}
		s.Partitions = append(s.Partitions, p)
		s.Lag += p.Lag
	}
	slices.SortFunc(s.Partitions, func(a, b PartitionStatus) int {
		if a.Topic != b.Topic {
			return strings.Compare(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	})
	return nil
}

// Resume clears the halt of projection name: its workers go on with the
// event that halted it. It returns the halt it cleared, nil if the
// projection was not halted. A halt on a gap is resumed by accepting the
// gap: the stream's stored version is set to the one before the held
// event, which is then applied, and the versions missing, should they
// come later, are dropped as applied before.
func (m *Monitor) Resume(ctx context.Context, name string) (*Halt, error) {
	return m.book.resume(ctx, m.db, name)
}
