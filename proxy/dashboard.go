package proxy

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// The dashboard is a single page (web/index.html) plus a few static assets,
// embedded so the binary serves it with no network access and no build step. The
// page polls /api/v1/summary, /api/v1/upstreams and /api/v1/workers every 5 s.
//
//go:embed web
var webFS embed.FS

// dashboardCSP lets the page load only its own assets and talk only to its own
// origin: nothing comes from, or goes to, the internet.
const dashboardCSP = "default-src 'self'; connect-src 'self'; style-src 'self'; script-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dashboardTypes maps an asset's extension to its Content-Type. Set explicitly,
// not from the system's mime tables, which vary between hosts.
var dashboardTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// dashboardAsset is one embedded file, ready to serve.
type dashboardAsset struct {
	body  []byte
	ctype string
	etag  string
}

// dashboardAssets indexes the embedded files by URL path: "/" for index.html,
// "/assets/<name>" for the others.
type dashboardAssets map[string]dashboardAsset

// loadDashboardAssets reads the embedded web directory. A file with an unknown
// extension is a build mistake and panics, in every test run.
func loadDashboardAssets(fsys fs.FS) dashboardAssets {
	assets := dashboardAssets{}
	err := fs.WalkDir(fsys, "web", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		ctype, ok := dashboardTypes[path.Ext(name)]
		if !ok {
			panic("dashboard: no content type for " + name)
		}
		sum := sha256.Sum256(body)
		a := dashboardAsset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		rel := strings.TrimPrefix(name, "web/")
		if rel == "index.html" {
			assets["/"] = a
		} else {
			assets["/assets/"+rel] = a
		}
		return nil
	})
	if err != nil {
		panic("dashboard: " + err.Error())
	}
	return assets
}

// dashboard serves the live status page at / and its assets under /assets/; any
// other path is 404. It is meant to be mounted as the mux's "GET /" fallback.
func (s *Server) dashboard() http.Handler {
	return embeddedDashboard()
}

// embeddedDashboard reads webFS once, on first use.
var embeddedDashboard = sync.OnceValue(func() dashboardAssets { return loadDashboardAssets(webFS) })

func (assets dashboardAssets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	a, ok := assets[r.URL.Path]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", a.ctype)
	// Assets keep their names across versions, so every load revalidates; the
	// ETag makes that a 304 when nothing changed.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
