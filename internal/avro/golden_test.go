package avro

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The golden files are written by testdata/gen_golden.py from Apache Avro's
// Python implementation; see the script for how to refresh them and for
// where (and why) a vector departs from what Python does.

type compatVector struct {
	Name       string          `json:"name"`
	Reader     json.RawMessage `json:"reader"`
	Writer     json.RawMessage `json:"writer"`
	Compatible bool            `json:"compatible"`
	Types      []string        `json:"types"`
	Locations  []string        `json:"locations"`
}

// verdict is what a compatibility vector records: the incompatibility types
// (with repeats) and the distinct locations, both sorted.
type verdict struct {
	Compatible bool
	Types      []string
	Locations  []string
}

func verdictOf(err error) verdict {
	var ce *CompatibilityError
	if !errors.As(err, &ce) {
		return verdict{Compatible: err == nil, Types: []string{}, Locations: []string{}}
	}
	v := verdict{Types: []string{}, Locations: []string{}}
	for _, inc := range ce.Incompatibilities {
		v.Types = append(v.Types, string(inc.Type))
		if !slices.Contains(v.Locations, inc.Location) {
			v.Locations = append(v.Locations, inc.Location)
		}
	}
	slices.Sort(v.Types)
	slices.Sort(v.Locations)
	return v
}

func TestGoldenCompatibility(t *testing.T) {
	var vectors []compatVector
	loadJSON(t, "golden_compat.json", &vectors)
	if len(vectors) < 60 {
		t.Fatalf("golden_compat.json has %d pairs, want at least 60", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			reader, writer := mustParseAny(t, string(v.Reader)), mustParseAny(t, string(v.Writer))
			err := CheckCompatibility(reader, writer)
			if err != nil && !errors.Is(err, ErrIncompatible) {
				t.Fatalf("CheckCompatibility = %v, want an ErrIncompatible", err)
			}
			want := verdict{Compatible: v.Compatible, Types: v.Types, Locations: v.Locations}
			if diff := cmp.Diff(want, verdictOf(err)); diff != "" {
				t.Errorf("CheckCompatibility(%s, %s) = %v; verdict (-want +got):\n%s", v.Reader, v.Writer, err, diff)
			}
			// Whatever is compatible can be resolved.
			if _, err := NewResolver(writer, reader); v.Compatible && err != nil {
				t.Errorf("NewResolver of a compatible pair = %v", err)
			}
		})
	}
}

type resolutionVector struct {
	Name         string          `json:"name"`
	Writer       json.RawMessage `json:"writer"`
	Reader       json.RawMessage `json:"reader"`
	Datum        any             `json:"datum"`
	WriterHex    string          `json:"writer_hex"`
	Expected     any             `json:"expected"`
	ReaderHex    string          `json:"reader_hex"`
	ReaderSchema json.RawMessage `json:"reader_schema"`
	Error        bool            `json:"error"`
}

func TestGoldenResolution(t *testing.T) {
	var vectors []resolutionVector
	loadJSON(t, "golden_resolution.json", &vectors)
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			writer, reader := mustParseAny(t, string(v.Writer)), mustParseAny(t, string(v.Reader))
			wbin := mustHex(t, v.WriterHex)

			// The writer's own schema reads Python's binary as Python's datum.
			own, err := writer.Decode(wbin)
			if err != nil {
				t.Fatalf("writer Decode(%x) = %v", wbin, err)
			}
			if diff := cmp.Diff(v.Datum, tag(own), exactNumbers()); diff != "" {
				t.Errorf("writer Decode(%x) (-python +ours):\n%s", wbin, diff)
			}

			r, err := NewResolver(writer, reader)
			if err != nil {
				t.Fatalf("NewResolver = %v", err)
			}
			got, decodeErr := r.Decode(wbin)
			gotJSON, jsonErr := r.ToJSON(wbin)
			gotBin, transcodeErr := r.Transcode(wbin)
			if v.Error {
				for _, err := range []error{decodeErr, jsonErr, transcodeErr} {
					if !errors.Is(err, ErrDecode) {
						t.Errorf("resolving %x = %v, want an ErrDecode", wbin, err)
					}
				}
				return
			}
			for _, err := range []error{decodeErr, jsonErr, transcodeErr} {
				if err != nil {
					t.Fatalf("resolving %x = %v", wbin, err)
				}
			}
			if diff := cmp.Diff(v.Expected, tag(got), exactNumbers()); diff != "" {
				t.Errorf("Decode(%x) (-expected +got):\n%s", wbin, diff)
			}
			if hex.EncodeToString(gotBin) != v.ReaderHex {
				t.Errorf("Transcode(%x) = %x, want %s", wbin, gotBin, v.ReaderHex)
			}
			// ToJSON in the reader's shape is the reader's ToJSON of the reader's binary.
			shape := reader
			if v.ReaderSchema != nil {
				shape = mustParseAny(t, string(v.ReaderSchema))
			}
			wantJSON, err := shape.ToJSON(mustHex(t, v.ReaderHex))
			if err != nil {
				t.Fatalf("reader ToJSON(%s) = %v", v.ReaderHex, err)
			}
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("ToJSON(%x) = %s, want %s", wbin, gotJSON, wantJSON)
			}
		})
	}
}

type canonicalVector struct {
	Schema      json.RawMessage `json:"schema"`
	Canonical   string          `json:"canonical"`
	Fingerprint string          `json:"fingerprint"`
}

func TestGoldenCanonicalForm(t *testing.T) {
	var vectors []canonicalVector
	loadJSON(t, "golden_canonical.json", &vectors)
	for _, v := range vectors {
		t.Run(v.Canonical, func(t *testing.T) {
			s := mustParseAny(t, string(v.Schema))
			if s.Canonical() != v.Canonical {
				t.Errorf("Canonical() = %s\nwant          %s", s.Canonical(), v.Canonical)
			}
			want, err := strconv.ParseUint(v.Fingerprint, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if s.Fingerprint() != want {
				t.Errorf("Fingerprint() = %d, want %d", s.Fingerprint(), want)
			}
			// The canonical form is itself a schema with the same canonical form.
			if again := mustParseAny(t, s.Canonical()); again.Canonical() != s.Canonical() {
				t.Errorf("Canonical of the canonical form = %s", again.Canonical())
			}
		})
	}
}
