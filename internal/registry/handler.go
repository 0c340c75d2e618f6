package registry

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// ContentType is the media type of every response body, as Confluent's.
const ContentType = "application/vnd.schemaregistry.v1+json"

// MaxBodyBytes bounds a request body: a schema larger than this is refused
// with CodeSchemaTooLarge.
const MaxBodyBytes = 1 << 20

// NewHandler serves reg as the Confluent Schema Registry API subset of
// CONTRACT.md §3, rooted at "/": mount it with http.StripPrefix (the
// writer serves it at /registry). Besides the contract's routes it answers
// GET /schemas, /schemas/types, /schemas/ids/{id}/versions and the /schema
// forms, which Confluent clients (franz-go's CreateSchema among them) call.
//
// Bodies and errors are Confluent's: {"error_code": N, "message": "..."}
// with the HTTP status of the code. It does not authenticate: wrap it, and
// use IsWrite to tell reads from writes. Safe for concurrent use.
func NewHandler(reg *Registry, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{reg: reg, log: logger.With("component", "registry-http"), mux: http.NewServeMux()}
	routes := map[string]func(*http.Request) (any, error){
		"GET /schemas":                                              h.allSchemas,
		"GET /schemas/types":                                        func(*http.Request) (any, error) { return []string{"AVRO"}, nil },
		"GET /schemas/ids/{id}":                                     h.schemaByID,
		"GET /schemas/ids/{id}/schema":                              h.rawSchemaByID,
		"GET /schemas/ids/{id}/versions":                            h.schemaVersions,
		"GET /subjects":                                             h.subjects,
		"GET /subjects/{subject}/versions":                          h.versions,
		"POST /subjects/{subject}/versions":                         h.register,
		"GET /subjects/{subject}/versions/{version}":                h.version,
		"GET /subjects/{subject}/versions/{version}/schema":         h.rawVersion,
		"POST /subjects/{subject}":                                  h.lookup,
		"POST /compatibility/subjects/{subject}/versions/{version}": h.compatibility,
		"POST /compatibility/subjects/{subject}/versions":           h.compatibility,
		"GET /config":                                               h.config,
		"PUT /config":                                               h.setConfig,
		"GET /config/{subject}":                                     h.config,
		"PUT /config/{subject}":                                     h.setConfig,
	}
	for pattern, fn := range routes {
		h.mux.Handle(pattern, h.endpoint(fn))
	}
	h.mux.Handle("/", h.endpoint(h.noRoute))
	return h.mux
}

type handler struct {
	reg *Registry
	log *slog.Logger
	mux *http.ServeMux
}

// raw marks a response written as it is, not as JSON: the /schema forms
// return the schema text itself.
type raw string

// endpoint adapts a route function: its value is the response body, its
// error the one error body, with the status from the error's code.
func (h *handler) endpoint(fn func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		w.Header().Set("Content-Type", ContentType)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = storeError("serve", err).(*Error)
			}
			if e.Code == CodeStoreError {
				h.log.Error("registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			w.WriteHeader(e.Status())
			json.NewEncoder(w).Encode(errorBody{Code: e.Code, Message: e.Message})
			return
		}
		if s, ok := v.(raw); ok {
			io.WriteString(w, string(s))
			return
		}
		json.NewEncoder(w).Encode(v)
	})
}

type errorBody struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

// IsWrite reports whether a request to the handler changes the registry:
// PUT, and POST /subjects/{subject}/versions. The look-up POST
// /subjects/{subject} and POST /compatibility/... only read. Any other
// method than GET, HEAD, OPTIONS and POST counts as a write. It reads the
// path's last segments, so it works on the request with or without the
// prefix the handler is mounted under.
func IsWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	case http.MethodPost:
		segs := strings.Split(strings.TrimSuffix(r.URL.EscapedPath(), "/"), "/")
		n := len(segs)
		return n >= 3 && segs[n-1] == "versions" && segs[n-3] == "subjects" && (n < 4 || segs[n-4] != "compatibility")
	default:
		return true
	}
}

func (h *handler) noRoute(r *http.Request) (any, error) {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); pattern != "/" && pattern != "" {
			return nil, errorf(CodeMethodNotAllowed, "HTTP 405 Method Not Allowed")
		}
	}
	return nil, errorf(CodeNotFound, "HTTP 404 Not Found")
}

// request is the body of registrations, look-ups and compatibility
// checks. Unknown fields are ignored, as Confluent's entities do.
type request struct {
	Schema     *string           `json:"schema"`
	SchemaType string            `json:"schemaType"`
	References []json.RawMessage `json:"references"`
	ID         int               `json:"id"`
	Version    int               `json:"version"`
}

// decode reads a JSON body into v: a malformed body is 400 (error code
// 400), a missing one 422, as Confluent's REST layer answers them.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return errorf(CodeSchemaTooLarge, "Request body is larger than %d bytes", MaxBodyBytes)
		case errors.Is(err, io.EOF):
			return errorf(CodeUnprocessable, "The request body is missing")
		default:
			return errorf(CodeBadRequest, "Unable to parse the request body as JSON: %v", err)
		}
	}
	return nil
}

// schemaText reads a request's schema, refusing what this registry does not
// hold: other schema types and references.
func schemaText(r *http.Request) (string, *request, error) {
	var req request
	if err := decode(r, &req); err != nil {
		return "", nil, err
	}
	if req.SchemaType != "" && req.SchemaType != "AVRO" {
		return "", nil, errorf(CodeInvalidSchema, "Invalid schema: schema type %s is not supported: Strata's registry holds Avro schemas only", req.SchemaType)
	}
	if len(req.References) > 0 {
		return "", nil, errorf(CodeInvalidSchema, "Invalid schema: schema references are not supported: give the whole schema, with its named types inline")
	}
	if req.Schema == nil {
		return "", nil, errorf(CodeInvalidSchema, "Invalid schema: the request has no schema")
	}
	return *req.Schema, &req, nil
}

