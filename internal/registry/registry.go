package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"unicode"

	"github.com/strata-events/strata/internal/avro"
)

// Version selectors, as the Confluent API and franz-go's sr name them.
const (
	// Latest selects a subject's latest version ("latest" or -1 in paths).
	Latest = -1
	// AllVersions selects every version of a subject, for compatibility
	// checks that apply the subject's level as a registration would.
	AllVersions = -2
)

// SubjectSchema is a schema as the registry API shows it: one version of
// a subject, or a schema by id alone (Subject "", Version 0).
type SubjectSchema struct {
	Subject string
	Version int
	ID      int
	Schema  string // the schema text as first registered
}

// Registration is what registering a schema under a subject did.
type Registration struct {
	Subject string
	Version int
	ID      int
	// New is false when the subject already held the schema (its
	// canonical form): nothing was registered.
	New bool
}

// Options configures a Registry. The zero value gives the defaults.
type Options struct {
	// Logger receives registrations and configuration changes; default
	// none.
	Logger *slog.Logger
}

// Registry is the embedded schema registry: it checks and registers
// schemas, and answers look-ups, over a Storage. It is safe for concurrent
// use. Registrations are serialised by the Storage.
type Registry struct {
	store Storage
	log   *slog.Logger

	mu     sync.Mutex
	parsed map[uint64]*avro.Schema // stored schemas by fingerprint

	subsMu  sync.Mutex
	subs    map[int]func()
	nextSub int
}

// New returns a Registry over store.
func New(store Storage, opts Options) *Registry {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{store: store, log: opts.Logger.With("component", "registry"),
		parsed: map[uint64]*avro.Schema{}, subs: map[int]func(){}}
}

// Subscribe calls fn after every registration through this Registry that
// stored a new version, synchronously, before the registration returns:
// a Catalog uses it to see in-process registrations at once. It returns a
// function that cancels the subscription.
func (r *Registry) Subscribe(fn func()) (cancel func()) {
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	return func() {
		r.subsMu.Lock()
		defer r.subsMu.Unlock()
		delete(r.subs, id)
	}
}

func (r *Registry) notify() {
	r.subsMu.Lock()
	fns := make([]func(), 0, len(r.subs))
	for _, fn := range r.subs {
		fns = append(fns, fn)
	}
	r.subsMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Parse parses schema text for registration: Avro only, any top-level type
// (Confluent clients register "string" key schemas, for instance). It fails
// with CodeInvalidSchema.
func Parse(text string) (*avro.Schema, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errorf(CodeInvalidSchema, "Invalid schema: the schema is empty")
	}
	s, err := avro.ParseAny(text)
	if err != nil {
		return nil, &Error{Code: CodeInvalidSchema, Message: "Invalid schema: " + err.Error(), Err: err}
	}
	return s, nil
}

// candidate is a schema to register under a subject.
type candidate struct {
	subject string
	schema  *avro.Schema
}

// itemError is the error of one entry of a batch registration.
type itemError struct {
	index int
	err   error
}

func (e *itemError) Error() string { return e.err.Error() }
func (e *itemError) Unwrap() error { return e.err }

// Register registers schema (its text) under subject as the subject's next
// version, if it passes the subject's compatibility level, and returns its
// id and version. A schema whose canonical form the subject already holds
// is not registered again: its existing version is returned. The same
// schema under two subjects has one id.
//
// Errors (*Error): CodeInvalidSchema for text that is not an Avro schema,
// for a record-name subject whose event type (the record's simple name) is
// already another subject's, and for a schema not named as its
// record-name subject; CodeInvalidSubject; CodeIncompatibleSchema with the
// rules broken; CodeStoreError when the Storage fails.
func (r *Registry) Register(ctx context.Context, subject, schema string) (Registration, error) {
	s, err := Parse(schema)
	if err != nil {
		return Registration{}, err
	}
	regs, err := r.register(ctx, []candidate{{subject, s}}, false)
	if err != nil {
		var ie *itemError
		if errors.As(err, &ie) {
			err = ie.err
		}
		return Registration{}, err
	}
	return regs[0], nil
}

