package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/eventstore"
)

// Source is where a Catalog loads schemas from: the embedded *Registry or
// an external registry's *Client.
type Source interface {
	// Generation returns a number that changes whenever a schema is
	// registered, so that a refresh can skip reloading; 0 means the source
	// cannot tell, and every refresh reloads.
	Generation(ctx context.Context) (int64, error)
	// Schemas returns every version of every subject.
	Schemas(ctx context.Context) ([]SubjectSchema, error)
	// SchemaByID returns a schema by its registry id, for ids that no
	// subject lists (an external registry's deleted subjects).
	SchemaByID(ctx context.Context, id int) (SubjectSchema, error)
}

var (
	_ Source = (*Registry)(nil)
	_ Source = (*Client)(nil)
)

// Defaults for CatalogOptions.
const (
	DefaultRefreshInterval = 2 * time.Second
	DefaultMinRefreshGap   = time.Second
)

// CatalogOptions configures a Catalog. The zero value gives the defaults.
type CatalogOptions struct {
	// RefreshInterval is how often Run reloads from the source, which is
	// how soon a schema registered by another process is used; default 2s.
	RefreshInterval time.Duration
	// MinRefreshGap is the least time between two full reloads caused
	// by what a client sends (an unknown event type, data that breaks the
	// latest schema) from a source that cannot tell its generation (an
	// external registry), so that a flood of bad appends cannot hammer
	// it; default 1s. Misses on stored data (an unknown fingerprint or
	// id, a writer schema newer than the known latest) always reload.
	MinRefreshGap time.Duration
	// Personal encrypts the personal fields of what Encode encodes, and
	// decrypts those of what Decode and DecodeWire decode
	// (personal.Cipher). Without it, data with personal fields is
	// refused, coded unavailable.
	Personal Cipher
	Logger   *slog.Logger
}

// Cipher encrypts and decrypts the personal fields of data written with a
// schema, with the key of the data's subject.
type Cipher interface {
	Seal(ctx context.Context, s *avro.Schema, subject string, data []byte) ([]byte, error)
	Open(ctx context.Context, s *avro.Schema, data []byte) ([]byte, error)
}

// noMasterKey is the error of personal data in a process without keys.
func noMasterKey(s *avro.Schema, what string) error {
	return eventstore.Errorf(eventstore.CodeUnavailable,
		"%s has personal fields (%s), and this process has no master key (STRATA_MASTER_KEY_FILE) to %s them",
		s.Name(), strings.Join(s.PersonalFields(), ", "), what)
}

// seal finds the data subject of data, written with s, and encrypts its
// personal fields with the subject's key. The subject is the field that
// s names (strata.dataSubject), which meta's must equal when it gives
// one, or else meta's; it is set in meta. Data with personal fields must
// have one.
func (c *Catalog) seal(ctx context.Context, s *avro.Schema, data []byte, meta *eventstore.Metadata) ([]byte, error) {
	subject := meta.DataSubject
	if field := s.DataSubjectField(); field != "" {
		v, _, err := s.DataSubject(data)
		if err != nil {
			return nil, err
		}
		if subject != "" && subject != v {
			return nil, eventstore.Errorf(eventstore.CodeInvalidRequest,
				".metadata.dataSubject: %q differs from the event's own data subject, its field %s (%q)", subject, field, v)
		}
		subject = v
	}
	switch {
	case subject == "" && !s.HasPersonal():
		return data, nil
	case subject == "":
		return nil, eventstore.Errorf(eventstore.CodeInvalidRequest,
			".metadata.dataSubject: %s has personal fields (%s): name their data subject in metadata.dataSubject",
			s.Name(), strings.Join(s.PersonalFields(), ", "))
	}
	if err := eventstore.ValidateDataSubject(subject); err != nil {
		return nil, fieldErr(".metadata.dataSubject", err)
	}
	meta.DataSubject = subject
	if !s.HasPersonal() {
		return data, nil
	}
	if c.opts.Personal == nil {
		return nil, noMasterKey(s, "encrypt")
	}
	return c.opts.Personal.Seal(ctx, s, subject, data)
}

