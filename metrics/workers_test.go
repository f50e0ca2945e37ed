package metrics

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// newWithWorkers returns Metrics whose scrapes see samples.
func newWithWorkers(samples []WorkerSample, perWorker bool, max int) *Metrics {
	m := New()
	m.SetWorkerSource(func() []WorkerSample { return samples }, perWorker, max)
	return m
}

// gather scrapes m and fails the test on an error or a lint problem.
func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	byName := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	return byName
}

// label returns the value of the named label of metric, or "".
func label(metric *dto.Metric, name string) string {
	for _, l := range metric.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestWorkerStatesAlwaysPresent(t *testing.T) {
	const noWorkers = `
# HELP hashrelay_workers Workers known, by state (ok, idle, degraded, not_rolling, rejected, offline, curtailed).
# TYPE hashrelay_workers gauge
hashrelay_workers{state="curtailed"} 0
hashrelay_workers{state="degraded"} 0
hashrelay_workers{state="idle"} 0
hashrelay_workers{state="not_rolling"} 0
hashrelay_workers{state="offline"} 0
hashrelay_workers{state="ok"} 0
hashrelay_workers{state="rejected"} 0
# HELP hashrelay_fleet_hashrate Hashrate of all workers in hashes per second, by averaging window.
# TYPE hashrelay_fleet_hashrate gauge
hashrelay_fleet_hashrate{window="1m"} 0
hashrelay_fleet_hashrate{window="1h"} 0
hashrelay_fleet_hashrate{window="24h"} 0
hashrelay_fleet_hashrate{window="5m"} 0
`
	// No source set: the proxy has not wired one yet, or runs without accounts.
	m := New()
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(noWorkers), "hashrelay_workers", "hashrelay_fleet_hashrate"); err != nil {
		t.Errorf("no source: %v", err)
	}
	m = newWithWorkers(nil, true, 10)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(noWorkers), "hashrelay_workers", "hashrelay_fleet_hashrate"); err != nil {
		t.Errorf("no workers: %v", err)
	}

	m = newWithWorkers([]WorkerSample{
		{Name: "a.1", State: StateOK, Hashrate1m: 1, Hashrate5m: 2, Hashrate1h: 3, Hashrate24h: 4},
		{Name: "a.2", State: StateOK, Hashrate1m: 10, Hashrate5m: 20, Hashrate1h: 30, Hashrate24h: 40},
		{Name: "a.3", State: StateIdle, Hashrate24h: 100},
		{Name: "a.4", State: StateOffline},
		{Name: "a.6", State: StateCurtailed},
		{Name: "a.5", State: "confused"}, // not a state: counted nowhere
	}, false, 0)
	const some = `
# HELP hashrelay_workers Workers known, by state (ok, idle, degraded, not_rolling, rejected, offline, curtailed).
# TYPE hashrelay_workers gauge
hashrelay_workers{state="curtailed"} 1
hashrelay_workers{state="degraded"} 0
hashrelay_workers{state="idle"} 1
hashrelay_workers{state="not_rolling"} 0
hashrelay_workers{state="offline"} 1
hashrelay_workers{state="ok"} 2
hashrelay_workers{state="rejected"} 0
# HELP hashrelay_fleet_hashrate Hashrate of all workers in hashes per second, by averaging window.
# TYPE hashrelay_fleet_hashrate gauge
hashrelay_fleet_hashrate{window="1m"} 11
hashrelay_fleet_hashrate{window="1h"} 33
hashrelay_fleet_hashrate{window="24h"} 144
hashrelay_fleet_hashrate{window="5m"} 22
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(some), "hashrelay_workers", "hashrelay_fleet_hashrate"); err != nil {
		t.Error(err)
	}
	gather(t, m) // lint
}

func TestWorkerSeriesOptIn(t *testing.T) {
	samples := []WorkerSample{
		{Name: "farm.rig1", State: StateOK, Hashrate5m: 1e12, Accepted: 5, Connections: 1},
		{Name: "farm.rig2", State: StateIdle, Hashrate5m: 2e12, Accepted: 7, Connections: 1},
	}
	for name := range gather(t, newWithWorkers(samples, false, 0)) {
		if strings.HasPrefix(name, "hashrelay_worker_") {
			t.Errorf("per-worker off: got family %s; want none", name)
		}
	}
	mfs := gather(t, newWithWorkers(samples, true, 0))
	for _, name := range []string{
		"hashrelay_worker_hashrate", "hashrelay_worker_shares_total", "hashrelay_worker_upstream_shares_total",
		"hashrelay_worker_accepted_work_total", "hashrelay_worker_state", "hashrelay_worker_connections",
		"hashrelay_worker_difficulty", "hashrelay_worker_series_dropped",
	} {
		if mfs[name] == nil {
			t.Errorf("per-worker on: no family %s", name)
		}
	}
	// No share yet, so no timestamp to report.
	if mfs["hashrelay_worker_last_share_timestamp_seconds"] != nil {
		t.Errorf("last share timestamp exported for workers with no share")
	}
}

func TestWorkerSeriesOneWorker(t *testing.T) {
	m := newWithWorkers([]WorkerSample{{
		Name: "farm.rig1", State: StateNotRolling,
		Hashrate1m: 1.5e12, Hashrate5m: 1.25e12, Hashrate1h: 1e12, Hashrate24h: 9e11,
		Accepted: 100, Rejected: 3, Stale: 2, Duplicate: 1,
		Forwarded: 40, UpstreamAccepted: 38, UpstreamRejected: 1, BlockCandidates: 0,
		AcceptedWork: 6400, LastShare: time.Unix(1_790_000_000, 500_000_000), Connections: 2, Difficulty: 64,
	}}, true, 0)
	const want = `
