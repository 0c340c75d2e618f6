package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The registry's records. Each is an alias of a struct type, not a new
// type: Go treats identical struct types as one type whatever the package,
// so RegistryStore implements the storage interface that the registry
// package declares (with the same struct types) without this adapter
// importing the registry, or the registry importing this adapter.
type (
	// RegistrySchema is a schema, and with Subject and Version set, one
	// version of a subject. Fingerprint is the CRC-64-AVRO fingerprint of
	// Canonical, its Parsing Canonical Form; Text is the schema as first
	// registered.
	RegistrySchema = struct {
		Subject     string
		Version     int
		ID          int
		Fingerprint uint64
		Canonical   string
		Text        string
	}
	// RegistryNewVersion asks to register a schema under a subject.
	// EventType is the record's simple name when the subject follows the
	// record-name strategy, else "".
	RegistryNewVersion = struct {
		Subject     string
		EventType   string
		Fingerprint uint64
		Canonical   string
		Text        string
	}
	// RegistrySubjectState is what a registration is checked against: the
	// subject's versions (oldest first), its effective compatibility level
	// (the subject's, else the global one, else "" for the default), and
	// the other subject, if any, that already holds the same event type.
	RegistrySubjectState = struct {
		Versions       []RegistrySchema
		Level          string
		EventTypeOwner string
	}
	// RegistryResult is the outcome of one registration: the schema's id,
	// the subject's version that holds it, and whether it was new to the
	// subject.
	RegistryResult = struct {
		ID      int
		Version int
		New     bool
	}
)

// RegistryStore keeps the embedded schema registry's tables (migration
// 0002_registry) in the store's schema. It is safe for concurrent use;
// registrations are serialised by an advisory transaction lock, which is
// cheap because they are rare.
//
// Errors: a database that cannot be reached is eventstore.ErrUnavailable
// (as for the Store); missing tables wrap ErrNotMigrated; anything else is
// returned wrapped with the operation.
type RegistryStore struct {
	pool   *pgxpool.Pool
	schema string
}

// NewRegistryStore returns the registry tables of s's schema. It shares s's
// connection pool: close s, not the RegistryStore.
func NewRegistryStore(s *Store) *RegistryStore {
	return &RegistryStore{pool: s.Pool(), schema: s.Schema()}
}

// Register registers each new version in batch, in order, in one
// transaction: all of them or none. For each one it finds the schema by
// fingerprint (a fingerprint already held by a different canonical form is
// a collision, refused with an error); if the subject already holds the
// schema it reports that version, unchanged, without a check. Otherwise it
// loads the subject's state, calls check(i, state), and only if check
// returns nil inserts the schema (the next id, when new) and the subject's
// next version. An error from check is returned as it is, and nothing of
// the batch is stored. Later entries of a batch see the earlier ones.
//
// With dryRun the transaction is rolled back after the whole batch has
// been checked: the results say what would have been registered.
func (r *RegistryStore) Register(ctx context.Context, batch []RegistryNewVersion, check func(i int, state RegistrySubjectState) error, dryRun bool) (results []RegistryResult, err error) {
	defer wrap(&err, "register schemas")
	errDryRun := errors.New("dry run")
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('strata.registry.' || $1))", r.schema); err != nil {
			return err
		}
		for i, nv := range batch {
			res, err := registerOne(ctx, tx, nv, func(st RegistrySubjectState) error { return check(i, st) })
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		return results, nil
	}
	if err != nil {
		return nil, r.translate(err)
	}
	return results, nil
}

func registerOne(ctx context.Context, tx pgx.Tx, nv RegistryNewVersion, check func(RegistrySubjectState) error) (RegistryResult, error) {
	id, found, err := schemaIDFor(ctx, tx, nv)
	if err != nil {
		return RegistryResult{}, err
	}
	if found {
		var version int
		err := tx.QueryRow(ctx, "SELECT version FROM registry_versions WHERE subject = $1 AND schema_id = $2", nv.Subject, id).Scan(&version)
		if err == nil {
			return RegistryResult{ID: id, Version: version}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return RegistryResult{}, err
		}
	}
	state, err := subjectState(ctx, tx, nv.Subject, nv.EventType)
	if err != nil {
		return RegistryResult{}, err
	}
	if err := check(state); err != nil {
		return RegistryResult{}, err
	}
	if !found {
		err := tx.QueryRow(ctx, `INSERT INTO registry_schemas (id, fingerprint, canonical, schema)
			SELECT coalesce(max(id), 0) + 1, $1, $2, $3 FROM registry_schemas RETURNING id`,
			int64(nv.Fingerprint), nv.Canonical, nv.Text).Scan(&id)
		if err != nil {
			return RegistryResult{}, err
		}
	}
	var eventType *string
	if nv.EventType != "" {
		eventType = &nv.EventType
	}
	_, err = tx.Exec(ctx, `INSERT INTO registry_subjects (subject, event_type) VALUES ($1, $2)
		ON CONFLICT (subject) DO UPDATE SET event_type = coalesce(registry_subjects.event_type, excluded.event_type)`,
		nv.Subject, eventType)
	if err != nil {
		return RegistryResult{}, err
	}
	version := 1
	if n := len(state.Versions); n > 0 {
		version = state.Versions[n-1].Version + 1
	}
	_, err = tx.Exec(ctx, "INSERT INTO registry_versions (subject, version, schema_id) VALUES ($1, $2, $3)", nv.Subject, version, id)
	if err != nil {
		return RegistryResult{}, err
	}
	return RegistryResult{ID: id, Version: version, New: true}, nil
}

