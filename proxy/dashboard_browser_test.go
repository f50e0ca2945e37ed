//go:build unix

package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// The browser tests load the dashboard in headless Chromium (Debian package
// chromium), let it run its refreshes in virtual time, and assert on the DOM it
// dumps. They skip when Chromium is missing, unless HASHRELAY_CI=1.

const browserTimeout = 60 * time.Second

// chromiumPath finds the browser or skips (fails under HASHRELAY_CI=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HASHRELAY_CI") == "1" {
		t.Fatal("chromium not installed: apt-get install chromium")
	}
	t.Skip("chromium not installed: apt-get install chromium")
	return ""
}

// runChromium runs headless Chromium on url with extra flags and returns its
// stdout. The browser runs in its own process group, killed whole when it exits
// or when browserTimeout passes, so no renderer outlives the test.
func runChromium(t *testing.T, url string, flags ...string) []byte {
	t.Helper()
	bin := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=8000",
	}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftover helpers, if any
	}
	if ctx.Err() != nil {
		t.Fatalf("chromium: killed after %v\nstderr:\n%s", browserTimeout, tail(stderr.String(), 2000))
	}
	if err != nil {
		t.Fatalf("chromium: %v\nstderr:\n%s", err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// dashboardServer serves the dashboard at / and api for everything else, as the
// proxy's HTTP listener does.
func dashboardServer(t *testing.T, s *Server, api http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", s.dashboard())
	mux.Handle("GET /assets/", s.dashboard())
	mux.Handle("/", api)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// screenshotDir is HASHRELAY_SCREENSHOT_DIR when set, else a test temp dir.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("HASHRELAY_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// screenshot saves a 1280x800 PNG of url as name in screenshotDir and checks it.
func screenshot(t *testing.T, url, name string) string {
	t.Helper()
	path := filepath.Join(screenshotDir(t), name)
	_ = os.Remove(path)
	runChromium(t, url, "--screenshot="+path, "--window-size=1280,800")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	png, _ := os.ReadFile(path)
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || fi.Size() <= 10<<10 {
		t.Fatalf("screenshot %s: %d bytes; want a PNG over 10 KB", path, fi.Size())
	}
	t.Logf("screenshot: %s (%d bytes)", path, fi.Size())
	return path
}

// page is the DOM Chromium dumped, with helpers to read it.
type page struct {
	t   *testing.T
	dom string
}

func (p page) fatalf(format string, args ...any) {
	p.t.Helper()
	p.t.Fatalf(format+"\nDOM:\n%s", append(args, tail(p.dom, 6000))...)
}

// text is the text inside the element with the given id, which must contain no
// other elements.
func (p page) text(id string) string {
	p.t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(p.dom)
	if m == nil {
		p.fatalf("no element #%s", id)
	}
	return m[1]
}

// section is the markup of the element that opens with open, up to its close.
func (p page) section(open, close string) string {
	p.t.Helper()
	i := strings.Index(p.dom, open)
	if i < 0 {
		p.fatalf("no %s", open)
	}
	j := strings.Index(p.dom[i:], close)
	if j < 0 {
		p.fatalf("%s not closed by %s", open, close)
	}
	return p.dom[i : i+j]
}

var (
	workerRow   = regexp.MustCompile(`<tr data-worker="([^"]*)" data-state="([a-z_]+)">(.*?)</tr>`)
	upstreamRow = regexp.MustCompile(`<tr data-state="([a-z]+)" data-index="(\d+)">(.*?)</tr>`)
	badgeSpan   = regexp.MustCompile(`<span class="badge state-([a-z_]+)">`)
	chartPath   = regexp.MustCompile(`<path d="M[^"]+" class="line">`)
)

var curtailBand = regexp.MustCompile(`<rect [^>]*class="curtail-band"`)

// powerChart checks the power chart draws a line and returns how many curtailment
// bands it shades.
func (p page) powerChart() int {
	p.t.Helper()
	sec := p.section(`<div id="power-chart"`, "</svg>")
	if !chartPath.MatchString(sec) {
		p.fatalf("#power-chart svg has no line path")
	}
	return len(curtailBand.FindAllString(sec, -1))
}

// workers maps each worker row's data-worker to its data-state, checking the
// row's badge shows the same state.
func (p page) workers() map[string]string {
	p.t.Helper()
	rows := map[string]string{}
	for _, m := range workerRow.FindAllStringSubmatch(p.section(`<table id="workers"`, "</table>"), -1) {
		b := badgeSpan.FindStringSubmatch(m[3])
		if b == nil || b[1] != m[2] {
			p.fatalf("worker row %q, state %q: badge %v; want state-%s", m[1], m[2], b, m[2])
		}
		rows[m[1]] = m[2]
	}
	return rows
}

// checkCommon asserts what every loaded dashboard shows: refreshed, no error,
// non-zero fleet hashrate, an upstream that is up, and a chart with a line.
func (p page) checkCommon() {
	p.t.Helper()
	if !regexp.MustCompile(`<body data-refreshes="[1-9]`).MatchString(p.dom) {
		p.fatalf("page never finished a refresh")
	}
	if strings.Contains(p.dom, `class="status error"`) {
		p.fatalf("page shows an API error: %s", p.text("status"))
	}
	if hr := p.text("fleet-hashrate"); !regexp.MustCompile(`^[1-9][0-9.]* [kMGTPEZ]?H/s$|^0\.[0-9]*[1-9][0-9]* [kMGTPEZ]?H/s$`).MatchString(hr) {
		p.fatalf("#fleet-hashrate = %q; want a non-zero rate", hr)
	}
	if n, err := strconv.Atoi(strings.ReplaceAll(p.text("miners"), ",", "")); err != nil || n <= 0 {
		p.fatalf("#miners = %q; want a positive count", p.text("miners"))
	}
	ups := upstreamRow.FindAllStringSubmatch(p.section(`<table id="upstreams"`, "</table>"), -1)
	if len(ups) == 0 || ups[0][1] != "up" || !strings.Contains(ups[0][3], `<span class="badge state-up">up</span>`) {
		p.fatalf("upstream rows %q; want the first up, with an up badge", ups)
	}
	if strings.Contains(ups[0][3], ":x@") {
		p.fatalf("upstream row shows the pool password: %s", ups[0][3])
	}
	if !chartPath.MatchString(p.section(`<div id="chart"`, "</svg>")) {
		p.fatalf("#chart svg has no line path")
	}
}

// TestDashboardBrowser runs the page against a real proxy with simulated
// miners and checks what it shows.
func TestDashboardBrowser(t *testing.T) {
	chromiumPath(t)
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 4e-6, JobInterval: time.Second})
	cfg := Config{Version: "test", Curtail: CurtailConfig{
		Models: []PowerModel{{Name: "rig", Watts: 3250}}, StepInterval: MinCurtailStep,
	}}
	s := newTestProxyPrep(t, cfg, func(s *Server) { s.wireEnergy() }, pool)
	names := []string{"farm.rig01", "farm.rig02", "farm.rig03", "lab.s19-a"}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i, name := range names {
		m := stratumtest.NewMiner(stratumtest.MinerConfig{
			Addr: s.Addr().String(), Worker: name, ShareRate: 5, VersionRolling: i%2 == 0,
			UserAgent: fmt.Sprintf("cgminer/4.%d.0", i),
		})
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.Run(ctx) }()
	}
	api := s.Handler()
	ts := dashboardServer(t, s, api)

	// Wait until the API reports every worker and a non-zero fleet hashrate, so the
	// page has something to show on its first refresh.
	waitFor(t, 20*time.Second, "every worker with accepted shares and a fleet hashrate", func() bool {
		var sum struct {
			Hashrate float64 `json:"hashrate_5m"`
		}
		var ws struct {
			Workers []WorkerStatus `json:"workers"`
		}
		if getJSON(ts.URL+"/api/v1/summary", &sum) != nil || getJSON(ts.URL+"/api/v1/workers", &ws) != nil {
			return false
		}
		seen := 0
		for _, w := range ws.Workers {
			if w.Accepted > 0 {
				seen++
			}
		}
		return sum.Hashrate > 0 && seen == len(names)
	})

	p := page{t, string(runChromium(t, ts.URL+"/", "--dump-dom"))}
	p.checkCommon()
	rows := p.workers()
	for _, name := range names {
		st, ok := rows[name]
		if !ok {
			p.fatalf("worker %s has no row; rows %v", name, rows)
		}
		if st != "ok" {
			t.Errorf("worker %s: state %q; want ok", name, st)
		}
	}
	if got := p.text("workers-range"); got != fmt.Sprintf("1–%d of %d", len(names), len(names)) {
		t.Errorf("#workers-range = %q; want 1–%d of %d", got, len(names), len(names))
	}
	if got := p.text("version"); got != "test" {
		t.Errorf("#version = %q; want test", got)
	}
	if got := p.text("workers-total"); got != strconv.Itoa(len(names)) {
		t.Errorf("#workers-total = %q; want %d", got, len(names))
	}
	screenshot(t, ts.URL+"/", "dashboard.png")

	// Filtering and sorting go through the real API's query parameters.
	p = page{t, string(runChromium(t, ts.URL+"/#name=RIG&state=ok&sort=-hashrate", "--dump-dom"))}
	p.checkCommon()
	rows = p.workers()
	if len(rows) != 3 || rows["farm.rig01"] == "" || rows["farm.rig02"] == "" || rows["farm.rig03"] == "" {
		p.fatalf("rows %v for name=RIG; want farm.rig01..03", rows)
	}
	if got := p.text("workers-range"); got != "1–3 of 3" {
		t.Errorf("#workers-range = %q; want 1–3 of 3", got)
	}
	if !strings.Contains(p.dom, `data-sort="hashrate" aria-sort="descending"`) {
		t.Errorf("hashrate header not marked aria-sort=descending")
	}

	// Curtail one worker (2 kW of 4 × 3.25 kW, at once): the power chart shades the
	// curtailment, the card shows it, and the worker's row says curtailed.
	if got := p.text("fleet-power"); got != "13.0 kW" {
		t.Errorf("#fleet-power = %q; want 13.0 kW", got)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/curtailment", strings.NewReader(`{"kw": 2, "ramp": "0s"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/curtailment: %s", resp.Status)
	}
	waitFor(t, 10*time.Second, "one worker curtailed", func() bool {
		var sum Summary
		return getJSON(ts.URL+"/api/v1/summary", &sum) == nil && sum.Curtailment.CurtailedWorkers == 1
	})
	p = page{t, string(runChromium(t, ts.URL+"/", "--dump-dom"))}
	p.checkCommon()
	if n := p.powerChart(); n < 1 {
		p.fatalf("power chart: no curtailment band while curtailment is active")
	}
	if got := p.text("curtail-status"); got != "active" {
		t.Errorf("#curtail-status = %q; want active", got)
	}
	if got := p.text("curtail-cause"); got != "api" {
		t.Errorf("#curtail-cause = %q; want api", got)
	}
	if got := p.text("curtail-workers"); got != "1" {
		t.Errorf("#curtail-workers = %q; want 1", got)
	}
	curtailed := 0
	for _, st := range p.workers() {
		if st == StateCurtailed {
			curtailed++
		}
	}
	if curtailed != 1 {
		t.Errorf("%d worker rows curtailed; want 1", curtailed)
	}
	screenshot(t, ts.URL+"/", "dashboard-curtailed.png")
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestDashboardBrowserFakeAPI runs the page against a canned, contract-shaped
// API with 130 workers (so it pages), every state, and a hostile worker name,
// which must show as text and never become markup.
func TestDashboardBrowserFakeAPI(t *testing.T) {
	chromiumPath(t)
	api, lastQuery := fakeDashboardAPI()
	ts := dashboardServer(t, &Server{}, api)
	p := page{t, string(runChromium(t, ts.URL+"/", "--dump-dom"))}
	p.checkCommon()

	rows := p.workers()
	if len(rows) != 100 {
		t.Errorf("%d worker rows; want 100 (one page)", len(rows))
	}
	seen := map[string]bool{}
	for _, st := range rows {
		seen[st] = true
	}
	for _, st := range []string{"ok", "idle", "degraded", "not_rolling", "rejected", "offline", "curtailed"} {
		if !seen[st] {
			t.Errorf("no worker row in state %s", st)
		}
	}
	// Energy: the power card, the curtailment card (its cause is text, never
	// markup), and the power chart with one band per curtailment period.
	for id, want := range map[string]string{
		"fleet-power": "11.8 kW", "fleet-jth": "29.5 J/TH", "fleet-energy": "2.83 MWh",
		"curtail-status": "active", "curtail-cause": "<b>price</b>", "curtail-target": "3.50 kW",
		"curtail-shed": "3.51 kW", "curtail-workers": "10", "curtailed-energy": "312 kWh",
	} {
		if got := strings.ReplaceAll(strings.ReplaceAll(p.text(id), "&lt;", "<"), "&gt;", ">"); got != want {
			t.Errorf("#%s = %q; want %q", id, got, want)
		}
	}
	if n := p.powerChart(); n != 2 {
		t.Errorf("power chart: %d curtailment bands; want 2", n)
	}
	if !strings.Contains(p.dom, `<td class="num" title="model s19, 70.5 kWh, curtailed 10m 0s (490 Wh saved)">3.25 kW</td><td class="num">29.5 J/TH</td>`) {
		t.Errorf("worker rows lack the power and J/TH cells")
	}
	if got := p.text("workers-range"); got != "1–100 of 130" {
		t.Errorf("#workers-range = %q; want 1–100 of 130", got)
	}
	if got := p.text("fleet-hashrate"); got != "412 TH/s" {
		t.Errorf("#fleet-hashrate = %q; want 412 TH/s", got)
	}
	if strings.Contains(p.dom, `src="x"`) || strings.Contains(p.dom, "<b>bold") {
		t.Errorf("hostile worker name became markup")
	}
	if !strings.Contains(p.dom, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("hostile worker name not shown as text")
	}
	screenshot(t, ts.URL+"/", "dashboard-fake-api.png")

	// The view in the fragment reaches the API and the table headers.
	p = page{t, string(runChromium(t, ts.URL+"/#sort=-hashrate&state=idle&name=FARM1", "--dump-dom"))}
	q := lastQuery()
	if q.Get("sort") != "-hashrate" || q.Get("state") != "idle" || q.Get("name") != "FARM1" || q.Get("per_page") != "100" || q.Get("page") != "1" {
		t.Errorf("workers query %v; want sort=-hashrate, state=idle, name=FARM1, per_page=100, page=1", q)
	}
	rows = p.workers()
	if len(rows) == 0 {
		p.fatalf("no idle farm1 workers shown")
	}
	for name, st := range rows {
		if st != "idle" || !strings.HasPrefix(name, "farm1.") {
			t.Errorf("filtered row %q in state %q; want farm1.* idle", name, st)
		}
	}
	if !strings.Contains(p.dom, `<th scope="col" class="num" data-sort="hashrate" aria-sort="descending">`) {
		t.Errorf("hashrate header not marked aria-sort=descending")
	}
	if !strings.Contains(p.dom, `<th scope="col" data-sort="name" aria-sort="none">`) {
		t.Errorf("name header not marked aria-sort=none")
	}
}