# HELP hashrelay_worker_accepted_work_total Worker difficulty-weighted accepted shares (difficulty-1 units).
# TYPE hashrelay_worker_accepted_work_total counter
hashrelay_worker_accepted_work_total{worker="farm.rig1"} 6400
# HELP hashrelay_worker_connections Worker connections open now.
# TYPE hashrelay_worker_connections gauge
hashrelay_worker_connections{worker="farm.rig1"} 2
# HELP hashrelay_worker_difficulty Difficulty last sent to the worker.
# TYPE hashrelay_worker_difficulty gauge
hashrelay_worker_difficulty{worker="farm.rig1"} 64
# HELP hashrelay_worker_hashrate Worker hashrate in hashes per second, by averaging window.
# TYPE hashrelay_worker_hashrate gauge
hashrelay_worker_hashrate{window="1h",worker="farm.rig1"} 1e+12
hashrelay_worker_hashrate{window="1m",worker="farm.rig1"} 1.5e+12
hashrelay_worker_hashrate{window="24h",worker="farm.rig1"} 9e+11
hashrelay_worker_hashrate{window="5m",worker="farm.rig1"} 1.25e+12
# HELP hashrelay_worker_last_share_timestamp_seconds Unix time of the worker's last accepted share.
# TYPE hashrelay_worker_last_share_timestamp_seconds gauge
hashrelay_worker_last_share_timestamp_seconds{worker="farm.rig1"} 1.7900000005e+09
# HELP hashrelay_worker_series_dropped Workers left out of the per-worker series by -metrics-max-workers.
# TYPE hashrelay_worker_series_dropped gauge
hashrelay_worker_series_dropped 0
# HELP hashrelay_worker_shares_total Worker shares checked by the proxy, by result.
# TYPE hashrelay_worker_shares_total counter
hashrelay_worker_shares_total{result="accepted",worker="farm.rig1"} 100
hashrelay_worker_shares_total{result="duplicate",worker="farm.rig1"} 1
hashrelay_worker_shares_total{result="rejected",worker="farm.rig1"} 3
hashrelay_worker_shares_total{result="stale",worker="farm.rig1"} 2
# HELP hashrelay_worker_state Worker state: 1 on the series of its current state.
# TYPE hashrelay_worker_state gauge
hashrelay_worker_state{state="not_rolling",worker="farm.rig1"} 1
# HELP hashrelay_worker_upstream_shares_total Pool answers to a worker's forwarded shares, by result.
# TYPE hashrelay_worker_upstream_shares_total counter
hashrelay_worker_upstream_shares_total{result="accepted",worker="farm.rig1"} 38
hashrelay_worker_upstream_shares_total{result="rejected",worker="farm.rig1"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"hashrelay_worker_accepted_work_total", "hashrelay_worker_connections", "hashrelay_worker_difficulty",
		"hashrelay_worker_hashrate", "hashrelay_worker_last_share_timestamp_seconds", "hashrelay_worker_series_dropped",
		"hashrelay_worker_shares_total", "hashrelay_worker_state", "hashrelay_worker_upstream_shares_total",
	); err != nil {
		t.Error(err)
	}
	gather(t, m)
}

