package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// The records a Storage keeps. Each is an alias of a struct type, not a new
// type: Go treats identical struct types as one type whatever the package,
// so a storage adapter (postgres.RegistryStore) declares the same structs
// and implements Storage without importing this package, and this package
// never imports an adapter.
type (
	// StoredSchema is a schema, and with Subject and Version set, one
	// version of a subject. Fingerprint is the CRC-64-AVRO fingerprint of
	// Canonical, the Parsing Canonical Form; Text is the schema as first
	// registered.
	StoredSchema = struct {
		Subject     string
		Version     int
		ID          int
		Fingerprint uint64
		Canonical   string
		Text        string
	}
	// NewVersion asks a Storage to register a schema under a subject.
	// EventType is the record's simple name when the subject follows the
	// record-name strategy, else "".
	NewVersion = struct {
		Subject     string
		EventType   string
		Fingerprint uint64
		Canonical   string
		Text        string
	}
	// SubjectState is what a registration is checked against: the
	// subject's versions (oldest first), its effective compatibility level
	// (the subject's, else the global one, else "" for the default), and
	// the other subject, if any, that already holds the same event type.
	SubjectState = struct {
		Versions       []StoredSchema
		Level          string
		EventTypeOwner string
	}
	// StoredResult is the outcome of one registration: the schema's id, the
	// subject's version that holds it, and whether it was new to the
	// subject.
	StoredResult = struct {
		ID      int
		Version int
		New     bool
	}
)

// Storage keeps the registry's schemas, subjects and configuration. It
// stores and loads; the rules (compatibility, event types) are the
// Registry's, which it applies through the check function of Register.
// Implementations are safe for concurrent use.
type Storage interface {
	// Register registers each entry of batch, in order, atomically: all or
	// none. For each, a schema with the same fingerprint but another
	// canonical form is a collision and an error. If the subject already
	// holds the schema, the result is that version, not new, and check is
	// not called. Otherwise check(i, state) is called with the subject's
	// state, which includes the batch's earlier entries; if it returns an
	// error, Register returns it (possibly wrapped) and stores nothing.
	// Else the schema gets the next free id when new, and the subject its
	// next version. With dryRun nothing is stored, but the results are
	// those a real run would give.
	Register(ctx context.Context, batch []NewVersion, check func(i int, state SubjectState) error, dryRun bool) ([]StoredResult, error)
	// Schema returns the schema with the given id (Subject and Version
	// empty), and false when there is none.
	Schema(ctx context.Context, id int) (StoredSchema, bool, error)
	// Subjects returns the subjects that hold a version, sorted.
	Subjects(ctx context.Context) ([]string, error)
	// Versions returns the subject's versions, oldest first, or none.
	Versions(ctx context.Context, subject string) ([]StoredSchema, error)
	// AllVersions returns every version of every subject, by subject and
	// version.
	AllVersions(ctx context.Context) ([]StoredSchema, error)
	// Generation returns a number that changes whenever a registration
	// commits, and only then.
	Generation(ctx context.Context) (int64, error)
	// Level returns the compatibility level configured for subject ("" for
	// the global one), "" when none is.
	Level(ctx context.Context, subject string) (string, error)
	// SetLevel configures the level of subject ("" for the global one).
	SetLevel(ctx context.Context, subject, level string) error
}

// MemStorage is a Storage in memory, for tests of the layers above the
// registry. It is safe for concurrent use; the zero value is not: use
// NewMemStorage.
type MemStorage struct {
	mu    sync.RWMutex
	state memState
}

type memState struct {
	schemas  []StoredSchema            // schemas[i].ID == i+1
	subjects map[string][]StoredSchema // versions, oldest first
	types    map[string]string         // event type → subject
	levels   map[string]string
}

var _ Storage = (*MemStorage)(nil)

// NewMemStorage returns an empty MemStorage.
func NewMemStorage() *MemStorage {
	return &MemStorage{state: memState{subjects: map[string][]StoredSchema{}, types: map[string]string{}, levels: map[string]string{}}}
}