// fakeDashboardAPI serves /api/v1/summary, /api/v1/upstreams and
// /api/v1/workers (with page, per_page, sort by name or hashrate, name and state)
// from canned data shaped as the API contract says. lastQuery returns the latest
// workers query.
func fakeDashboardAPI() (api http.Handler, lastQuery func() url.Values) {
	var mu sync.Mutex
	var last url.Values
	states := []string{"ok", "ok", "ok", "ok", "ok", "ok", "idle", "degraded", "not_rolling", "rejected", "offline"}
	now := time.Now()
	var workers []map[string]any
	for i := range 130 {
		name := fmt.Sprintf("farm%d.s19-%03d", i%3, i)
		switch i {
		case 7:
			name = "<img src=x onerror=alert(1)>"
		case 8:
			name = `<b>bold</b>"quoted"`
		}
		st := states[i%len(states)]
		if i%13 == 5 {
			st = "curtailed"
		}
		hr := 110e12 * (0.8 + 0.4*math.Sin(float64(i)))
		if st == "offline" || st == "curtailed" {
			hr = 0
		}
		curtailed := st == "curtailed"
		kw := map[bool]float64{false: 3.25, true: 0.325}[curtailed]
		workers = append(workers, map[string]any{
			"name": name, "account": strings.SplitN(name, ".", 2)[0], "state": st,
			"connections": map[bool]int{true: 0, false: 1}[st == "offline" || curtailed],
			"since":       now.Add(-3 * time.Hour), "remote_addr": fmt.Sprintf("10.0.%d.%d:4028", i/250, i%250+1),
			"user_agent": "bmminer/2.0.0", "difficulty": 65536.0, "version_mask": "1fffe000",
			"rolling": st != "offline", "rolling_active": st != "not_rolling",
			"accepted": 1000 + i*37, "rejected": map[string]int{"stale": i % 4, "duplicate": i % 2},
			"hashrate": hr, "hashrate_1m": hr, "hashrate_5m": hr, "hashrate_1h": hr, "hashrate_24h": hr * 1.02,
			"last_share": now.Add(-time.Duration(i%50) * time.Second),
			"energy": map[string]any{"model": "s19", "curtailed": curtailed, "power_kw": kw, "energy_kwh": 70.5,
				"joules_per_th": map[bool]float64{false: 29.5, true: 0}[curtailed], "curtailed_seconds": 600.0, "curtailed_kwh": 0.49},
		})
	}
	var history [][2]float64
	var powerHistory [][3]float64
	for i := range 24 * 60 {
		t := float64(now.Add(-time.Duration(24*60-1-i) * time.Minute).Unix())
		hr := 400e12 + 30e12*math.Sin(float64(i)/90) + 8e12*math.Sin(float64(i)/7)
		// Two curtailment periods: 10:00 to 12:00 ago, and the last 20 minutes.
		c, kw := 0.0, hr*29.5/1e15
		if (i >= 600 && i < 720) || i >= 24*60-20 {
			c, kw, hr = 1, kw*0.7, hr*0.75
		}
		history = append(history, [2]float64{t, hr})
		powerHistory = append(powerHistory, [3]float64{t, kw, c})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/summary", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"version": "v0.5.0-fake", "uptime_seconds": 93784.0, "miners_connected": 118,
			"workers":     map[string]int{"total": 130, "ok": 62, "idle": 12, "degraded": 12, "not_rolling": 12, "rejected": 11, "offline": 11, "curtailed": 10},
			"hashrate_1m": 409e12, "hashrate_5m": 412e12, "hashrate_1h": 405e12, "hashrate_24h": 401e12,
			"accepted": 1234567, "rejected": 321, "accepted_work": 8.1e10, "forwarded": 98765,
			"upstream_accepted": 98700, "upstream_rejected": 65, "shares_lost": 2, "block_candidates": 0,
			"upstreams": map[string]int{"total": 2, "up": 1}, "hashrate_history": history,
			"power_history": powerHistory,
			"energy": map[string]any{"curtailed": false, "power_kw": 11.78, "energy_kwh": 2831.4, "joules_per_th": 29.5,
				"curtailed_seconds": 86400.0, "curtailed_kwh": 312.25},
			"curtailment": map[string]any{"active": true, "cause": "<b>price</b>", "target_kw": 3.5, "shed_kw": 3.51,
				"curtailed_workers": 10, "since": now.Add(-20 * time.Minute)},
		})
	})
	mux.HandleFunc("GET /api/v1/upstreams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"upstreams": []map[string]any{
			{"index": 0, "pool": "stratum+tcp://farm@pool.example:3333", "state": "up", "slots": 15, "latency_ms": 42.7,
				"difficulty": 65536.0, "shares_accepted": 98700, "shares_rejected": 65, "rejects": map[string]int{"stale": 60, "duplicate": 5}, "switches": 1},
			{"index": 1, "pool": "stratum+tcp://farm@backup.example:3333", "state": "standby", "slots": 0, "latency_ms": 0.0,
				"difficulty": 0.0, "shares_accepted": 0, "shares_rejected": 0, "rejects": map[string]int{}, "switches": 0},
		}})
	})
	mux.HandleFunc("GET /api/v1/workers", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		last = q
		mu.Unlock()
		page, _ := strconv.Atoi(q.Get("page"))
		per, _ := strconv.Atoi(q.Get("per_page"))
		page, per = max(page, 1), min(max(per, 1), 1000)
		var out []map[string]any
		for _, wk := range workers {
			if strings.Contains(strings.ToLower(wk["name"].(string)), strings.ToLower(q.Get("name"))) &&
				(q.Get("state") == "" || strings.Contains(","+q.Get("state")+",", ","+wk["state"].(string)+",")) {
				out = append(out, wk)
			}
		}
		key, desc := strings.CutPrefix(q.Get("sort"), "-")
		sort.SliceStable(out, func(i, j int) bool {
			if desc {
				i, j = j, i
			}
			if key == "hashrate" {
				return out[i]["hashrate"].(float64) < out[j]["hashrate"].(float64)
			}
			return out[i]["name"].(string) < out[j]["name"].(string)
		})
		total := len(out)
		out = out[min((page-1)*per, total):min(page*per, total)]
		writeJSON(w, map[string]any{"workers": out, "total": total, "page": page, "per_page": per})
	})
	return mux, func() url.Values {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// TestDashboardBrowserAPIDown checks the page says so when the API fails, and
// keeps its empty placeholders rather than breaking.
func TestDashboardBrowserAPIDown(t *testing.T) {
	chromiumPath(t)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		writeJSON(w, map[string]string{"error": "draining"})
	})
	ts := dashboardServer(t, &Server{}, api)
	p := page{t, string(runChromium(t, ts.URL+"/", "--dump-dom"))}
	if got := p.text("status"); !strings.Contains(p.dom, `class="status error"`) || !strings.Contains(got, "draining") {
		p.fatalf("#status = %q; want an error naming the API's reason", got)
	}
	if got := p.text("fleet-hashrate"); got != "—" {
		t.Errorf("#fleet-hashrate = %q; want the placeholder", got)
	}
}
