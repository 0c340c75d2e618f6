package avro

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckCompatibilityListsEveryIncompatibility(t *testing.T) {
	reader := mustParse(t, `{"type": "record", "name": "R", "fields": [
		{"name": "a", "type": "int"},
		{"name": "b", "type": {"type": "enum", "name": "E", "symbols": ["X"]}},
		{"name": "c", "type": {"type": "fixed", "name": "F", "size": 4}},
		{"name": "d", "type": ["null", "string"]},
		{"name": "e", "type": "string"}]}`)
	writer := mustParse(t, `{"type": "record", "name": "R", "fields": [
		{"name": "a", "type": "long"},
		{"name": "b", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y", "Z"]}},
		{"name": "c", "type": {"type": "fixed", "name": "G", "size": 8}},
		{"name": "d", "type": ["null", "string", "boolean"]}]}`)
	err := CheckCompatibility(reader, writer)
	var ce *CompatibilityError
	if !errors.As(err, &ce) {
		t.Fatalf("CheckCompatibility = %v, want a *CompatibilityError", err)
	}
	want := []Incompatibility{
		{TypeMismatch, "/fields/0/type", "reader type: int not compatible with writer type: long"},
		{MissingEnumSymbols, "/fields/1/type/symbols", "[Y, Z]"},
		{NameMismatch, "/fields/2/type/name", "expected: G"},
		{FixedSizeMismatch, "/fields/2/type/size", "expected: 8, found: 4"},
		{MissingUnionBranch, "/fields/3/type/2", "reader union lacking writer type: BOOLEAN"},
		{ReaderFieldMissingDefaultValue, "/fields/4", "e"},
	}
	if diff := cmp.Diff(want, ce.Incompatibilities); diff != "" {
		t.Errorf("incompatibilities (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "MISSING_ENUM_SYMBOLS at /fields/1/type/symbols: [Y, Z]") {
		t.Errorf("Error() = %q, want each incompatibility spelled out", err)
	}
}

func TestLevelNamesParseAndPrint(t *testing.T) {
	for _, name := range []string{"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"} {
		t.Run(name, func(t *testing.T) {
			l, err := ParseLevel(" " + strings.ToLower(name) + "\n")
			if err != nil || l.String() != name {
				t.Errorf("ParseLevel(%q) = %v, %v", strings.ToLower(name), l, err)
			}
		})
	}
	if l, err := ParseLevel("SIDEWAYS"); err == nil {
		t.Errorf("ParseLevel(SIDEWAYS) = %v, want an error", l)
	}
	if DefaultLevel != LevelFullTransitive {
		t.Errorf("DefaultLevel = %v, want FULL_TRANSITIVE", DefaultLevel)
	}
}

func TestLevelCheckFollowsConfluentSemantics(t *testing.T) {
	record := func(fields string) *Schema {
		return mustParse(t, `{"type": "record", "name": "R", "fields": [`+fields+`]}`)
	}
	// Each version changes something that breaks one direction:
	//   v0 {a}; v1 {a, b=default}: fully compatible with v0;
	//   v2 {a, b=default, c}: c has no default, so v2 cannot read v0 or v1 (backward),
	//   but v0 and v1 read v2 by skipping c (forward).
	v0 := record(`{"name": "a", "type": "int"}`)
	v1 := record(`{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}`)
	v2 := record(`{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}, {"name": "c", "type": "int"}`)
	// v3 {b=default, c} drops a (which v0-v2 need, without default): forward breaks.
	v3 := record(`{"name": "b", "type": "string", "default": ""}, {"name": "c", "type": "int"}`)

	type failure struct {
		Existing    int
		NewIsReader bool
	}
	tests := []struct {
		name     string
		level    Level
		new      *Schema
		existing []*Schema
		want     []failure // nil: passes
	}{
		{"NONE passes anything", LevelNone, v3, []*Schema{v0}, nil},
		{"anything passes with no history", LevelFullTransitive, v3, nil, nil},
		{"BACKWARD: v1 reads v0", LevelBackward, v1, []*Schema{v0}, nil},
		{"BACKWARD: v2 cannot read v1", LevelBackward, v2, []*Schema{v0, v1}, []failure{{1, true}}},
		{"BACKWARD_TRANSITIVE: v2 reads neither v0 nor v1", LevelBackwardTransitive, v2, []*Schema{v0, v1}, []failure{{0, true}, {1, true}}},
		{"FORWARD: v1 reads v2", LevelForward, v2, []*Schema{v0, v1}, nil},
		{"FORWARD: v2 cannot read v3", LevelForward, v3, []*Schema{v0, v1, v2}, []failure{{2, false}}},
		{"FORWARD_TRANSITIVE: no earlier version reads v3", LevelForwardTransitive, v3, []*Schema{v0, v1, v2}, []failure{{0, false}, {1, false}, {2, false}}},
		{"FULL: only the latest counts", LevelFull, v1, []*Schema{v2, v0}, nil},
		{"FULL: v2 after v1 breaks backward", LevelFull, v2, []*Schema{v1}, []failure{{0, true}}},
		{"FULL_TRANSITIVE: v1 after v0", LevelFullTransitive, v1, []*Schema{v0}, nil},
		{"FULL_TRANSITIVE: v1 after v2 and v0 breaks on v2", LevelFullTransitive, v1, []*Schema{v2, v0}, []failure{{0, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.level.Check(tt.new, tt.existing)
			var got []failure
			var le *LevelError
			if errors.As(err, &le) {
				for _, f := range le.Failures {
					got = append(got, failure{f.Existing, f.NewIsReader})
				}
				if !errors.Is(err, ErrIncompatible) || le.Level != tt.level {
					t.Errorf("Check = %v, want an ErrIncompatible for %v", err, tt.level)
				}
			} else if err != nil {
				t.Fatalf("Check = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Check failures (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
	if err := Level("SIDEWAYS").Check(v1, []*Schema{v0}); err == nil {
		t.Error("Check at an unknown level succeeded")
	}
}

func TestOrderSchemasAreFullyTransitivelyCompatible(t *testing.T) {
	v1, v2 := orderSchema(t, "OrderItemAdded.avsc"), orderSchema(t, "OrderItemAdded.v2.avsc")
	if err := LevelFullTransitive.Check(v2, []*Schema{v1}); err != nil {
		t.Errorf("OrderItemAdded v2 after v1 at FULL_TRANSITIVE: %v", err)
	}
}
