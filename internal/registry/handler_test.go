package registry_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
)

// A Confluent client, franz-go's sr, drives the embedded registry over
// HTTP with PostgreSQL behind it.
func TestConfluentClientAgainstTheEmbeddedRegistry(t *testing.T) {
	store := newPostgresStore(t)
	cl, _ := serve(t, registry.New(postgres.NewRegistryStore(store), registry.Options{}))
	v1, v2 := schemaFile(t, "OrderItemAdded.avsc"), schemaFile(t, "OrderItemAdded.v2.avsc")

	t.Run("registering a schema gives id 1 as version 1", func(t *testing.T) {
		got, err := cl.CreateSchema(ctx, itemSubject, avroSchema(v1))
		if err != nil {
			t.Fatal(err)
		}
		want := sr.SubjectSchema{Subject: itemSubject, Version: 1, ID: 1, Schema: avroSchema(v1)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("CreateSchema (-want +got):\n%s", diff)
		}
	})
	t.Run("registering it again adds nothing", func(t *testing.T) {
		id, err := cl.RegisterSchema(ctx, itemSubject, avroSchema(v1), -1, -1)
		if err != nil || id != 1 {
			t.Errorf("RegisterSchema again = %d, %v; want id 1", id, err)
		}
	})
	t.Run("a compatible version becomes version 2", func(t *testing.T) {
		got, err := cl.CreateSchema(ctx, itemSubject, avroSchema(v2))
		if err != nil || got.Version != 2 || got.ID != 2 {
			t.Errorf("CreateSchema(v2) = %+v, %v; want version 2, id 2", got, err)
		}
	})
	t.Run("the same schema under another subject has the same id", func(t *testing.T) {
		got, err := cl.CreateSchema(ctx, "items-value", avroSchema(v1))
		if err != nil || got.ID != 1 || got.Version != 1 {
			t.Errorf("CreateSchema(items-value, v1) = %+v, %v; want id 1, version 1", got, err)
		}
	})
	t.Run("look-ups answer what was registered", func(t *testing.T) {
		versions, err := cl.SubjectVersions(ctx, itemSubject)
		if err != nil || !cmp.Equal(versions, []int{1, 2}) {
			t.Errorf("SubjectVersions = %v, %v", versions, err)
		}
		subjects, err := cl.Subjects(ctx)
		if err != nil || !cmp.Equal(subjects, []string{itemSubject, "items-value"}) {
			t.Errorf("Subjects = %v, %v", subjects, err)
		}
		latest, err := cl.SchemaByVersion(ctx, itemSubject, -1)
		if err != nil || latest.Version != 2 || latest.Schema.Schema != v2 {
			t.Errorf("SchemaByVersion(latest) = %+v, %v", latest, err)
		}
		one, err := cl.SchemaByVersion(ctx, itemSubject, 1)
		if err != nil || one.ID != 1 {
			t.Errorf("SchemaByVersion(1) = %+v, %v", one, err)
		}
		byID, err := cl.SchemaByID(ctx, 2)
		if err != nil || byID.Schema != v2 {
			t.Errorf("SchemaByID(2) = %+v, %v", byID, err)
		}
		text, err := cl.SchemaTextByID(ctx, 1)
		if err != nil || text != v1 {
			t.Errorf("SchemaTextByID(1) = %q, %v", text, err)
		}
		found, err := cl.LookupSchema(ctx, itemSubject, avroSchema(v1))
		if err != nil || found.Version != 1 || found.ID != 1 {
			t.Errorf("LookupSchema(v1) = %+v, %v", found, err)
		}
		all, err := cl.AllSchemas(sr.WithParams(ctx, sr.LatestOnly))
		if err != nil || len(all) != 2 || all[0].Version != 2 {
			t.Errorf("AllSchemas(latestOnly) = %+v, %v; want each subject's latest", all, err)
		}
	})
	t.Run("compatibility checks answer as Confluent's", func(t *testing.T) {
		ok, err := cl.CheckCompatibility(ctx, itemSubject, -1, avroSchema(v2))
		if err != nil || !ok.Is {
			t.Errorf("CheckCompatibility(v2, latest) = %+v, %v; want compatible", ok, err)
		}
		bad, err := cl.CheckCompatibility(ctx, itemSubject, 1, avroSchema(itemV3NoDefault))
		if err != nil || bad.Is || len(bad.Messages) != 0 {
			t.Errorf("CheckCompatibility(v3, 1) = %+v, %v; want incompatible, no messages unless verbose", bad, err)
		}
		verbose, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), itemSubject, -2, avroSchema(itemV3NoDefault))
		if err != nil || verbose.Is || !contains(strings.Join(verbose.Messages, "\n"), "READER_FIELD_MISSING_DEFAULT_VALUE", "version 1", "version 2", "FULL_TRANSITIVE") {
			t.Errorf("CheckCompatibility(v3, all, verbose) = %+v, %v; want the rule against both versions", verbose, err)
		}
		fresh, err := cl.CheckCompatibility(ctx, "no.such.Subject", -1, avroSchema(v1))
		if err != nil || !fresh.Is {
			t.Errorf("CheckCompatibility against the latest of a new subject = %+v, %v; want compatible", fresh, err)
		}
	})
	t.Run("compatibility levels are configured globally and per subject", func(t *testing.T) {
		global := cl.Compatibility(ctx)[0]
		if global.Err != nil || global.Level != sr.CompatFullTransitive {
			t.Errorf("global level = %v, %v; want the default FULL_TRANSITIVE", global.Level, global.Err)
		}
		if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}); res[0].Err != nil || res[0].Level != sr.CompatBackward {
			t.Errorf("SetCompatibility(global, BACKWARD) = %+v", res[0])
		}
		if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, itemSubject); res[0].Err != nil {
			t.Errorf("SetCompatibility(subject, NONE) = %+v", res[0])
		}
		levels := cl.Compatibility(ctx, itemSubject, "items-value")
		if levels[0].Err != nil || levels[0].Level != sr.CompatNone {
			t.Errorf("subject level = %+v; want NONE", levels[0])
		}
		if code := registryCode(levels[1].Err); code != registry.CodeSubjectCompatibilityNotConfigured {
			t.Errorf("level of a subject without one = %v; want 40408", levels[1].Err)
		}
		inherited := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "items-value")[0]
		if inherited.Err != nil || inherited.Level != sr.CompatBackward {
			t.Errorf("level with defaultToGlobal = %+v; want the global BACKWARD", inherited)
		}
	})
	t.Run("under level NONE a changed field type registers", func(t *testing.T) {
		// Under NONE, a type change registers.
		if _, err := cl.CreateSchema(ctx, itemSubject, avroSchema(itemQuantityString)); err != nil {
			t.Errorf("CreateSchema under NONE = %v", err)
		}
	})
}