func (r *Registry) register(ctx context.Context, items []candidate, dryRun bool) ([]Registration, error) {
	batch := make([]NewVersion, len(items))
	for i, c := range items {
		if err := checkSubject(c.subject); err != nil {
			return nil, &itemError{i, err}
		}
		batch[i] = NewVersion{Subject: c.subject, EventType: eventType(c.subject, c.schema),
			Fingerprint: c.schema.Fingerprint(), Canonical: c.schema.Canonical(), Text: c.schema.Text()}
	}
	check := func(i int, st SubjectState) error {
		if err := r.admit(items[i].subject, items[i].schema, st); err != nil {
			return &itemError{i, err}
		}
		return nil
	}
	results, err := r.store.Register(ctx, batch, check, dryRun)
	if err != nil {
		var ie *itemError
		if errors.As(err, &ie) {
			return nil, ie
		}
		return nil, storeError("register schemas", err)
	}
	regs := make([]Registration, len(results))
	stored := false
	for i, res := range results {
		regs[i] = Registration{Subject: items[i].subject, Version: res.Version, ID: res.ID, New: res.New}
		stored = stored || res.New
		if res.New && !dryRun {
			r.log.Info("schema registered", "subject", items[i].subject, "version", res.Version, "id", res.ID)
		}
	}
	if stored && !dryRun {
		r.notify()
	}
	return regs, nil
}

// checkSubject refuses what Confluent refuses as a subject name: empty, or
// holding control characters.
func checkSubject(subject string) error {
	if subject == "" || strings.IndexFunc(subject, unicode.IsControl) >= 0 {
		return errorf(CodeInvalidSubject, "The specified subject '%s' is not a valid subject name.", subject)
	}
	return nil
}

// eventType returns the event type of s: the record's simple name when
// subject follows the record-name strategy for s ("$" and the name for a
// system record, see SystemNamespace), and "" otherwise.
func eventType(subject string, s *avro.Schema) string {
	if s.Type() != "record" || s.FullName() != subject {
		return ""
	}
	if t := systemType(subject); t != "" {
		return t
	}
	return s.Name()
}

// admit decides whether s may become subject's next version.
func (r *Registry) admit(subject string, s *avro.Schema, st SubjectState) error {
	existing, err := r.parseAll(st.Versions)
	if err != nil {
		return err
	}
	return admit(subject, s, existing, st)
}

// admit applies the registry's rules to a new version s of subject, whose
// existing versions (oldest first) are parsed in existing: the record-name
// strategy, unique event types, and the compatibility level.
func admit(subject string, s *avro.Schema, existing []*avro.Schema, st SubjectState) error {
	typ := eventType(subject, s)
	if n := len(existing); n > 0 && eventType(subject, existing[n-1]) != "" && typ == "" {
		return errorf(CodeInvalidSchema, "Invalid schema: subject %q follows the record-name strategy (it is the event type %s), "+
			"so only a record named %s can be registered under it, not %s", subject, existing[n-1].Name(), subject, describe(s))
	}
	if typ != "" && st.EventTypeOwner != "" {
		return errorf(CodeInvalidSchema, "Invalid schema: the event type %s is already registered as subject %q; an event type is "+
			"the record's simple name and must be unique in the store, so the record %s cannot be registered", typ, st.EventTypeOwner, subject)
	}
	level, err := parseStoredLevel(st.Level)
	if err != nil {
		return err
	}
	if err := level.Check(s, existing); err != nil {
		return incompatible(subject, err, st.Versions)
	}
	return nil
}

func describe(s *avro.Schema) string {
	if s.FullName() != "" {
		return fmt.Sprintf("the %s %s", s.Type(), s.FullName())
	}
	return "a schema of type " + s.Type()
}

// incompatible turns a failed level check into Confluent's 409.
func incompatible(subject string, err error, versions []StoredSchema) error {
	var le *avro.LevelError
	if !errors.As(err, &le) {
		return storeError("check compatibility", err)
	}
	return &Error{Code: CodeIncompatibleSchema, Err: err,
		Message: fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]",
			subject, strings.Join(incompatibilityMessages(le, versions), ", "))}
}

// incompatibilityMessages lists a failed check as the verbose messages of
// a compatibility check: each broken rule first (Avro's names, as
// Confluent reports them), with where and which version, then the level.
func incompatibilityMessages(le *avro.LevelError, versions []StoredSchema) []string {
	var msgs []string
	for _, f := range le.Failures {
		v := versions[f.Existing].Version
		dir := fmt.Sprintf("version %d cannot read data written with the new schema", v)
		if f.NewIsReader {
			dir = fmt.Sprintf("the new schema cannot read data written with version %d", v)
		}
		for _, inc := range f.Incompatibilities {
			msgs = append(msgs, fmt.Sprintf("%s (%s)", inc, dir))
		}
	}
	return append(msgs, fmt.Sprintf("{compatibility: '%s'}", le.Level))
}