func (s memState) clone() memState {
	c := memState{schemas: slices.Clone(s.schemas), subjects: map[string][]StoredSchema{}, types: map[string]string{}, levels: map[string]string{}}
	for k, v := range s.subjects {
		c.subjects[k] = slices.Clone(v)
	}
	for k, v := range s.types {
		c.types[k] = v
	}
	for k, v := range s.levels {
		c.levels[k] = v
	}
	return c
}

// Register implements Storage.
func (m *MemStorage) Register(ctx context.Context, batch []NewVersion, check func(i int, state SubjectState) error, dryRun bool) ([]StoredResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state.clone()
	var results []StoredResult
	for i, nv := range batch {
		res, err := st.registerOne(nv, func(ss SubjectState) error { return check(i, ss) })
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	if !dryRun {
		m.state = st
	}
	return results, nil
}

func (s *memState) registerOne(nv NewVersion, check func(SubjectState) error) (StoredResult, error) {
	id := 0
	for _, sc := range s.schemas {
		if sc.Fingerprint == nv.Fingerprint {
			if sc.Canonical != nv.Canonical {
				return StoredResult{}, fmt.Errorf("fingerprint collision: schema %d and the schema registered under %q share the fingerprint %016x", sc.ID, nv.Subject, nv.Fingerprint)
			}
			id = sc.ID
		}
	}
	versions := s.subjects[nv.Subject]
	for _, v := range versions {
		if v.ID == id {
			return StoredResult{ID: id, Version: v.Version}, nil
		}
	}
	ss := SubjectState{Versions: slices.Clone(versions), Level: s.levels[nv.Subject]}
	if ss.Level == "" {
		ss.Level = s.levels[""]
	}
	if owner := s.types[nv.EventType]; nv.EventType != "" && owner != nv.Subject {
		ss.EventTypeOwner = owner
	}
	if err := check(ss); err != nil {
		return StoredResult{}, err
	}
	if ss.EventTypeOwner != "" {
		return StoredResult{}, errors.New("event type already taken") // the check must refuse it
	}
	if id == 0 {
		id = len(s.schemas) + 1
		s.schemas = append(s.schemas, StoredSchema{ID: id, Fingerprint: nv.Fingerprint, Canonical: nv.Canonical, Text: nv.Text})
	}
	if nv.EventType != "" {
		if _, taken := s.types[nv.EventType]; !taken {
			s.types[nv.EventType] = nv.Subject
		}
	}
	stored := s.schemas[id-1]
	stored.Subject, stored.Version = nv.Subject, len(versions)+1
	s.subjects[nv.Subject] = append(versions, stored)
	return StoredResult{ID: id, Version: stored.Version, New: true}, nil
}

// Schema implements Storage.
func (m *MemStorage) Schema(ctx context.Context, id int) (StoredSchema, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if id < 1 || id > len(m.state.schemas) {
		return StoredSchema{}, false, ctx.Err()
	}
	return m.state.schemas[id-1], true, ctx.Err()
}

// Subjects implements Storage.
func (m *MemStorage) Subjects(ctx context.Context) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	subjects := make([]string, 0, len(m.state.subjects))
	for s := range m.state.subjects {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	return subjects, ctx.Err()
}

// Versions implements Storage.
func (m *MemStorage) Versions(ctx context.Context, subject string) ([]StoredSchema, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.state.subjects[subject]), ctx.Err()
}

// AllVersions implements Storage.
func (m *MemStorage) AllVersions(ctx context.Context) ([]StoredSchema, error) {
	subjects, err := m.Subjects(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var all []StoredSchema
	for _, s := range subjects {
		all = append(all, m.state.subjects[s]...)
	}
	return all, nil
}

// Generation implements Storage.
func (m *MemStorage) Generation(ctx context.Context) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, v := range m.state.subjects {
		n += len(v)
	}
	return int64(n), ctx.Err()
}

// Level implements Storage.
func (m *MemStorage) Level(ctx context.Context, subject string) (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.state.levels[subject], ctx.Err()
}

// SetLevel implements Storage.
func (m *MemStorage) SetLevel(ctx context.Context, subject, level string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state.levels[subject] = level
	return nil
}