func fieldErr(field string, err error) error {
	return eventstore.Errorf(eventstore.ErrorCode(err), "%s: %s", field, err.Error())
}

// open decrypts the personal fields of data written with w.
func (c *Catalog) open(ctx context.Context, w *schemaEntry, data []byte) ([]byte, error) {
	if !w.schema.HasPersonal() {
		return data, nil
	}
	if c.opts.Personal == nil {
		return nil, noMasterKey(w.schema, "decrypt")
	}
	out, err := c.opts.Personal.Open(ctx, w.schema, data)
	if err != nil {
		return nil, fmt.Errorf("decrypt the personal fields of %s written with schema %d: %w", w.schema.Name(), w.id, err)
	}
	return out, nil
}

// Catalog is the writer's, relay's and projector's view of the registry:
// it maps an event type (a record's simple name) to its subject and latest
// schema, a stored fingerprint or a registry id to its schema, and caches
// one compiled resolver per writer/reader pair.
//
// It loads everything from its Source at once and serves from an immutable
// snapshot: known types, fingerprints and ids cost a map look-up, without
// a lock or an allocation of the Catalog's own. Run reloads every few
// seconds; a registration through the embedded Registry reloads before it
// returns; and a miss waits for a reload that started after it, so that a
// schema registered anywhere before its data was written is always known
// when the data is read (concurrent misses share one reload).
//
// Data is never read into a reader schema older than the schema it was
// written with: a writer schema that is not among the known versions of
// the reader's subject makes the Catalog reload before it decodes, and
// only a schema still outside the subject after that (another subject's,
// or a deleted version's) is read as the latest. Safe for concurrent use.
type Catalog struct {
	src  Source
	opts CatalogOptions
	log  *slog.Logger

	snap        atomic.Pointer[snapshot]
	lastAttempt atomic.Int64 // UnixNano of the last reload's start
	reloads     atomic.Int64 // reloads started, counted at their start
	failed      atomic.Pointer[error]

	refreshMu sync.Mutex           // one reload at a time
	parsed    map[int]*avro.Schema // by registry id; under refreshMu
	resMu     sync.RWMutex         // guards resolvers and extra
	resolvers map[[2]uint64]*avro.Resolver
	extra     map[int]*schemaEntry // schemas fetched by id alone
	// foreign remembers writer/reader pairs found outside the reader's
	// subject, and in which snapshot, so that they reload once per
	// snapshot rather than on every record.
	foreign map[[2]uint64]*snapshot

	unsubscribe func()
}

type snapshot struct {
	gen   int64
	types map[string]*typeEntry
	byID  map[int]*schemaEntry
	byFP  map[eventstore.Fingerprint]*schemaEntry
}

type schemaEntry struct {
	id     int
	fp     eventstore.Fingerprint
	schema *avro.Schema
}

type typeEntry struct {
	subject string
	version int
	latest  *schemaEntry
	// versions holds the fingerprint of every version of the subject.
	versions map[eventstore.Fingerprint]bool
	// upcast holds, for each earlier version of the subject, the resolver
	// of its data into the latest schema.
	upcast map[eventstore.Fingerprint]*avro.Resolver
}

// holds reports whether data written with fp is of one of t's versions,
// which its latest schema can read without losing a field.
func (t *typeEntry) holds(fp eventstore.Fingerprint) bool { return t.versions[fp] }

// NewCatalog returns a Catalog over src. It loads nothing yet: call Run,
// or Refresh. When src is a *Registry, the Catalog sees that Registry's
// registrations at once (Close ends that).
func NewCatalog(src Source, opts CatalogOptions) *Catalog {
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.MinRefreshGap <= 0 {
		opts.MinRefreshGap = DefaultMinRefreshGap
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Catalog{src: src, opts: opts, log: opts.Logger.With("component", "catalog"),
		parsed: map[int]*avro.Schema{}, resolvers: map[[2]uint64]*avro.Resolver{}, extra: map[int]*schemaEntry{},
		foreign: map[[2]uint64]*snapshot{}}
	c.snap.Store(&snapshot{gen: -1})
	if reg, ok := src.(*Registry); ok {
		c.unsubscribe = reg.Subscribe(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Refresh(ctx); err != nil {
				c.log.Warn("reload after a registration failed", "err", err)
			}
		})
	}
	return c
}

