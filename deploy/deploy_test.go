package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/metrics"
	"github.com/hashrelay/hashrelay/proxy"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

const (
	alertsFile     = "prometheus/alerts.yml"
	alertTestsFile = "prometheus/alerts_test.yml"
	dashboardFile  = "grafana/hashrelay.json"
)

// promtool returns promtool's path, or skips the test when it is not installed
// (fails it under HASHRELAY_CI=1, where it must be).
func promtool(t *testing.T) string {
	t.Helper()
	return tool(t, "promtool", "prometheus")
}

// runPromtool runs promtool with args and stdin, failing the test on a non-zero
// exit; it returns the combined output.
func runPromtool(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkMetrics runs promtool check metrics on an exposition: any output is a
// lint problem.
func checkMetrics(t *testing.T, exposition []byte) {
	t.Helper()
	if out := runPromtool(t, exposition, "check", "metrics"); strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics:\n%s", out)
	}
}

func TestAlertRulesCheck(t *testing.T) {
	out := runPromtool(t, nil, "check", "rules", alertsFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules: %s", out)
	}
}

func TestAlertRulesUnitTests(t *testing.T) {
	runPromtool(t, nil, "test", "rules", alertTestsFile)
}

// alertBlock is one "- alert:" entry of alerts.yml, as text.
var alertBlock = regexp.MustCompile(`(?m)^\s*- alert: (\w+)\n((?:\s{8,}.*\n?)*)`)

// TestAlertRulesShape checks, without a YAML parser, that every rule has a
// severity, a summary and a description, and that the alerts the issue asks for
// are all there.
func TestAlertRulesShape(t *testing.T) {
	text, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range alertBlock.FindAllStringSubmatch(string(text), -1) {
		name, body := m[1], m[2]
		names = append(names, name)
		for _, want := range []string{"severity: ", "summary: ", "description: ", "expr: "} {
			if !strings.Contains(body, want) {
				t.Errorf("alert %s: no %q", name, want)
			}
		}
	}
	for _, want := range []string{
		"HashRelayDown", "NoUpstream", "UpstreamRejectsHigh", "SharesLost", "WorkersIdle", "WorkersDegraded",
		"WorkersNotRolling", "WorkersRejected", "FleetHashrateDrop", "MinersDropped", "ReplyLatencyHigh",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s (have %v)", want, names)
		}
	}
}

// metricRef matches what looks like a HashRelay metric name in PromQL.
var metricRef = regexp.MustCompile(`\bhashrelay_[a-zA-Z0-9_]+`)

// checkRefs fails for each hashrelay_ name in expr that the metrics package does
// not define.
func checkRefs(t *testing.T, where, expr string, known []string) {
	t.Helper()
	for _, name := range metricRef.FindAllString(expr, -1) {
		if _, ok := slices.BinarySearch(known, name); !ok {
			t.Errorf("%s: metric %s is not defined in metrics/", where, name)
		}
	}
}

func TestAlertRulesMetricNames(t *testing.T) {
	text, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	known := metrics.New().Names()
	// The whole text, not only expressions: a metric named in an annotation must
	// exist too.
	checkRefs(t, alertsFile, string(text), known)
	for _, f := range []string{alertTestsFile} {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkRefs(t, f, string(text), known)
	}
}

// dashboard is the part of a Grafana dashboard the tests look at.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q; want both set", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d; want >= 36", d.SchemaVersion)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Type+":"+v.Name)
		if v.Type == "query" {
			checkRefs(t, "variable "+v.Name, string(v.Query), metrics.New().Names())
		}
	}
	if !slices.Contains(vars, "datasource:datasource") {
		t.Errorf("templating %v; want a datasource variable named datasource", vars)
	}

	known := metrics.New().Names()
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := make(map[int]string)
	var titles []string
	for _, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("%s: id also used by %q", where, prev)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: gridPos x %d w %d; want inside 24 columns", where, p.GridPos.X, p.GridPos.W)
		}
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: datasource %+v; want uid ${datasource}", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: target %s has no expression", where, tg.RefID)
			}
			if !metricRef.MatchString(tg.Expr) {
				t.Errorf("%s: target %s queries no hashrelay_ metric: %s", where, tg.RefID, tg.Expr)
			}
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("%s: target %s datasource %+v; want uid ${datasource}", where, tg.RefID, tg.Datasource)
			}
			checkRefs(t, where, tg.Expr, known)
		}
	}
	for _, want := range []string{
		"Fleet hashrate", "Miners connected", "Workers by state", "Shares by verdict", "Upstream answers",
		"Upstream reject reasons", "Upstream up, by pool", "Shares lost", "Miner reply latency (p50, p99)",
		"Job fan-out (p99)", "Connections closed by reason", "Fleet power", "Curtailment",
	} {
		if !slices.Contains(titles, want) {
			t.Errorf("no panel %q", want)
		}
	}
}

