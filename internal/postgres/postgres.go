// Package postgres is Strata's PostgreSQL adapter: the event Store, the
// snapshot-difference batches that order $all and categories without gaps,
// and the embedded, versioned migrations.
//
// Every table lives in one schema (default "strata"), set as the search_path
// of the connections this package opens, so the SQL names tables plainly.
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/eventstore"
)

// Defaults for Options.
const (
	DefaultSchema    = "strata"
	DefaultMaxConns  = 32
	DefaultSliceSize = 1000

	DefaultKnownVersions = 100_000
	DefaultGroupSlots    = 2
	DefaultMaxGroup      = 256
)

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// Schema holds the store's tables; default "strata".
	Schema string
	// MaxConns bounds the connection pool when the URL has no
	// pool_max_conns; default 32.
	MaxConns int32
	// ConnectTimeout bounds each new connection; default 5s, so that an
	// unreachable database fails requests quickly instead of hanging.
	ConnectTimeout time.Duration
	// SettleTimeout bounds how long an append whose connection failed
	// after it was sent keeps asking whether it committed; default 15s.
	SettleTimeout time.Duration
	// GroupSlots is how many group-commit statements may run at once
	// (see group.go); default 2, and a negative value turns grouping off.
	// Fewer slots make larger groups. Two suit a database server of a
	// few cores; measured on two cores, four or eight slots made groups
	// too small to pay for themselves at 16 concurrent appends.
	GroupSlots int
	// MaxGroup bounds the appends in one group; default 256.
	MaxGroup int
	// SliceSize is the number of rows a snapshot-difference batch is cut
	// into at most (a single larger transaction stays whole); default 1000.
	SliceSize int
	// KnownVersions bounds how many streams' versions the store remembers
	// to spare appends a look-up (see knownVersions); default 100,000, and
	// a negative value remembers none.
	KnownVersions int
	Logger        *slog.Logger
}

// Store is the PostgreSQL event store. It is safe for concurrent use.
type Store struct {
	pool          *pgxpool.Pool
	schema        string
	sliceSize     int
	log           *slog.Logger
	epoch         atomic.Int64             // loaded by Check; cursors carry it
	scavenged     atomic.Int64             // events removed by ScavengeBatch
	id            atomic.Pointer[[16]byte] // loaded by Check: the store's identity
	versions      *knownVersions
	settleTimeout time.Duration
	groups        *appendGroups // nil: every append is stored on its own

	// connected is set once a connection was made, and pooled when one
	// went through a connection pooler (see errPooled).
	connected, pooled atomic.Bool
	// serverStart is when the server of the last new connection started
	// (Unix nanoseconds; see recordBackend).
	serverStart atomic.Int64
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to the database at url. It does not create or check tables:
// call Migrate to create them, or Check to verify that they are current.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if opts.SliceSize <= 0 {
		opts.SliceSize = DefaultSliceSize
	}
	if opts.KnownVersions == 0 {
		opts.KnownVersions = DefaultKnownVersions
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.GroupSlots == 0 {
		opts.GroupSlots = DefaultGroupSlots
	}
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = DefaultMaxGroup
	}
	if opts.SettleTimeout <= 0 {
		opts.SettleTimeout = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open store: parse database url: %w", redactURLError(err))
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
		if opts.MaxConns > 0 {
			cfg.MaxConns = opts.MaxConns
		}
	}
	if !strings.Contains(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "strata"
	s := &Store{
		schema:        opts.Schema,
		sliceSize:     opts.SliceSize,
		versions:      newKnownVersions(opts.KnownVersions),
		settleTimeout: opts.SettleTimeout,
		log:           opts.Logger.With("component", "store"),
	}
	cfg.AfterConnect = s.recordBackend
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if opts.GroupSlots > 0 {
		s.groups = newAppendGroups(opts.GroupSlots, opts.MaxGroup)
	}
	s.epoch.Store(1)
	return s, nil
}

// Close closes the connection pool, waiting for connections in use.
func (s *Store) Close() { s.pool.Close() }

// Pool returns the connection pool, for the packages that keep their own
// tables in the store's schema (the registry) and for metrics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// ID returns the store's identity, made when its tables were created; the
// zero UUID before Check or Migrate.
func (s *Store) ID() eventstore.UUID {
	if id := s.id.Load(); id != nil {
		return *id
	}
	return eventstore.UUID{}
}

// Schema returns the name of the store's schema.
func (s *Store) Schema() string { return s.schema }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return translate(err)
	}
	return nil
}

func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

// redactURLError keeps passwords out of errors about malformed URLs: pgx
// includes the URL in some parse errors.
func redactURLError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		if j := strings.Index(msg[i:], "@"); j >= 0 {
			msg = msg[:i+3] + "***" + msg[i+j:]
		}
	}
	return fmt.Errorf("%s", msg)
}