// Every error code, as Confluent returns it: the code in the body and the
// status it implies.
func TestConfluentErrorCodes(t *testing.T) {
	store := newPostgresStore(t)
	cl, _ := serve(t, registry.New(postgres.NewRegistryStore(store), registry.Options{}))
	v1 := schemaFile(t, "OrderItemAdded.avsc")
	if _, err := cl.CreateSchema(ctx, itemSubject, avroSchema(v1)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		call       func() error
		code       int
		status     int
		wantInText string
	}{
		{"an unknown schema id is 40403", func() error { _, err := cl.SchemaByID(ctx, 99); return err }, 40403, 404, "Schema 99 not found"},
		{"an unknown subject is 40401", func() error { _, err := cl.SubjectVersions(ctx, "nope"); return err }, 40401, 404, "Subject 'nope' not found."},
		{"an unknown version is 40402", func() error { _, err := cl.SchemaByVersion(ctx, itemSubject, 7); return err }, 40402, 404, "Version 7 not found."},
		{"version 0 is 42202", func() error { _, err := cl.SchemaByVersion(ctx, itemSubject, 0); return err }, 42202, 422, "is not a valid version id"},
		{"a look-up of a schema the subject lacks is 40403", func() error {
			_, err := cl.LookupSchema(ctx, itemSubject, avroSchema(schemaFile(t, "OrderCreated.avsc")))
			return err
		}, 40403, 404, "Schema not found"},
		{"a look-up in an unknown subject is 40401", func() error { _, err := cl.LookupSchema(ctx, "nope", avroSchema(v1)); return err }, 40401, 404, ""},
		{"an incompatible schema is 409", func() error {
			_, err := cl.RegisterSchema(ctx, itemSubject, avroSchema(itemQuantityString), -1, -1)
			return err
		}, 409, 409, "TYPE_MISMATCH"},
		{"an invalid schema is 42201", func() error {
			_, err := cl.RegisterSchema(ctx, "x-value", avroSchema(`{"type": "nonsense"}`), -1, -1)
			return err
		}, 42201, 422, "Invalid schema"},
		{"a protobuf schema is 42201", func() error {
			_, err := cl.RegisterSchema(ctx, "x-value", sr.Schema{Schema: `syntax = "proto3";`, Type: sr.TypeProtobuf}, -1, -1)
			return err
		}, 42201, 422, "Avro schemas only"},
		{"schema references are 42201", func() error {
			s := avroSchema(v1)
			s.References = []sr.SchemaReference{{Name: "x", Subject: "y", Version: 1}}
			_, err := cl.RegisterSchema(ctx, "x-value", s, -1, -1)
			return err
		}, 42201, 422, "references are not supported"},
		{"a second subject for an event type is 42201", func() error {
			_, err := cl.RegisterSchema(ctx, "example.returns.OrderItemAdded", avroSchema(otherItemAdded), -1, -1)
			return err
		}, 42201, 422, "must be unique"},
		{"an unknown compatibility level is 42203", func() error {
			return cl.Do(ctx, http.MethodPut, "/config", map[string]string{"compatibility": "SIDEWAYS"}, nil)
		}, 42203, 422, "Invalid compatibility level"},
		{"a subject without its own level is 40408", func() error { return cl.Compatibility(ctx, itemSubject)[0].Err }, 40408, 404,
			"does not have subject-level compatibility configured"},
		{"a chosen id is 42205", func() error {
			_, err := cl.RegisterSchema(ctx, "x-value", avroSchema(v1), 42, -1)
			return err
		}, 42205, 422, "not permitted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var re *sr.ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("error = %v, want a *sr.ResponseError", err)
			}
			if re.ErrorCode != tt.code || re.StatusCode != tt.status || !strings.Contains(re.Message, tt.wantInText) {
				t.Errorf("error = code %d, status %d, %q; want code %d, status %d, mentioning %q",
					re.ErrorCode, re.StatusCode, re.Message, tt.code, tt.status, tt.wantInText)
			}
		})
	}

	t.Run("a store that fails is 50001", func(t *testing.T) {
		store.Close()
		_, err := cl.Subjects(ctx)
		var re *sr.ResponseError
		if !errors.As(err, &re) || re.ErrorCode != 50001 || re.StatusCode != 500 {
			t.Errorf("Subjects with the store closed = %v; want 50001 with status 500", err)
		}
	})
}