// TestPromtoolWorkerExposition lints the per-worker series, which a live scrape
// only shows once the proxy has workers and -metrics-per-worker, with names
// chosen to be awkward.
func TestPromtoolWorkerExposition(t *testing.T) {
	m := metrics.New()
	m.SetWorkerSource(func() []metrics.WorkerSample {
		return []metrics.WorkerSample{
			{Name: "farm.rig1", State: metrics.StateOK, Hashrate5m: 1e12, Accepted: 10, LastShare: time.Now(), Connections: 1, Difficulty: 1024,
				HasEnergy: true, PowerKW: 3.25, EnergyKWh: 12.5},
			{Name: `odd "name"\ with.dots`, State: metrics.StateCurtailed, Hashrate24h: 5e11, HasEnergy: true, PowerKW: 0.3},
			{Name: "矿机-7", State: metrics.StateOffline},
		}
	}, true, 2)
	m.SetEnergySource(func() metrics.EnergySample {
		return metrics.EnergySample{PowerKW: 3.55, EnergyKWhTotal: 20, CurtailmentActive: true, TargetKW: 2, ShedKW: 2.9,
			CurtailedWorkers: 1, CurtailedSeconds: 60, CurtailedKWh: 0.05, HasPrice: true, Price: 95.5, PriceErrors: 1}
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	body := get(t, srv.URL)
	for _, want := range []string{"hashrelay_worker_hashrate{", "hashrelay_worker_power_kw{", "hashrelay_curtailment_price "} {
		if !bytes.Contains(body, []byte(want)) {
			t.Fatalf("no %s series in:\n%s", want, body)
		}
	}
	checkMetrics(t, body)
}

// TestPromtoolLiveScrape runs a proxy in front of a simulated pool, with
// simulated miners, and lints its /metrics with promtool, as CI does.
func TestPromtoolLiveScrape(t *testing.T) {
	promtool(t)
	for _, perWorker := range []bool{false, true} {
		t.Run(fmt.Sprintf("perWorker=%v", perWorker), func(t *testing.T) {
			body := liveScrape(t, perWorker)
			for _, want := range []string{"hashrelay_shares_total{", "hashrelay_workers{", "hashrelay_miner_reply_seconds_bucket{"} {
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("scrape has no %s", want)
				}
			}
			if n := seriesValue(body, "hashrelay_connections_total"); n < 4 {
				t.Errorf("hashrelay_connections_total %v; want >= 4 (miners did not connect?)", n)
			}
			// Workers are counted once the proxy feeds SetWorkerSource; from then on
			// the per-worker series must follow -metrics-per-worker.
			if seriesValue(body, "hashrelay_workers{") > 0 {
				if got := bytes.Contains(body, []byte("\nhashrelay_worker_hashrate{")); got != perWorker {
					t.Errorf("per-worker %v: hashrelay_worker_hashrate present %v", perWorker, got)
				}
			} else {
				t.Log("hashrelay_workers all zero: the proxy does not feed SetWorkerSource yet")
			}
			checkMetrics(t, body)
		})
	}
}

// liveScrape returns /metrics of a proxy that has served a few miners for a second.
func liveScrape(t *testing.T, perWorker bool) []byte {
	t.Helper()
	pool, err := stratumtest.NewPool(stratumtest.PoolConfig{Difficulty: 4e-6, JobInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	up, err := proxy.ParsePoolURL("stratum+tcp://acct:x@" + pool.Addr())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(proxy.Config{
		Listen:           "127.0.0.1:0",
		HTTP:             "127.0.0.1:0",
		Upstreams:        []proxy.PoolURL{up},
		StartDifficulty:  1e-6,
		MinDifficulty:    1e-7,
		MetricsPerWorker: perWorker,
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 4 {
		m := stratumtest.NewMiner(stratumtest.MinerConfig{
			Addr:           srv.Addr().String(),
			Worker:         fmt.Sprintf("farm.rig%d", i),
			VersionRolling: i%2 == 0,
			ShareRate:      20,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = m.Run(ctx)
		}()
	}
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	return get(t, "http://"+srv.HTTPAddr()+"/metrics")
}

// seriesValue sums the values of the exposition's samples whose line starts with
// prefix (a name, or a name and "{").
func seriesValue(exposition []byte, prefix string) float64 {
	var sum float64
	for line := range strings.Lines(string(exposition)) {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return body
}