func TestWorkerSeriesCap(t *testing.T) {
	samples := []WorkerSample{
		{Name: "e", Hashrate5m: 1, State: StateOK},
		{Name: "d", Hashrate5m: 50, State: StateOK},
		{Name: "c", Hashrate5m: 50, State: StateOK}, // ties with d: c wins by name
		{Name: "b", Hashrate5m: 100, State: StateOK},
		{Name: "a", Hashrate5m: 0, State: StateOffline},
	}
	for scrape := 0; scrape < 3; scrape++ { // the same set every scrape
		mfs := gather(t, newWithWorkers(samples, true, 3))
		var got []string
		for _, metric := range mfs["hashrelay_worker_connections"].GetMetric() {
			got = append(got, label(metric, "worker"))
		}
		slices.Sort(got)
		if want := []string{"b", "c", "d"}; !slices.Equal(got, want) {
			t.Errorf("workers with series: got %q; want %q", got, want)
		}
		if got := mfs["hashrelay_worker_series_dropped"].GetMetric()[0].GetGauge().GetValue(); got != 2 {
			t.Errorf("dropped: got %v; want 2", got)
		}
		// The fleet figures still count every worker.
		if got := len(mfs["hashrelay_workers"].GetMetric()); got != len(WorkerStates) {
			t.Errorf("hashrelay_workers: got %d series; want %d", got, len(WorkerStates))
		}
	}
	if got := samples[4].Name; got != "a" {
		t.Errorf("samples modified: got %q", got)
	}

	// Without a cap given, the default applies.
	many := make([]WorkerSample, DefaultMaxWorkers+5)
	for i := range many {
		many[i] = WorkerSample{Name: "rig" + strconv.Itoa(i)}
	}
	// Registry.Gather, not gather: the linter takes seconds over 14,000 series.
	all, err := newWithWorkers(many, true, 0).Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	mfs := make(map[string]*dto.MetricFamily)
	for _, mf := range all {
		mfs[mf.GetName()] = mf
	}
	if got := len(mfs["hashrelay_worker_connections"].GetMetric()); got != DefaultMaxWorkers {
		t.Errorf("default cap: got %d workers; want %d", got, DefaultMaxWorkers)
	}
	if got := mfs["hashrelay_worker_series_dropped"].GetMetric()[0].GetGauge().GetValue(); got != 5 {
		t.Errorf("default cap: dropped %v; want 5", got)
	}
}

func TestWorkerSeriesOddNames(t *testing.T) {
	names := []string{
		`farm.rig-01`,
		`quote"d`,
		`back\slash`,
		"new\nline",
		"ünïcødé.矿机",
		"",
		"bad\xffutf8",   // exported as "bad\uFFFDutf8"
		"bad\ufffdutf8", // collides with the one above once it is cleaned: one series, one dropped
	}
	var samples []WorkerSample
	for i, n := range names {
		samples = append(samples, WorkerSample{Name: n, State: StateOK, Hashrate5m: float64(100 - i), Connections: i})
	}
	m := newWithWorkers(samples, true, 0)
	const want = `
# HELP hashrelay_worker_connections Worker connections open now.
# TYPE hashrelay_worker_connections gauge
hashrelay_worker_connections{worker=""} 5
hashrelay_worker_connections{worker="back\\slash"} 2
hashrelay_worker_connections{worker="bad` + "\ufffd" + `utf8"} 6
hashrelay_worker_connections{worker="farm.rig-01"} 0
hashrelay_worker_connections{worker="new\nline"} 3
hashrelay_worker_connections{worker="quote\"d"} 1
hashrelay_worker_connections{worker="ünïcødé.矿机"} 4
# HELP hashrelay_worker_series_dropped Workers left out of the per-worker series by -metrics-max-workers.
# TYPE hashrelay_worker_series_dropped gauge
hashrelay_worker_series_dropped 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"hashrelay_worker_connections", "hashrelay_worker_series_dropped"); err != nil {
		t.Error(err)
	}
	gather(t, m)
}

func TestNames(t *testing.T) {
	names := New().Names()
	for _, want := range []string{
		"hashrelay_miners_connected", "hashrelay_workers", "hashrelay_fleet_hashrate",
		"hashrelay_worker_hashrate", "hashrelay_worker_series_dropped",
		"hashrelay_upstream_submit_seconds_bucket", "hashrelay_miner_reply_seconds_count",
		"process_start_time_seconds",
	} {
		if _, ok := slices.BinarySearch(names, want); !ok {
			t.Errorf("Names lacks %s", want)
		}
	}
	for _, bad := range []string{"process_start_time_seconds_bucket", "hashrelay_miner_reply_seconds"} {
		if _, ok := slices.BinarySearch(names, bad); ok {
			t.Errorf("Names has %s, which is never exported", bad)
		}
	}
}

// BenchmarkWorkerScrape is a scrape of 10,000 workers with the default cap.
func BenchmarkWorkerScrape(b *testing.B) {
	samples := make([]WorkerSample, 10_000)
	for i := range samples {
		samples[i] = WorkerSample{Name: "farm.rig" + strconv.Itoa(i), State: StateOK, Hashrate5m: float64(i % 977)}
	}
	m := newWithWorkers(samples, true, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Registry.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