// Close stops the Catalog following its Registry's registrations. Run and
// the look-ups keep working.
func (c *Catalog) Close() {
	if c.unsubscribe != nil {
		c.unsubscribe()
	}
}

// Run loads the catalog, then reloads it every RefreshInterval until ctx
// is done; it returns nil then. A failed reload is logged and the last
// good snapshot stays in use.
func (c *Catalog) Run(ctx context.Context) error {
	t := time.NewTicker(c.opts.RefreshInterval)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("schema catalog reload failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh reloads the catalog from its source now, unless the source's
// generation shows nothing changed. On failure the previous snapshot stays.
func (c *Catalog) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	return c.reload(ctx)
}

// reload runs under refreshMu.
func (c *Catalog) reload(ctx context.Context) (err error) {
	c.lastAttempt.Store(time.Now().UnixNano())
	c.reloads.Add(1)
	defer func() {
		if err != nil {
			err = fmt.Errorf("schema catalog: %w", err)
			c.failed.Store(&err)
		} else {
			c.failed.Store(nil)
		}
	}()
	gen, err := c.src.Generation(ctx)
	if err != nil {
		return err
	}
	if gen != 0 && gen == c.snap.Load().gen {
		return nil
	}
	all, err := c.src.Schemas(ctx)
	if err != nil {
		return err
	}
	c.snap.Store(c.build(gen, all))
	return nil
}

// build makes a snapshot of all, parsing each schema once per Catalog.
func (c *Catalog) build(gen int64, all []SubjectSchema) *snapshot {
	s := &snapshot{gen: gen, types: map[string]*typeEntry{}, byID: map[int]*schemaEntry{}, byFP: map[eventstore.Fingerprint]*schemaEntry{}}
	slices.SortFunc(all, func(a, b SubjectSchema) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Version, b.Version))
	})
	ambiguous := map[string]bool{}
	for i, v := range all {
		e := s.byID[v.ID]
		if e == nil {
			sc, err := c.parse(v)
			if err != nil {
				c.log.Warn("schema skipped: it does not parse", "subject", v.Subject, "version", v.Version, "id", v.ID, "err", err)
				continue
			}
			e = &schemaEntry{id: v.ID, fp: eventstore.Fingerprint(sc.Fingerprint()), schema: sc}
			s.byID[v.ID] = e
			if old := s.byFP[e.fp]; old == nil || old.id > e.id {
				s.byFP[e.fp] = e
			}
		}
		if i+1 < len(all) && all[i+1].Subject == v.Subject {
			continue // not the subject's latest version
		}
		name := eventType(v.Subject, e.schema)
		if name == "" {
			continue
		}
		if _, taken := s.types[name]; taken || ambiguous[name] {
			// Only an external registry can hold this: the embedded one
			// refuses the second subject.
			c.log.Warn("event type ignored: several subjects hold records of that name", "type", name, "subject", v.Subject)
			delete(s.types, name)
			ambiguous[name] = true
			continue
		}
		s.types[name] = &typeEntry{subject: v.Subject, version: v.Version, latest: e}
	}
	for _, t := range s.types {
		t.versions = map[eventstore.Fingerprint]bool{}
		t.upcast = map[eventstore.Fingerprint]*avro.Resolver{}
		for _, v := range all {
			w := s.byID[v.ID]
			if v.Subject != t.subject || w == nil {
				continue
			}
			t.versions[w.fp] = true
			if w.fp != t.latest.fp {
				if res, err := c.resolver(w.schema, t.latest.schema); err == nil {
					t.upcast[w.fp] = res
				}
			}
		}
	}
	return s
}

func (c *Catalog) parse(v SubjectSchema) (*avro.Schema, error) {
	if s, ok := c.parsed[v.ID]; ok {
		return s, nil
	}
	s, err := avro.ParseAny(v.Schema)
	if err != nil {
		return nil, err
	}
	c.parsed[v.ID] = s
	return s, nil
}

