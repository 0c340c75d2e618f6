package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// ClientOptions configures a Client. The zero value gives the defaults.
type ClientOptions struct {
	// HTTPClient makes the requests; default one with a 5s timeout.
	HTTPClient *http.Client
}

// Client is an external Confluent-compatible schema registry
// (STRATA_REGISTRY_URL), through franz-go's sr client. It is a Source for
// a Catalog and applies schema files; it is safe for concurrent use.
//
// Errors: what the registry answers is a *Error with its code and message;
// a registry that cannot be reached, or answers with a server error, is an
// error coded unavailable (errors.Is eventstore.ErrUnavailable).
type Client struct {
	cl *sr.Client
}

// NewClient returns a client of the registry at baseURL. Credentials in
// the URL (https://user:password@host) are sent as basic authentication.
func NewClient(baseURL string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("registry url %q is not an http:// or https:// URL", baseURL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	clientOpts := []sr.ClientOpt{sr.HTTPClient(opts.HTTPClient), sr.UserAgent("strata")}
	if u.User != nil {
		pass, _ := u.User.Password()
		clientOpts = append(clientOpts, sr.BasicAuth(u.User.Username(), pass))
		u.User = nil
	}
	cl, err := sr.NewClient(append(clientOpts, sr.URLs(u.String()))...)
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	return &Client{cl: cl}, nil
}

// clientError translates sr's errors: the registry's answers become
// *Error, anything else (no answer, a server error) unavailable.
func clientError(ctx context.Context, op string, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode < 500 {
		code := re.ErrorCode
		if code == 0 {
			code = re.StatusCode
		}
		return &Error{Code: code, Message: re.Message, Err: err}
	}
	return &unavailableError{cause: fmt.Errorf("%s: %w", op, err)}
}

// Generation returns 0: a Confluent registry has no cheap change counter,
// so a Catalog reloads from it on every refresh.
func (c *Client) Generation(ctx context.Context) (int64, error) { return 0, nil }

// Schemas returns every version of every Avro subject (GET /schemas).
func (c *Client) Schemas(ctx context.Context) ([]SubjectSchema, error) {
	all, err := c.cl.AllSchemas(ctx)
	if err != nil {
		return nil, clientError(ctx, "list schemas", err)
	}
	out := make([]SubjectSchema, 0, len(all))
	for _, s := range all {
		if s.Type == sr.TypeAvro {
			out = append(out, SubjectSchema{Subject: s.Subject, Version: s.Version, ID: s.ID, Schema: s.Schema.Schema})
		}
	}
	return out, nil
}

// SchemaByID returns the schema with registry id (GET /schemas/ids/{id}).
func (c *Client) SchemaByID(ctx context.Context, id int) (SubjectSchema, error) {
	s, err := c.cl.SchemaByID(ctx, id)
	if err != nil {
		return SubjectSchema{}, clientError(ctx, "read schema", err)
	}
	if s.Type != sr.TypeAvro {
		return SubjectSchema{}, errorf(CodeInvalidSchema, "schema %d is %s, not Avro", id, s.Type)
	}
	return SubjectSchema{ID: id, Schema: s.Schema}, nil
}

// state loads what a registration under subject is checked against: its
// versions, its effective level, and another subject holding the same
// event type, if eventType is not "" (the registry is not asked to keep
// event types unique, so this looks for one among the subjects listed).
func (c *Client) state(ctx context.Context, subject, eventType string, subjects []string) (SubjectState, error) {
	var st SubjectState
	versions, err := c.cl.Schemas(ctx, subject)
	var re *sr.ResponseError
	if err != nil && !(errors.As(err, &re) && re.ErrorCode == CodeSubjectNotFound) {
		return st, clientError(ctx, "list versions of "+subject, err)
	}
	for _, v := range versions {
		s, err := Parse(v.Schema.Schema)
		if err != nil {
			return st, fmt.Errorf("version %d of %s: %w", v.Version, subject, err)
		}
		st.Versions = append(st.Versions, StoredSchema{Subject: subject, Version: v.Version, ID: v.ID,
			Fingerprint: s.Fingerprint(), Canonical: s.Canonical(), Text: v.Schema.Schema})
	}
	levels := c.cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
	if err := levels[0].Err; err != nil {
		return st, clientError(ctx, "read compatibility of "+subject, err)
	}
	st.Level = levels[0].Level.String()
	if eventType == "" {
		return st, nil
	}
	for _, other := range subjects {
		if other == subject || other != eventType && !strings.HasSuffix(other, "."+eventType) {
			continue
		}
		latest, err := c.cl.SchemaByVersion(ctx, other, -1)
		if err != nil {
			return st, clientError(ctx, "read latest version of "+other, err)
		}
		if s, err := Parse(latest.Schema.Schema); err == nil && s.Type() == "record" && s.FullName() == other {
			st.EventTypeOwner = other
		}
	}
	return st, nil
}

// register registers one schema and returns its id and version.
func (c *Client) register(ctx context.Context, subject, text string) (id, version int, err error) {
	schema := sr.Schema{Schema: text, Type: sr.TypeAvro}
	if _, err := c.cl.RegisterSchema(ctx, subject, schema, -1, -1); err != nil {
		return 0, 0, clientError(ctx, "register a schema under "+subject, err)
	}
	ss, err := c.cl.LookupSchema(ctx, subject, schema)
	if err != nil {
		return 0, 0, clientError(ctx, "look up the schema registered under "+subject, err)
	}
	return ss.ID, ss.Version, nil
}