func parseStoredLevel(level string) (avro.Level, error) {
	if level == "" {
		return avro.DefaultLevel, nil
	}
	l, err := avro.ParseLevel(level)
	if err != nil {
		return "", storeError("read compatibility level", err)
	}
	return l, nil
}

// parseAll parses stored schemas, each once per Registry.
func (r *Registry) parseAll(stored []StoredSchema) ([]*avro.Schema, error) {
	out := make([]*avro.Schema, len(stored))
	for i, st := range stored {
		s, err := r.parseStored(st)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func (r *Registry) parseStored(st StoredSchema) (*avro.Schema, error) {
	r.mu.Lock()
	s, ok := r.parsed[st.Fingerprint]
	r.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := avro.ParseAny(st.Text)
	if err != nil {
		return nil, storeError(fmt.Sprintf("parse stored schema %d", st.ID), err)
	}
	r.mu.Lock()
	r.parsed[st.Fingerprint] = s
	r.mu.Unlock()
	return s, nil
}

// SchemaByID returns the schema with the given id (Subject and Version
// empty). Errors: CodeSchemaNotFound, CodeStoreError.
func (r *Registry) SchemaByID(ctx context.Context, id int) (SubjectSchema, error) {
	st, found, err := r.store.Schema(ctx, id)
	if err != nil {
		return SubjectSchema{}, storeError("read schema", err)
	}
	if !found {
		return SubjectSchema{}, schemaNotFound(id)
	}
	return SubjectSchema{ID: st.ID, Schema: st.Text}, nil
}

// SchemaVersions returns the subject versions that hold the schema with
// the given id. Errors: CodeSchemaNotFound, CodeStoreError.
func (r *Registry) SchemaVersions(ctx context.Context, id int) ([]SubjectSchema, error) {
	all, err := r.Schemas(ctx)
	if err != nil {
		return nil, err
	}
	var out []SubjectSchema
	for _, s := range all {
		if s.ID == id {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, schemaNotFound(id)
	}
	return out, nil
}

// Subjects returns the subjects, sorted. Errors: CodeStoreError.
func (r *Registry) Subjects(ctx context.Context) ([]string, error) {
	subjects, err := r.store.Subjects(ctx)
	if err != nil {
		return nil, storeError("list subjects", err)
	}
	return subjects, nil
}

// Versions returns the subject's version numbers, oldest first. Errors:
// CodeSubjectNotFound, CodeStoreError.
func (r *Registry) Versions(ctx context.Context, subject string) ([]int, error) {
	stored, err := r.versions(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(stored))
	for i, v := range stored {
		out[i] = v.Version
	}
	return out, nil
}

func (r *Registry) versions(ctx context.Context, subject string) ([]StoredSchema, error) {
	stored, err := r.store.Versions(ctx, subject)
	if err != nil {
		return nil, storeError("list versions", err)
	}
	if len(stored) == 0 {
		return nil, subjectNotFound(subject)
	}
	return stored, nil
}

// Version returns one version of subject, or its latest with Latest.
// Errors: CodeSubjectNotFound, CodeVersionNotFound, CodeStoreError.
func (r *Registry) Version(ctx context.Context, subject string, version int) (SubjectSchema, error) {
	stored, err := r.versions(ctx, subject)
	if err != nil {
		return SubjectSchema{}, err
	}
	v, ok := pick(stored, version)
	if !ok {
		return SubjectSchema{}, versionNotFound(version)
	}
	return SubjectSchema{Subject: v.Subject, Version: v.Version, ID: v.ID, Schema: v.Text}, nil
}

func pick(stored []StoredSchema, version int) (StoredSchema, bool) {
	if version == Latest && len(stored) > 0 {
		return stored[len(stored)-1], true
	}
	for _, v := range stored {
		if v.Version == version {
			return v, true
		}
	}
	return StoredSchema{}, false
}

// Lookup finds the version of subject that holds schema (by canonical
// form). Errors: CodeInvalidSchema, CodeSubjectNotFound,
// CodeSchemaNotFound (the subject exists but does not hold it),
// CodeStoreError.
func (r *Registry) Lookup(ctx context.Context, subject, schema string) (SubjectSchema, error) {
	stored, err := r.versions(ctx, subject)
	if err != nil {
		return SubjectSchema{}, err
	}
	s, err := Parse(schema)
	if err != nil {
		return SubjectSchema{}, err
	}
	v, ok := holds(stored, s)
	if !ok {
		return SubjectSchema{}, schemaNotFound(0)
	}
	return SubjectSchema{Subject: v.Subject, Version: v.Version, ID: v.ID, Schema: v.Text}, nil
}

// CheckCompatibility checks schema against one version of subject (a
// number, or Latest), or with AllVersions against the versions that the
// subject's level names, as a registration would. It returns the messages
// of the broken rules, none when compatible. As Confluent does, checking
// against the latest version of a subject that has none passes.
//
// Errors: CodeVersionNotFound, CodeInvalidSchema, CodeStoreError.
func (r *Registry) CheckCompatibility(ctx context.Context, subject string, version int, schema string) ([]string, error) {
	stored, err := r.store.Versions(ctx, subject)
	if err != nil {
		return nil, storeError("list versions", err)
	}
	against := stored
	if version != AllVersions {
		v, ok := pick(stored, version)
		switch {
		case ok:
			against = []StoredSchema{v}
		case version == Latest:
			against = nil
		default:
			return nil, versionNotFound(version)
		}
	}
	s, err := Parse(schema)
	if err != nil {
		return nil, err
	}
	existing, err := r.parseAll(against)
	if err != nil {
		return nil, err
	}
	level, err := r.EffectiveLevel(ctx, subject)
	if err != nil {
		return nil, err
	}
	if err := level.Check(s, existing); err != nil {
		var le *avro.LevelError
		if !errors.As(err, &le) {
			return nil, storeError("check compatibility", err)
		}
		return incompatibilityMessages(le, against), nil
	}
	return nil, nil
}

// EffectiveLevel returns the compatibility level that applies to subject:
// its own, else the global one, else the default (FULL_TRANSITIVE). The
// subject "" asks for the global level. Errors: CodeStoreError.
func (r *Registry) EffectiveLevel(ctx context.Context, subject string) (avro.Level, error) {
	for _, s := range []string{subject, ""} {
		level, err := r.store.Level(ctx, s)
		if err != nil {
			return "", storeError("read compatibility level", err)
		}
		if level != "" {
			return parseStoredLevel(level)
		}
		if subject == "" {
			break
		}
	}
	return avro.DefaultLevel, nil
}

// Level returns the level configured for subject ("" for the global level,
// which is the default when none is configured). For a subject without a
// level of its own it fails with CodeSubjectCompatibilityNotConfigured,
// unless defaultToGlobal asks for the global level instead.
func (r *Registry) Level(ctx context.Context, subject string, defaultToGlobal bool) (avro.Level, error) {
	if subject == "" || defaultToGlobal {
		return r.EffectiveLevel(ctx, subject)
	}
	level, err := r.store.Level(ctx, subject)
	if err != nil {
		return "", storeError("read compatibility level", err)
	}
	if level == "" {
		return "", errorf(CodeSubjectCompatibilityNotConfigured, "Subject '%s' does not have subject-level compatibility configured", subject)
	}
	return parseStoredLevel(level)
}

// SetLevel configures the compatibility level of subject ("" for the
// global level); the subject need not exist yet. level is a name as
// avro.ParseLevel reads it. Errors: CodeInvalidCompatibilityLevel,
// CodeStoreError.
func (r *Registry) SetLevel(ctx context.Context, subject, level string) (avro.Level, error) {
	l, err := avro.ParseLevel(level)
	if err != nil {
		return "", invalidLevel()
	}
	if subject != "" {
		if err := checkSubject(subject); err != nil {
			return "", err
		}
	}
	if err := r.store.SetLevel(ctx, subject, string(l)); err != nil {
		return "", storeError("set compatibility level", err)
	}
	r.log.Info("compatibility level set", "subject", subject, "level", l)
	return l, nil
}

// Schemas returns every version of every subject, by subject and version:
// what a Catalog loads. Errors: CodeStoreError.
func (r *Registry) Schemas(ctx context.Context) ([]SubjectSchema, error) {
	all, err := r.store.AllVersions(ctx)
	if err != nil {
		return nil, storeError("list schemas", err)
	}
	out := make([]SubjectSchema, len(all))
	for i, v := range all {
		out[i] = SubjectSchema{Subject: v.Subject, Version: v.Version, ID: v.ID, Schema: v.Text}
	}
	return out, nil
}

// Generation returns a number that changes whenever a registration
// commits, from this process or another. Errors: CodeStoreError.
func (r *Registry) Generation(ctx context.Context) (int64, error) {
	g, err := r.store.Generation(ctx)
	if err != nil {
		return 0, storeError("read generation", err)
	}
	return g, nil
}