// resolver returns the cached resolver of writer's data into reader's
// shape, compiling it on first use.
func (c *Catalog) resolver(writer, reader *avro.Schema) (*avro.Resolver, error) {
	key := [2]uint64{writer.Fingerprint(), reader.Fingerprint()}
	c.resMu.RLock()
	res, ok := c.resolvers[key]
	c.resMu.RUnlock()
	if ok {
		return res, nil
	}
	res, err := avro.NewResolver(writer, reader)
	if err != nil {
		return nil, err
	}
	c.resMu.Lock()
	c.resolvers[key] = res
	c.resMu.Unlock()
	return res, nil
}

// A miss is what made a look-up reload: data read from the store or
// Kafka, whose schema was registered before the data was written, or what
// a client sent, which may name nothing registered at all.
type miss int

const (
	missStored miss = iota
	missSent
)

// seen returns the count of reloads started so far: a look-up takes it
// before it reads the snapshot, and passes it to reloadAfter if it misses.
func (c *Catalog) seen() int64 { return c.reloads.Load() }

// reloadAfter makes sure that a reload has run that started after seen
// was taken, running one unless another did meanwhile (so that concurrent
// misses share one); it waits for a reload in progress either way. A miss
// on what a client sent, from a source that cannot tell its generation,
// skips the reload when one started less than MinRefreshGap ago. It
// returns the last reload's error, if it failed, so that a registry that
// cannot be reached is reported as such rather than as an unknown type.
func (c *Catalog) reloadAfter(ctx context.Context, seen int64, why miss) error {
	c.refreshMu.Lock()
	cheap := c.snap.Load().gen != 0 // the generation tells whether to load
	recent := time.Since(time.Unix(0, c.lastAttempt.Load())) < c.opts.MinRefreshGap
	if c.reloads.Load() == seen && (why == missStored || cheap || !recent) {
		c.reload(ctx)
	}
	c.refreshMu.Unlock()
	if p := c.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *Catalog) eventType(ctx context.Context, typ string, why miss) (*typeEntry, error) {
	seen := c.seen()
	if t := c.snap.Load().types[typ]; t != nil {
		return t, nil
	}
	if err := c.reloadAfter(ctx, seen, why); err != nil {
		return nil, err
	}
	if t := c.snap.Load().types[typ]; t != nil {
		return t, nil
	}
	return nil, eventstore.Errorf(eventstore.CodeUnknownEventType,
		"unknown event type %q: no schema is registered for a record of that name (the subject is the record's full name)", typ)
}

func (c *Catalog) byFingerprint(ctx context.Context, fp eventstore.Fingerprint) (*schemaEntry, error) {
	seen := c.seen()
	if e := c.snap.Load().byFP[fp]; e != nil {
		return e, nil
	}
	if err := c.reloadAfter(ctx, seen, missStored); err != nil {
		return nil, err
	}
	if e := c.snap.Load().byFP[fp]; e != nil {
		return e, nil
	}
	return nil, errorf(CodeSchemaNotFound, "no schema with fingerprint %s is registered", fp)
}

func (c *Catalog) byID(ctx context.Context, id int) (*schemaEntry, error) {
	seen := c.seen()
	if e := c.snap.Load().byID[id]; e != nil {
		return e, nil
	}
	c.resMu.RLock()
	e := c.extra[id]
	c.resMu.RUnlock()
	if e != nil {
		return e, nil
	}
	// The id may be of a version registered since the last reload: reload
	// first, so that the reader's latest schema is at least as new. Only an
	// id that no subject lists after that is fetched on its own.
	if err := c.reloadAfter(ctx, seen, missStored); err != nil {
		return nil, err
	}
	if e := c.snap.Load().byID[id]; e != nil {
		return e, nil
	}
	ss, err := c.src.SchemaByID(ctx, id)
	if err != nil {
		return nil, err
	}
	sc, err := avro.ParseAny(ss.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", id, err)
	}
	e = &schemaEntry{id: id, fp: eventstore.Fingerprint(sc.Fingerprint()), schema: sc}
	c.resMu.Lock()
	c.extra[id] = e
	c.resMu.Unlock()
	return e, nil
}

