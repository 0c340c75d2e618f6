package httpapi

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// ProjectorPrefix is where the writer passes requests on to a projector's
// read API, for the web console: /console/projector/v1/projections... is
// the projector's /v1/projections..., so that the console's pages, served
// by the writer, reach the projections from their own origin. Only the
// projections' routes pass. The writer checks the token first (reads need
// reader, actions admin) and passes it on: the projector checks it again
// against its own tokens.
const ProjectorPrefix = "/console/projector"

// projectorTimeout bounds the projector's answer.
const projectorTimeout = 30 * time.Second

// proxyProjector serves ProjectorPrefix, passing requests on to target;
// with no target, it says so.
func (s *Server) proxyProjector(target *url.URL) {
	if target == nil {
		s.projectorRoutes(func(http.ResponseWriter, *http.Request, Token) error {
			return eventstore.Errorf(CodeNotFound, "this writer reaches no projector: start it with --projector-url")
		})
		return
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = projectorTimeout
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimSuffix(target.Path, "/") + strings.TrimPrefix(pr.In.URL.Path, ProjectorPrefix)
			pr.Out.URL.RawPath = ""
		},
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.opts.Logger.Warn("the projector's read API cannot be reached", "url", target.String(), "error", err)
			_, body := describe(eventstore.Errorf(eventstore.CodeUnavailable,
				"the projector's read API at %s cannot be reached (writer serve --projector-url): %v", target.Redacted(), err))
			body.RequestID = w.Header().Get("X-Request-Id")
			WriteJSON(w, http.StatusServiceUnavailable, map[string]errorBody{"error": body})
		},
	}
	s.projectorRoutes(passOn(proxy))
}

// projectorRoutes serves ProjectorPrefix with h: reads with the reader
// role, the rest with admin. By method, and without Handle's answer to
// other methods: a pattern of all methods would clash with the console's
// GET /console/.
func (s *Server) projectorRoutes(h HandlerFunc) {
	for method, role := range map[string]Role{"GET": RoleReader, "POST": RoleAdmin, "PUT": RoleAdmin, "DELETE": RoleAdmin} {
		s.router.wrap(method+" "+ProjectorPrefix+"/", "projector", func(*http.Request) Role { return role }, h)
	}
}

// passOn passes the projections' routes on to proxy.
func passOn(proxy http.Handler) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ Token) error {
		rest := strings.TrimPrefix(r.URL.Path, ProjectorPrefix)
		if rest != "/v1/projections" && !strings.HasPrefix(rest, "/v1/projections/") {
			return eventstore.Errorf(CodeNotFound, "only the projector's /v1/projections routes are passed on, not %.80q", rest)
		}
		proxy.ServeHTTP(w, r)
		return nil
	}
}