func parseID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return 0, errorf(CodeNotFound, "HTTP 404 Not Found")
	}
	return id, nil
}

// parseVersion reads a version: a number from 1 to 2^31-1, or "latest" or
// -1 for the latest.
func parseVersion(s string) (int, error) {
	if s == "latest" {
		return Latest, nil
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil || v == 0 || v < Latest {
		return 0, invalidVersion(s)
	}
	return int(v), nil
}

func (h *handler) allSchemas(r *http.Request) (any, error) {
	all, err := h.reg.Schemas(r.Context())
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	prefix, latestOnly := q.Get("subjectPrefix"), q.Get("latestOnly") == "true"
	out := []versionBody{}
	for i, s := range all {
		if !strings.HasPrefix(s.Subject, prefix) || latestOnly && i+1 < len(all) && all[i+1].Subject == s.Subject {
			continue
		}
		out = append(out, versionBody(s))
	}
	return out, nil
}

func (h *handler) schemaByID(r *http.Request) (any, error) {
	id, err := parseID(r)
	if err != nil {
		return nil, err
	}
	s, err := h.reg.SchemaByID(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return map[string]string{"schema": s.Schema}, nil
}

func (h *handler) rawSchemaByID(r *http.Request) (any, error) {
	id, err := parseID(r)
	if err != nil {
		return nil, err
	}
	s, err := h.reg.SchemaByID(r.Context(), id)
	return raw(s.Schema), err
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func (h *handler) schemaVersions(r *http.Request) (any, error) {
	id, err := parseID(r)
	if err != nil {
		return nil, err
	}
	versions, err := h.reg.SchemaVersions(r.Context(), id)
	if err != nil {
		return nil, err
	}
	out := make([]subjectVersion, len(versions))
	for i, v := range versions {
		out[i] = subjectVersion{v.Subject, v.Version}
	}
	return out, nil
}

func (h *handler) subjects(r *http.Request) (any, error) {
	subjects, err := h.reg.Subjects(r.Context())
	if subjects == nil {
		subjects = []string{}
	}
	return subjects, err
}

func (h *handler) versions(r *http.Request) (any, error) {
	return h.reg.Versions(r.Context(), r.PathValue("subject"))
}

// versionBody is one subject version as Confluent returns it (it omits
// schemaType for Avro).
type versionBody struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
}

func (h *handler) version(r *http.Request) (any, error) {
	v, err := parseVersion(r.PathValue("version"))
	if err != nil {
		return nil, err
	}
	s, err := h.reg.Version(r.Context(), r.PathValue("subject"), v)
	if err != nil {
		return nil, err
	}
	return versionBody(s), nil
}

func (h *handler) rawVersion(r *http.Request) (any, error) {
	s, err := h.version(r)
	if err != nil {
		return nil, err
	}
	return raw(s.(versionBody).Schema), nil
}

func (h *handler) register(r *http.Request) (any, error) {
	text, req, err := schemaText(r)
	if err != nil {
		return nil, err
	}
	if req.ID > 0 || req.Version > 0 {
		return nil, errorf(CodeOperationNotPermitted, "Overwrite new schema with id %d and version %d is not permitted: "+
			"this registry assigns ids and versions itself", req.ID, req.Version)
	}
	reg, err := h.reg.Register(r.Context(), r.PathValue("subject"), text)
	if err != nil {
		return nil, err
	}
	return map[string]int{"id": reg.ID}, nil
}

func (h *handler) lookup(r *http.Request) (any, error) {
	text, _, err := schemaText(r)
	if err != nil {
		return nil, err
	}
	s, err := h.reg.Lookup(r.Context(), r.PathValue("subject"), text)
	if err != nil {
		return nil, err
	}
	return versionBody(s), nil
}

type compatibilityBody struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitempty"`
}

func (h *handler) compatibility(r *http.Request) (any, error) {
	version := AllVersions
	if s := r.PathValue("version"); s != "" {
		v, err := parseVersion(s)
		if err != nil {
			return nil, err
		}
		version = v
	}
	text, _, err := schemaText(r)
	if err != nil {
		return nil, err
	}
	msgs, err := h.reg.CheckCompatibility(r.Context(), r.PathValue("subject"), version, text)
	if err != nil {
		return nil, err
	}
	body := compatibilityBody{IsCompatible: len(msgs) == 0}
	if r.URL.Query().Get("verbose") == "true" {
		body.Messages = msgs
		if body.Messages == nil {
			return map[string]any{"is_compatible": true, "messages": []string{}}, nil
		}
	}
	return body, nil
}

func (h *handler) config(r *http.Request) (any, error) {
	level, err := h.reg.Level(r.Context(), r.PathValue("subject"), r.URL.Query().Get("defaultToGlobal") == "true")
	if err != nil {
		return nil, err
	}
	return map[string]string{"compatibilityLevel": string(level)}, nil
}

func (h *handler) setConfig(r *http.Request) (any, error) {
	var req struct {
		Compatibility string `json:"compatibility"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	level, err := h.reg.SetLevel(r.Context(), r.PathValue("subject"), req.Compatibility)
	if err != nil {
		return nil, err
	}
	return map[string]string{"compatibility": string(level)}, nil
}