// readerFor returns the entry of event type typ to read data written with
// w, given t, its entry in a snapshot loaded after seen was taken. If w is
// not one of t's versions, it may be of a version registered since: the
// Catalog reloads, and reads w as t's latest schema only if w is still
// outside the subject after that (another subject's schema, or a deleted
// version's). If typ is no event type (any more), it returns nil.
func (c *Catalog) readerFor(ctx context.Context, seen int64, w *schemaEntry, t *typeEntry, typ string) (*typeEntry, error) {
	if t == nil || t.holds(w.fp) {
		return t, nil
	}
	key := [2]uint64{uint64(w.fp), uint64(t.latest.fp)}
	snap := c.snap.Load()
	c.resMu.RLock()
	known := c.foreign[key] == snap
	c.resMu.RUnlock()
	if known {
		return t, nil
	}
	if err := c.reloadAfter(ctx, seen, missStored); err != nil {
		return nil, err
	}
	snap = c.snap.Load()
	t = snap.types[typ]
	if t == nil || t.holds(w.fp) {
		return t, nil
	}
	c.resMu.Lock()
	c.foreign[[2]uint64{uint64(w.fp), uint64(t.latest.fp)}] = snap
	c.resMu.Unlock()
	return t, nil
}

// Encode validates natural JSON data for event type typ against the type's
// latest schema and returns the schema's fingerprint and the Avro binary.
// Errors: an *eventstore.Error with code unknown_event_type, an
// *eventstore.SchemaViolationError{Type, Path, Reason} (Path like
// "items[2].price"), or an error coded unavailable when the registry
// cannot be reached to look up a type this Catalog does not know.
//
// Data that breaks the latest schema this Catalog knows makes it reload
// (a version registered through another process may accept it) and try
// once more, before it is refused.
//
// The event's data subject is set in meta (which may be nil for an event
// without metadata): the schema's subject field, or meta's own. Personal
// fields are encrypted with the subject's key; an event with personal
// fields and no subject is refused, coded invalid_request, and one in a
// Catalog without Personal, coded unavailable.
func (c *Catalog) Encode(ctx context.Context, typ string, data []byte, meta *eventstore.Metadata) (eventstore.Fingerprint, []byte, error) {
	seen := c.seen()
	t, err := c.eventType(ctx, typ, missSent)
	if err != nil {
		return 0, nil, err
	}
	bin, err := t.latest.schema.FromJSON(data)
	if err != nil {
		if rerr := c.reloadAfter(ctx, seen, missSent); rerr != nil {
			return 0, nil, rerr
		}
		if n := c.snap.Load().types[typ]; n != nil && n.latest != t.latest {
			t = n
			bin, err = t.latest.schema.FromJSON(data)
		}
	}
	if err != nil {
		var ve *avro.ValidationError
		if errors.As(err, &ve) {
			return 0, nil, &eventstore.SchemaViolationError{Type: typ, Path: ve.Path, Reason: ve.Message}
		}
		return 0, nil, &eventstore.SchemaViolationError{Type: typ, Reason: err.Error()}
	}
	if meta == nil {
		meta = new(eventstore.Metadata)
	}
	if bin, err = c.seal(ctx, t.latest.schema, bin, meta); err != nil {
		return 0, nil, err
	}
	return t.latest.fp, bin, nil
}

// Decode returns stored data (written with the schema of fingerprint fp)
// as natural JSON upcast to the type's latest schema, and the registry id
// of the schema it was written with. Data of a type that is no event type
// (any more) is returned in its writer's shape. Errors: a *Error with
// CodeSchemaNotFound for an unknown fingerprint, an error coded
// unavailable when the registry cannot be reached, and a decoding error
// (errors.Is avro.ErrDecode) for data that does not fit its schema.
func (c *Catalog) Decode(ctx context.Context, typ string, fp eventstore.Fingerprint, data []byte) (json.RawMessage, int, error) {
	seen := c.seen()
	w, err := c.byFingerprint(ctx, fp)
	if err != nil {
		return nil, 0, err
	}
	t, err := c.readerFor(ctx, seen, w, c.snap.Load().types[typ], typ)
	if err != nil {
		return nil, 0, err
	}
	if data, err = c.open(ctx, w, data); err != nil {
		return nil, 0, err
	}
	if t == nil || t.latest.fp == fp {
		out, err := w.schema.ToJSON(data)
		if err != nil {
			return nil, 0, fmt.Errorf("decode %s written with schema %d: %w", typ, w.id, err)
		}
		return out, w.id, nil
	}
	res := t.upcast[fp]
	if res == nil {
		if res, err = c.resolver(w.schema, t.latest.schema); err != nil {
			return nil, 0, fmt.Errorf("read %s written with schema %d as its latest schema %d: %w", typ, w.id, t.latest.id, err)
		}
	}
	out, err := res.ToJSON(data)
	if err != nil {
		return nil, 0, fmt.Errorf("decode %s written with schema %d: %w", typ, w.id, err)
	}
	return out, w.id, nil
}