// Bodies that are not what the API takes, sent raw.
func TestMalformedRequests(t *testing.T) {
	_, base := serve(t, registry.New(registry.NewMemStorage(), registry.Options{}))
	tests := []struct {
		name, method, path, body string
		status, code             int
	}{
		{"a body that is not JSON is 400", "POST", "/subjects/s/versions", `{"schema":`, 400, 400},
		{"a body of the wrong shape is 400", "POST", "/subjects/s/versions", `["schema"]`, 400, 400},
		{"a schema that is not a string is 400", "POST", "/subjects/s/versions", `{"schema": 5}`, 400, 400},
		{"a missing body is 422", "POST", "/subjects/s/versions", ``, 422, 422},
		{"a body without a schema is 42201", "POST", "/subjects/s/versions", `{}`, 422, 42201},
		{"a look-up body that is not JSON is 400", "POST", "/subjects/s", `nope`, 400, 400},
		{"a compatibility body that is not JSON is 400", "POST", "/compatibility/subjects/s/versions/latest", `{`, 400, 400},
		{"a compatibility check of version abc is 42202", "POST", "/compatibility/subjects/s/versions/abc", `{"schema": "\"string\""}`, 422, 42202},
		{"a config body that is not JSON is 400", "PUT", "/config", `FULL`, 400, 400},
		{"a config without a level is 42203", "PUT", "/config/s", `{}`, 422, 42203},
		{"a schema id that is not a number is 404", "GET", "/schemas/ids/abc", ``, 404, 404},
		{"an unknown route is 404", "GET", "/nowhere", ``, 404, 404},
		{"a method a route lacks is 405", "DELETE", "/subjects/s", ``, 405, 405},
		{"an oversized body is 42209", "POST", "/subjects/s/versions", `{"schema": "` + strings.Repeat(" ", registry.MaxBodyBytes) + `"}`, 422, 42209},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Code    int    `json:"error_code"`
				Message string `json:"message"`
			}
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not an error body: %v", raw, err)
			}
			if resp.StatusCode != tt.status || body.Code != tt.code || body.Message == "" {
				t.Errorf("%s %s = %d %s; want status %d, error_code %d and a message", tt.method, tt.path, resp.StatusCode, raw, tt.status, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != registry.ContentType {
				t.Errorf("Content-Type = %q, want %q", ct, registry.ContentType)
			}
		})
	}
}

func TestIsWrite(t *testing.T) {
	tests := []struct {
		method, path string
		want         bool
	}{
		{"POST", "/subjects/s/versions", true},
		{"POST", "/registry/subjects/s/versions", true},
		{"POST", "/subjects/a%2Fb/versions", true},
		{"PUT", "/config", true},
		{"PUT", "/registry/config/s", true},
		{"DELETE", "/subjects/s", true},
		{"POST", "/subjects/s", false},
		{"POST", "/registry/subjects/versions", false},
		{"POST", "/compatibility/subjects/s/versions/latest", false},
		{"POST", "/registry/compatibility/subjects/s/versions", false},
		{"GET", "/subjects/s/versions", false},
		{"HEAD", "/schemas/ids/1", false},
	}
	for _, tt := range tests {
		if got := registry.IsWrite(httptest.NewRequest(tt.method, tt.path, nil)); got != tt.want {
			t.Errorf("IsWrite(%s %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}
