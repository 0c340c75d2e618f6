package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-events/strata/internal/avro"
)

// SchemaFile is one .avsc file of a schemas directory (schemas/README.md):
// {Name}.avsc is version 1 of the record Name, {Name}.vN.avsc version N.
type SchemaFile struct {
	Path    string
	Version int
	Schema  *avro.Schema // an event schema: a record named Name
}

// Subject returns the file's subject: its record's full name.
func (f SchemaFile) Subject() string { return f.Schema.FullName() }

// ReadSchemaDir reads the *.avsc files of dir, sorted by subject and then
// by version number (v10 after v9). It fails, naming the file, for a name
// that is neither {Name}.avsc nor {Name}.vN.avsc with N ≥ 2, a schema that
// is not a record, a Name that is not the record's simple name, two files
// of one Name with different namespaces, and a directory without schemas.
func ReadSchemaDir(dir string) ([]SchemaFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.avsc"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("schemas directory: %w", err)
		}
		return nil, fmt.Errorf("schemas directory %s holds no .avsc files", dir)
	}
	var files []SchemaFile
	fullNames := map[string]string{} // Name → full name
	for _, p := range paths {
		name, version, err := parseFileName(filepath.Base(p))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		text, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		s, err := avro.Parse(string(text))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if s.Name() != name {
			return nil, fmt.Errorf("%s: the file is named for the record %s, but it holds the record %s: "+
				"name it %s.avsc (version 1) or %s.vN.avsc (version N)", p, name, s.FullName(), s.Name(), s.Name())
		}
		if other, seen := fullNames[name]; seen && other != s.FullName() {
			return nil, fmt.Errorf("%s: it holds the record %s, but another file of %s holds %s: "+
				"an event type's versions keep one namespace", p, s.FullName(), name, other)
		}
		fullNames[name] = s.FullName()
		files = append(files, SchemaFile{Path: p, Version: version, Schema: s})
	}
	slices.SortFunc(files, func(a, b SchemaFile) int {
		return cmp.Or(cmp.Compare(a.Subject(), b.Subject()), cmp.Compare(a.Version, b.Version))
	})
	for i := 1; i < len(files); i++ {
		if a, b := files[i-1], files[i]; a.Subject() == b.Subject() && a.Version == b.Version {
			return nil, fmt.Errorf("%s and %s are both version %d of %s", a.Path, b.Path, a.Version, a.Subject())
		}
	}
	return files, nil
}

// parseFileName splits "{Name}.avsc" (version 1) or "{Name}.vN.avsc".
func parseFileName(base string) (name string, version int, err error) {
	stem := strings.TrimSuffix(base, ".avsc")
	name, v, versioned := strings.Cut(stem, ".")
	if !versioned {
		return name, 1, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
	if !strings.HasPrefix(v, "v") || err != nil || n < 2 || strconv.Itoa(n) != v[1:] {
		return "", 0, fmt.Errorf("the file name is not {Name}.avsc (version 1) or {Name}.vN.avsc (version N ≥ 2)")
	}
	return name, n, nil
}

// Applied is what Apply did, or in a dry run would do, with one file.
type Applied struct {
	File    SchemaFile
	Subject string
	// Version is the subject's version that holds the file's schema, and
	// ID the schema's registry id (0 for a new schema in a dry run against
	// an external registry, which cannot say in advance).
	Version int
	ID      int
	// New is true when the file was registered as a new version; false
	// when the subject already held its canonical form.
	New bool
}

// Apply registers files (as ReadSchemaDir returns them) in order: each
// whose canonical form its subject does not hold yet becomes the subject's
// next version, after the compatibility check. It registers all or
// nothing, in one transaction; with dryRun nothing, but the result is the
// plan. An error names the file, and for an incompatible file the rules
// broken (*Error with CodeIncompatibleSchema).
func (r *Registry) Apply(ctx context.Context, files []SchemaFile, dryRun bool) ([]Applied, error) {
	items := make([]candidate, len(files))
	for i, f := range files {
		items[i] = candidate{f.Subject(), f.Schema}
	}
	regs, err := r.register(ctx, items, dryRun)
	if err != nil {
		return nil, fileError(files, err)
	}
	out := make([]Applied, len(files))
	for i, reg := range regs {
		out[i] = Applied{File: files[i], Subject: reg.Subject, Version: reg.Version, ID: reg.ID, New: reg.New}
	}
	return out, nil
}

func fileError(files []SchemaFile, err error) error {
	var ie *itemError
	if errors.As(err, &ie) {
		return fmt.Errorf("%s: %w", files[ie.index].Path, ie.err)
	}
	return err
}

// Apply does what Registry.Apply does against the external registry: it
// loads each subject's versions and level, checks every file first with
// the same rules as the embedded registry, and registers only if all pass.
// The registry offers no transaction: a failure while registering (the
// registry becoming unreachable) can leave the files before it registered;
// running Apply again completes the rest.
func (c *Client) Apply(ctx context.Context, files []SchemaFile, dryRun bool) ([]Applied, error) {
	subjects, err := c.cl.Subjects(ctx)
	if err != nil {
		return nil, clientError(ctx, "list subjects", err)
	}
	states := map[string]*SubjectState{}
	out := make([]Applied, len(files))
	for i, f := range files {
		subject := f.Subject()
		st := states[subject]
		if st == nil {
			loaded, err := c.state(ctx, subject, eventType(subject, f.Schema), subjects)
			if err != nil {
				return nil, err
			}
			st = &loaded
			states[subject] = st
		}
		out[i] = Applied{File: f, Subject: subject}
		if v, ok := holds(st.Versions, f.Schema); ok {
			out[i].Version, out[i].ID = v.Version, v.ID
			continue
		}
		existing := make([]*avro.Schema, len(st.Versions))
		for j, v := range st.Versions {
			if existing[j], err = Parse(v.Text); err != nil {
				return nil, err
			}
		}
		if err := admit(subject, f.Schema, existing, *st); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		next := 1
		if n := len(st.Versions); n > 0 {
			next = st.Versions[n-1].Version + 1
		}
		st.Versions = append(st.Versions, StoredSchema{Subject: subject, Version: next,
			Fingerprint: f.Schema.Fingerprint(), Canonical: f.Schema.Canonical(), Text: f.Schema.Text()})
		out[i].Version, out[i].New = next, true
	}
	if dryRun {
		return out, nil
	}
	for i := range out {
		if !out[i].New {
			continue
		}
		id, version, err := c.register(ctx, out[i].Subject, out[i].File.Schema.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", out[i].File.Path, err)
		}
		out[i].ID, out[i].Version = id, version
	}
	return out, nil
}

// holds finds the version among versions with s's canonical form.
func holds(versions []StoredSchema, s *avro.Schema) (StoredSchema, bool) {
	for _, v := range versions {
		if v.Fingerprint == s.Fingerprint() && v.Canonical == s.Canonical() {
			return v, true
		}
	}
	return StoredSchema{}, false
}