// SchemaID returns the registry id of the schema with fingerprint fp: what
// the relay puts in the Confluent wire format. Errors as for Decode.
func (c *Catalog) SchemaID(ctx context.Context, fp eventstore.Fingerprint) (int, error) {
	e, err := c.byFingerprint(ctx, fp)
	if err != nil {
		return 0, err
	}
	return e.id, nil
}

// WireResolver returns the resolver that reads data written with registry
// id (the schema id of a Confluent wire-format record) as the latest schema
// of event type readerType, or in the writer's own shape when readerType is
// "". It is compiled once and cached. Errors: CodeSchemaNotFound for an
// unknown id, unknown_event_type, unavailable, and an
// *avro.CompatibilityError when the reader cannot read the writer's data.
func (c *Catalog) WireResolver(ctx context.Context, id int, readerType string) (*avro.Resolver, error) {
	seen := c.seen()
	w, err := c.byID(ctx, id)
	if err != nil {
		return nil, err
	}
	reader := w.schema
	if readerType != "" {
		t, err := c.eventType(ctx, readerType, missStored)
		if err != nil {
			return nil, err
		}
		if t, err = c.readerFor(ctx, seen, w, t, readerType); err != nil {
			return nil, err
		}
		if t == nil {
			return nil, eventstore.Errorf(eventstore.CodeUnknownEventType, "unknown event type %q: its subject is no longer registered", readerType)
		}
		reader = t.latest.schema
	}
	return c.resolver(w.schema, reader)
}

// DecodeWire decodes a wire record's data, written with registry id, into
// native Go values (see avro.Schema.Decode) in the shape of readerType's
// latest schema ("" for the writer's own). Errors as for WireResolver, and
// decoding errors.
func (c *Catalog) DecodeWire(ctx context.Context, id int, data []byte, readerType string) (any, error) {
	res, data, err := c.wire(ctx, id, data, readerType)
	if err != nil {
		return nil, err
	}
	return res.Decode(data)
}

// wire returns the resolver of DecodeWire and the data decrypted.
func (c *Catalog) wire(ctx context.Context, id int, data []byte, readerType string) (*avro.Resolver, []byte, error) {
	res, err := c.WireResolver(ctx, id, readerType)
	if err != nil {
		return nil, nil, err
	}
	w, err := c.byID(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	data, err = c.open(ctx, w, data)
	return res, data, err
}

// DecodeWireJSON is DecodeWire giving natural JSON.
func (c *Catalog) DecodeWireJSON(ctx context.Context, id int, data []byte, readerType string) (json.RawMessage, error) {
	res, data, err := c.wire(ctx, id, data, readerType)
	if err != nil {
		return nil, err
	}
	return res.ToJSON(data)
}

// Subject returns the subject and latest version of event type typ, for
// messages and diagnostics. Errors as for Encode.
func (c *Catalog) Subject(ctx context.Context, typ string) (subject string, version int, err error) {
	t, err := c.eventType(ctx, typ, missSent)
	if err != nil {
		return "", 0, err
	}
	return t.subject, t.version, nil
}

// Latest returns the latest schema of event type typ: the shape in which
// projections see its events. Errors as for Encode.
func (c *Catalog) Latest(ctx context.Context, typ string) (*avro.Schema, error) {
	t, err := c.eventType(ctx, typ, missSent)
	if err != nil {
		return nil, err
	}
	return t.latest.schema, nil
}