// schemaIDFor finds the schema with nv's fingerprint. The fingerprint is
// 64 bits of CRC, not a hash meant to resist collisions: a hit is checked
// against the canonical form, and a mismatch refused rather than letting
// two schemas share an id.
func schemaIDFor(ctx context.Context, q querier, nv RegistryNewVersion) (id int, found bool, err error) {
	var canonical string
	err = q.QueryRow(ctx, "SELECT id, canonical FROM registry_schemas WHERE fingerprint = $1", int64(nv.Fingerprint)).Scan(&id, &canonical)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	case canonical != nv.Canonical:
		return 0, false, fmt.Errorf("fingerprint collision: schema %d and the schema registered under %q share the CRC-64-AVRO fingerprint %016x "+
			"but differ in canonical form (%s and %s); refusing to register it", id, nv.Subject, nv.Fingerprint, canonical, nv.Canonical)
	}
	return id, true, nil
}

func subjectState(ctx context.Context, q querier, subject, eventType string) (RegistrySubjectState, error) {
	var st RegistrySubjectState
	versions, err := versionsOf(ctx, q, subject)
	if err != nil {
		return st, err
	}
	st.Versions = versions
	st.Level, err = effectiveLevel(ctx, q, subject)
	if err != nil {
		return st, err
	}
	if eventType != "" {
		err := q.QueryRow(ctx, "SELECT subject FROM registry_subjects WHERE event_type = $1 AND subject <> $2", eventType, subject).Scan(&st.EventTypeOwner)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return st, err
		}
	}
	return st, nil
}

func effectiveLevel(ctx context.Context, q querier, subject string) (string, error) {
	var level string
	err := q.QueryRow(ctx, `SELECT compatibility FROM registry_config WHERE subject IN ($1, '')
		ORDER BY subject = '' LIMIT 1`, subject).Scan(&level)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return level, err
}

const selectVersions = `SELECT v.subject, v.version, s.id, s.fingerprint, s.canonical, s.schema
	FROM registry_versions v JOIN registry_schemas s ON s.id = v.schema_id`

func versionsOf(ctx context.Context, q querier, subject string) ([]RegistrySchema, error) {
	return collectSchemas(q.Query(ctx, selectVersions+" WHERE v.subject = $1 ORDER BY v.version", subject))
}

func collectSchemas(rows pgx.Rows, err error) ([]RegistrySchema, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (RegistrySchema, error) {
		var s RegistrySchema
		var fp int64
		err := row.Scan(&s.Subject, &s.Version, &s.ID, &fp, &s.Canonical, &s.Text)
		s.Fingerprint = uint64(fp)
		return s, err
	})
}

// Schema returns the schema with the given id (Subject and Version empty),
// and false when there is none.
func (r *RegistryStore) Schema(ctx context.Context, id int) (s RegistrySchema, found bool, err error) {
	defer wrap(&err, "read schema")
	var fp int64
	err = r.pool.QueryRow(ctx, "SELECT id, fingerprint, canonical, schema FROM registry_schemas WHERE id = $1", id).
		Scan(&s.ID, &fp, &s.Canonical, &s.Text)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, r.translate(err)
	}
	s.Fingerprint = uint64(fp)
	return s, true, nil
}

// Subjects returns the subjects that hold at least one version, sorted.
func (r *RegistryStore) Subjects(ctx context.Context) (subjects []string, err error) {
	defer wrap(&err, "list subjects")
	rows, err := r.pool.Query(ctx, "SELECT DISTINCT subject FROM registry_versions ORDER BY subject")
	if err != nil {
		return nil, r.translate(err)
	}
	subjects, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return subjects, r.translate(err)
}

// Versions returns the subject's versions, oldest first; none for a subject
// that does not exist.
func (r *RegistryStore) Versions(ctx context.Context, subject string) (versions []RegistrySchema, err error) {
	defer wrap(&err, "list versions")
	versions, err = versionsOf(ctx, r.pool, subject)
	return versions, r.translate(err)
}

// AllVersions returns every version of every subject, by subject and
// version.
func (r *RegistryStore) AllVersions(ctx context.Context) (versions []RegistrySchema, err error) {
	defer wrap(&err, "list all versions")
	versions, err = collectSchemas(r.pool.Query(ctx, selectVersions+" ORDER BY v.subject, v.version"))
	return versions, r.translate(err)
}

// Generation returns the number of subject versions registered. Versions
// are never deleted, so it changes exactly when a registration commits:
// caches compare it to know whether to reload.
func (r *RegistryStore) Generation(ctx context.Context) (n int64, err error) {
	defer wrap(&err, "read registry generation")
	err = r.pool.QueryRow(ctx, "SELECT count(*) FROM registry_versions").Scan(&n)
	return n, r.translate(err)
}

// Level returns the compatibility level configured for subject ("" for the
// global level), or "" when none is configured.
func (r *RegistryStore) Level(ctx context.Context, subject string) (level string, err error) {
	defer wrap(&err, "read compatibility level")
	err = r.pool.QueryRow(ctx, "SELECT compatibility FROM registry_config WHERE subject = $1", subject).Scan(&level)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return level, r.translate(err)
}

// SetLevel configures the compatibility level of subject ("" for the global
// level). It stores level as given: the registry validates it.
func (r *RegistryStore) SetLevel(ctx context.Context, subject, level string) (err error) {
	defer wrap(&err, "set compatibility level")
	_, err = r.pool.Exec(ctx, `INSERT INTO registry_config (subject, compatibility) VALUES ($1, $2)
		ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility, updated_at = now()`, subject, level)
	return r.translate(err)
}

// translate adds, to the store's translation, a clear message for the
// registry's tables missing: the schema predates migration 0002.
func (r *RegistryStore) translate(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return fmt.Errorf("schema %q has no registry tables (%s): %w", r.schema, pgErr.Message, ErrNotMigrated)
	}
	return translate(err)
}
