package projector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/projection"
)

// definition is a projection this projector knows, and where it was
// defined.
type definition struct {
	p   *projection.Projection
	sql *projection.SQLProjection // nil for a Go projection
}

func (d definition) kind() string {
	if d.sql != nil {
		return "sql"
	}
	return "go"
}

// queries returns the queries the projection declares; none for a Go
// projection.
func (d definition) queries() []*projection.Query {
	if d.sql == nil {
		return nil
	}
	return d.sql.Queries()
}

// queryRoutes returns the read API's routes of d's queries; [] for none.
func (d definition) queryRoutes() []string {
	routes := []string{}
	for _, q := range d.queries() {
		routes = append(routes, "/v1/projections/"+q.Projection+"/queries/"+q.Name)
	}
	return routes
}

// definitions returns the Go projections and the declarative ones of dir,
// by name. A missing dir holds none.
func (c *cli) definitions(dir string) ([]definition, error) {
	var defs []definition
	for _, p := range c.code {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		defs = append(defs, definition{p: p})
	}
	sqls, err := projection.LoadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, sp := range sqls {
		defs = append(defs, definition{p: sp.Projection(), sql: sp})
	}
	slices.SortFunc(defs, func(a, b definition) int { return strings.Compare(a.p.Name, b.p.Name) })
	for i := 1; i < len(defs); i++ {
		if defs[i].p.Name == defs[i-1].p.Name {
			return nil, fmt.Errorf("two projections are named %s: %s and %s", defs[i].p.Name, defs[i-1].p.Source, defs[i].p.Source)
		}
	}
	return defs, nil
}

// pick returns the definitions named in names (comma-separated), or all
// of them for "". It fails on an unknown name, naming the known ones.
func pick(defs []definition, names string) ([]definition, error) {
	if len(defs) == 0 {
		return nil, errors.New("there is no projection to run: put declarative projections in STRATA_PROJECTIONS_DIR")
	}
	if strings.TrimSpace(names) == "" {
		return defs, nil
	}
	var out []definition
	for _, name := range strings.Split(names, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(defs, func(d definition) bool { return d.p.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("no projection is named %q; the projections are %s", name, known(defs))
		}
		if !slices.ContainsFunc(out, func(d definition) bool { return d.p.Name == name }) {
			out = append(out, defs[i])
		}
	}
	return out, nil
}

func known(defs []definition) string {
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.p.Name
	}
	return strings.Join(names, ", ")
}

// check validates the declarative projections against the latest schemas
// of their event types: every event type handled and every field bound
// must exist, so that a typo fails at start instead of binding NULL. The
// schemas of $StreamDeleted and $DataSubjectErased, which writer schemas
// apply registers beside the files', are missing from a registry applied
// to by an earlier Strata: that error says so.
func check(ctx context.Context, defs []definition, latest func(ctx context.Context, eventType string) (*avro.Schema, error)) error {
	schemaOf := func(t string) (*avro.Schema, error) {
		s, err := latest(ctx, t)
		if (t == projection.StreamDeletedType || t == projection.DataSubjectErasedType) && errors.Is(err, eventstore.ErrUnknownEventType) {
			return nil, fmt.Errorf("the system schema %s.%s is not registered: run writer schemas apply, which registers it with STRATA_SCHEMAS_DIR's (%w)",
				registry.SystemNamespace, t[1:], err)
		}
		return s, err
	}
	var errs []error
	for _, d := range defs {
		if d.sql == nil {
			continue
		}
		errs = append(errs, d.sql.Check(schemaOf))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the declarative projections do not match the registered schemas (register the schemas first: writer schemas apply):\n%w", err)
	}
	return nil
}
