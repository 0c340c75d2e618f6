// Package console serves the web console: a page shell and its script and
// style sheet, all embedded, with no build step and nothing fetched from
// elsewhere. The shell is the same for every page under /console/, so
// that each page's URL can be bookmarked; the script reads the URL, asks
// the writer's API for the data with the token the user entered (kept in
// the browser's session storage), and renders it. The shell carries no
// data, so it needs no token; every read and action goes through the API,
// with its roles.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// Handler serves the console under Prefix.
func Handler() http.Handler {
	files, _ := fs.Sub(static, "static")
	assets := http.StripPrefix(Prefix+"assets/", http.FileServerFS(files))
	shell, _ := fs.ReadFile(files, "index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Everything comes from here; no inline script, no framing.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		rest := strings.TrimPrefix(r.URL.Path, Prefix)
		if strings.HasPrefix(rest, "assets/") {
			if name := strings.TrimPrefix(rest, "assets/"); name == "index.html" || !fs.ValidPath(name) {
				http.NotFound(w, r)
				return
			}
			h.Set("Cache-Control", "no-cache")
			assets.ServeHTTP(w, r)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		w.Write(shell)
	})
}
