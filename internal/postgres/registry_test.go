package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/harness"
)

// The registry's rules live in internal/registry; these tests hold what
// the tables promise: atomic batches, one id per schema, collisions
// refused, the state handed to the check, and a clear error before
// `writer migrate`.

func newVersion(subject, eventType string, fp uint64, canonical string) RegistryNewVersion {
	return RegistryNewVersion{Subject: subject, EventType: eventType, Fingerprint: fp, Canonical: canonical, Text: canonical + " "}
}

func acceptAll(int, RegistrySubjectState) error { return nil }

func TestRegistryStoreRegistersVersionsAndSharesIDs(t *testing.T) {
	r := NewRegistryStore(newStore(t, Options{}))
	batch := []RegistryNewVersion{
		newVersion("a.A", "A", 1<<63+1, `{"a":1}`),
		newVersion("a.A", "A", 2, `{"a":2}`),
		newVersion("topic-value", "", 1<<63+1, `{"a":1}`),
		newVersion("a.A", "A", 1<<63+1, `{"a":1}`),
	}
	got, err := r.Register(ctx, batch, acceptAll, false)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	want := []RegistryResult{{ID: 1, Version: 1, New: true}, {ID: 2, Version: 2, New: true}, {ID: 1, Version: 1, New: true}, {ID: 1, Version: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Register results (-want +got):\n%s", diff)
	}
	versions, err := r.Versions(ctx, "a.A")
	if err != nil {
		t.Fatal(err)
	}
	wantVersions := []RegistrySchema{
		{Subject: "a.A", Version: 1, ID: 1, Fingerprint: 1<<63 + 1, Canonical: `{"a":1}`, Text: `{"a":1} `},
		{Subject: "a.A", Version: 2, ID: 2, Fingerprint: 2, Canonical: `{"a":2}`, Text: `{"a":2} `},
	}
	if diff := cmp.Diff(wantVersions, versions); diff != "" {
		t.Errorf("Versions (-want +got):\n%s", diff)
	}
	subjects, err := r.Subjects(ctx)
	if err != nil || !cmp.Equal(subjects, []string{"a.A", "topic-value"}) {
		t.Errorf("Subjects = %v, %v", subjects, err)
	}
	all, err := r.AllVersions(ctx)
	if err != nil || len(all) != 3 || all[2].Subject != "topic-value" {
		t.Errorf("AllVersions = %+v, %v; want the three versions by subject", all, err)
	}
	if gen, err := r.Generation(ctx); err != nil || gen != 3 {
		t.Errorf("Generation = %d, %v; want 3", gen, err)
	}
	s, found, err := r.Schema(ctx, 2)
	if err != nil || !found || s.Canonical != `{"a":2}` || s.Fingerprint != 2 {
		t.Errorf("Schema(2) = %+v, %v, %v", s, found, err)
	}
	if _, found, err := r.Schema(ctx, 3); err != nil || found {
		t.Errorf("Schema(3) found = %v, %v; want not found", found, err)
	}
}

func TestRegistryStoreBatchIsAllOrNothing(t *testing.T) {
	r := NewRegistryStore(newStore(t, Options{}))
	refused := errors.New("refused by the check")
	batch := []RegistryNewVersion{newVersion("a.A", "A", 1, "one"), newVersion("b.B", "B", 2, "two"), newVersion("a.A", "A", 3, "three")}
	tests := []struct {
		name    string
		check   func(int, RegistrySubjectState) error
		dryRun  bool
		wantErr error
	}{
		{"a check that refuses the last entry stores nothing", func(i int, _ RegistrySubjectState) error {
			if i == 2 {
				return refused
			}
			return nil
		}, false, refused},
		{"a dry run stores nothing", acceptAll, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.Register(ctx, batch, tt.check, tt.dryRun)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Register = %v, want %v", err, tt.wantErr)
			}
			if tt.dryRun && (len(res) != 3 || res[2] != (RegistryResult{ID: 3, Version: 2, New: true})) {
				t.Errorf("dry-run results = %+v; want the plan, ending with id 3 as version 2", res)
			}
			if gen, err := r.Generation(ctx); err != nil || gen != 0 {
				t.Errorf("Generation after = %d, %v; want 0", gen, err)
			}
		})
	}
}

func TestRegistryStoreRefusesAFingerprintCollision(t *testing.T) {
	r := NewRegistryStore(newStore(t, Options{}))
	if _, err := r.Register(ctx, []RegistryNewVersion{newVersion("a", "", 7, "one")}, acceptAll, false); err != nil {
		t.Fatal(err)
	}
	_, err := r.Register(ctx, []RegistryNewVersion{newVersion("b", "", 7, "two")}, acceptAll, false)
	if err == nil || !strings.Contains(err.Error(), "fingerprint collision") {
		t.Errorf("registering another canonical form with the same fingerprint = %v; want a collision error", err)
	}
}

func TestRegistryStoreGivesTheCheckTheSubjectsState(t *testing.T) {
	r := NewRegistryStore(newStore(t, Options{}))
	if _, err := r.Register(ctx, []RegistryNewVersion{newVersion("a.X", "X", 1, "one")}, acceptAll, false); err != nil {
		t.Fatal(err)
	}
	if err := r.SetLevel(ctx, "", "BACKWARD"); err != nil {
		t.Fatal(err)
	}
	var states []RegistrySubjectState
	owned := errors.New("the event type has another owner")
	record := func(_ int, st RegistrySubjectState) error {
		states = append(states, st)
		if st.EventTypeOwner != "" {
			return owned
		}
		return nil
	}
	batch := []RegistryNewVersion{newVersion("a.X", "X", 2, "two"), newVersion("b.X", "X", 3, "three")}
	if _, err := r.Register(ctx, batch, record, true); !errors.Is(err, owned) {
		t.Fatalf("Register = %v; want the check's error for b.X", err)
	}
	if len(states) != 2 || len(states[0].Versions) != 1 || states[0].Level != "BACKWARD" || states[0].EventTypeOwner != "" {
		t.Fatalf("state of a.X = %+v; want its one version, the global level and no other owner", states)
	}
	if states[1].EventTypeOwner != "a.X" || len(states[1].Versions) != 0 {
		t.Errorf("state of b.X = %+v; want a.X named as the owner of event type X", states[1])
	}
	if err := r.SetLevel(ctx, "a.X", "NONE"); err != nil {
		t.Fatal(err)
	}
	states = nil
	if _, err := r.Register(ctx, batch[:1], record, true); err != nil || states[0].Level != "NONE" {
		t.Errorf("level with a subject override = %+v, %v; want NONE", states, err)
	}
	if _, err := r.Register(ctx, batch[1:], acceptAll, false); err == nil || !strings.Contains(err.Error(), "registry_subjects_event_type") {
		t.Errorf("a second owner of X let through by the check = %v; want the unique constraint to refuse it", err)
	}
	if level, err := r.Level(ctx, "b.X"); err != nil || level != "" {
		t.Errorf("Level(b.X) = %q, %v; want none configured", level, err)
	}
}

func TestRegistryStoreBeforeMigrateSaysToMigrate(t *testing.T) {
	url, schema := harness.NewSchema(t)
	s, err := Open(ctx, url, Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	_, err = NewRegistryStore(s).Subjects(ctx)
	if !errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "writer migrate") {
		t.Errorf("Subjects on an unmigrated schema = %v; want ErrNotMigrated", err)
	}
}
