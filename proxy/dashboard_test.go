package proxy

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestDashboardServesAssets(t *testing.T) {
	h := (&Server{}).dashboard()
	get := func(method, path string) *http.Response {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Result()
	}
	f := func(path, wantType, wantBody string) {
		t.Helper()
		resp := get(http.MethodGet, path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d; want 200", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != wantType {
			t.Errorf("GET %s: Content-Type %q; want %q", path, got, wantType)
		}
		if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") ||
			!strings.Contains(got, "connect-src 'self'") || !strings.Contains(got, "script-src 'self'") ||
			!strings.Contains(got, "style-src 'self'") || !strings.Contains(got, "img-src 'self' data:") {
			t.Errorf("GET %s: Content-Security-Policy %q; want self-only sources", path, got)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q; want nosniff", path, got)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q; want no-cache", path, got)
		}
		if !strings.Contains(string(body), wantBody) {
			t.Errorf("GET %s: body lacks %q", path, wantBody)
		}
		// Revalidation with the ETag is a 304 without a body.
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("GET %s with its ETag: status %d, %d bytes; want 304, empty", path, rec.Code, rec.Body.Len())
		}
	}
	f("/", "text/html; charset=utf-8", `<script src="/assets/app.js"`)
	f("/assets/app.js", "text/javascript; charset=utf-8", "/api/v1/workers")
	f("/assets/style.css", "text/css; charset=utf-8", ".badge")
	f("/assets/favicon.svg", "image/svg+xml", "<svg")

	for _, path := range []string{"/index.html", "/assets/", "/assets/nope.js", "/assets/../web/app.js", "/web/app.js", "/api/v1/nope", "/favicon.ico"} {
		resp := get(http.MethodGet, path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d; want 404", path, resp.StatusCode)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q; want nosniff", path, got)
		}
	}
	if resp := get(http.MethodPost, "/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /: status %d; want 404", resp.StatusCode)
	}
	if resp := get(http.MethodHead, "/assets/app.js"); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /assets/app.js: status %d; want 200", resp.StatusCode)
	}
}

// TestDashboardEveryAssetServed checks that each embedded file is reachable with a
// known type, and that index.html references only assets that exist.
func TestDashboardEveryAssetServed(t *testing.T) {
	assets := loadDashboardAssets(webFS)
	n := 0
	_ = fs.WalkDir(webFS, "web", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if len(assets) != n || n < 4 {
		t.Fatalf("%d assets served of %d embedded files; want all (at least index, js, css, icon)", len(assets), n)
	}
	index := string(assets["/"].body)
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(index, -1) {
		if _, ok := assets[m[1]]; !ok {
			t.Errorf("index.html references %q, which is not served", m[1])
		}
	}
}

// TestDashboardNoExternalURLs scans every embedded file for absolute URLs: the
// page must work offline and the CSP would block them anyway.
func TestDashboardNoExternalURLs(t *testing.T) {
	// The SVG namespace is an identifier that is never fetched; it must appear
	// verbatim in SVG files and createElementNS calls.
	const svgNS = "http://www.w3.org/2000/svg"
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|https?://|\burl\(|@import`)
	err := fs.WalkDir(webFS, "web", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(webFS, name)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(body), svgNS, "")
		for _, loc := range url.FindAllStringIndex(text, -1) {
			line := 1 + strings.Count(text[:loc[0]], "\n")
			t.Errorf("%s:%d: external reference %q", name, line, text[loc[0]:loc[1]])
		}
		if strings.Contains(name, ".js") && strings.Contains(text, "innerHTML") {
			t.Errorf("%s: uses innerHTML; build nodes and set textContent", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
