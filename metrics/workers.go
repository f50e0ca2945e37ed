package metrics

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Worker and fleet figures are computed at scrape time, not on the share path. The
// proxy already keeps per-worker accounts for the status API; a scrape asks it for a
// snapshot (one call per scrape, every 15 s or so) and turns it into constant
// metrics. Nothing is added to the work done per share, and no per-worker series
// live in the registry between scrapes, so a worker that goes away leaves no series
// behind.
//
// Per-worker series are opt-in (-metrics-per-worker) and capped
// (-metrics-max-workers): every worker name is a label value, and Prometheus keeps
// each series in memory (a few KiB each, for hours after it was last seen) and in
// its index. A fleet of ten thousand rigs, or a miner that authorizes under a new
// name on every connection, would otherwise grow the Prometheus server without
// bound. The cap keeps the busiest workers (by 5-minute hashrate) and counts the
// rest in hashrelay_worker_series_dropped; the status API has every worker.

// Worker states, as the proxy computes them (see the status API). Every one is
// exported in hashrelay_workers, at zero when no worker is in it.
const (
	StateOK         = "ok"
	StateIdle       = "idle"
	StateDegraded   = "degraded"
	StateNotRolling = "not_rolling"
	StateRejected   = "rejected"
	StateOffline    = "offline"
	// StateCurtailed is a worker the proxy keeps off on purpose (flexible load): it
	// has no connection, like an offline worker, but is not a fault.
	StateCurtailed = "curtailed"
)

// WorkerStates lists the worker states in order of precedence, lowest first.
var WorkerStates = [...]string{StateOK, StateDegraded, StateNotRolling, StateRejected, StateIdle, StateOffline, StateCurtailed}

// DefaultMaxWorkers is the per-worker series cap used when none is given.
const DefaultMaxWorkers = 1000

// hashrateWindows are the window label's values, in WorkerSample's field order.
var hashrateWindows = [...]string{"1m", "5m", "1h", "24h"}

// WorkerSample is one worker's figures as a scrape sees them. The proxy fills one
// per known worker, connected or not; counters are totals since the worker was
// first seen (kept across restarts by the state store).
type WorkerSample struct {
	Name  string // authorized worker name; invalid UTF-8 is replaced with U+FFFD
	State string // one of the State constants; others are left out of hashrelay_workers

	// Hashrates in hashes per second over 1 minute, 5 minutes, 1 hour, 24 hours.
	Hashrate1m, Hashrate5m, Hashrate1h, Hashrate24h float64

	Accepted, Rejected, Stale, Duplicate uint64 // shares checked by the proxy (Rejected excludes Stale and Duplicate)
	Forwarded                            uint64 // shares sent upstream
	UpstreamAccepted, UpstreamRejected   uint64 // pool answers to those
	BlockCandidates                      uint64 // shares meeting the network target
	AcceptedWork                         float64

	LastShare   time.Time // last accepted share; zero if none
	Connections int       // connections open now
	Difficulty  float64   // difficulty last sent to the worker

	// HasEnergy says the worker has an energy account (PowerKW, EnergyKWh); only
	// then are its power series exported.
	HasEnergy bool
	PowerKW   float64 // estimated draw now
	EnergyKWh float64 // estimated energy drawn since the proxy started
}

func (w *WorkerSample) hashrates() [len(hashrateWindows)]float64 {
	return [...]float64{w.Hashrate1m, w.Hashrate5m, w.Hashrate1h, w.Hashrate24h}
}

// SetWorkerSource makes each scrape call f for the workers' figures. With perWorker
// false only the fleet metrics (hashrelay_workers, hashrelay_fleet_hashrate) are
// exported; with it true, hashrelay_worker_* series too, for at most maxWorkers
// workers (DefaultMaxWorkers when maxWorkers <= 0). f is called once per scrape,
// from the scraping goroutine and possibly concurrently with itself; the collector
// reads the slice it returns during that scrape only. Safe to call at any time; a
// nil f exports every fleet metric at zero.
func (m *Metrics) SetWorkerSource(f func() []WorkerSample, perWorker bool, maxWorkers int) {
	if maxWorkers <= 0 {
		maxWorkers = DefaultMaxWorkers
	}
	m.workers.mu.Lock()
	m.workers.source, m.workers.perWorker, m.workers.max = f, perWorker, maxWorkers
	m.workers.mu.Unlock()
}

// workerCollector turns a snapshot of WorkerSamples into constant metrics at scrape.
type workerCollector struct {
	mu        sync.Mutex // guards the three fields below
	source    func() []WorkerSample
	perWorker bool
	max       int

	workers       *prometheus.Desc // {state}
	fleetHashrate *prometheus.Desc // {window}
	dropped       *prometheus.Desc

	hashrate    *prometheus.Desc // {worker, window}
	shares      *prometheus.Desc // {worker, result}
	upstream    *prometheus.Desc // {worker, result}
	work        *prometheus.Desc // {worker}
	state       *prometheus.Desc // {worker, state}
	lastShare   *prometheus.Desc // {worker}
	connections *prometheus.Desc // {worker}
	difficulty  *prometheus.Desc // {worker}
	power       *prometheus.Desc // {worker}
	energy      *prometheus.Desc // {worker}
}

func newWorkerCollector() *workerCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	return &workerCollector{
		max:           DefaultMaxWorkers,
		workers:       d("workers", "Workers known, by state (ok, idle, degraded, not_rolling, rejected, offline, curtailed).", "state"),
		fleetHashrate: d("fleet_hashrate", "Hashrate of all workers in hashes per second, by averaging window.", "window"),
		dropped:       d("worker_series_dropped", "Workers left out of the per-worker series by -metrics-max-workers."),

		hashrate:    d("worker_hashrate", "Worker hashrate in hashes per second, by averaging window.", "worker", "window"),
		shares:      d("worker_shares_total", "Worker shares checked by the proxy, by result.", "worker", "result"),
		upstream:    d("worker_upstream_shares_total", "Pool answers to a worker's forwarded shares, by result.", "worker", "result"),
		work:        d("worker_accepted_work_total", "Worker difficulty-weighted accepted shares (difficulty-1 units).", "worker"),
		state:       d("worker_state", "Worker state: 1 on the series of its current state.", "worker", "state"),
		lastShare:   d("worker_last_share_timestamp_seconds", "Unix time of the worker's last accepted share.", "worker"),
		connections: d("worker_connections", "Worker connections open now.", "worker"),
		difficulty:  d("worker_difficulty", "Difficulty last sent to the worker.", "worker"),
		power:       d("worker_power_kw", "Worker estimated power draw in kW.", "worker"),
		energy:      d("worker_energy_kwh_total", "Worker estimated energy drawn in kWh.", "worker"),
	}
}

// Describe sends every descriptor, per-worker ones included, so the registry
// accepts whatever Collect sends under any setting.
func (c *workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.workers, c.fleetHashrate, c.dropped,
		c.hashrate, c.shares, c.upstream, c.work, c.state, c.lastShare, c.connections, c.difficulty,
		c.power, c.energy,
	} {
		ch <- d
	}
}

// Collect calls the source once and exports the snapshot.
func (c *workerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	source, perWorker, max := c.source, c.perWorker, c.max
	c.mu.Unlock()
	var samples []WorkerSample
	if source != nil {
		samples = source()
	}

	var byState [len(WorkerStates)]int
	var fleet [len(hashrateWindows)]float64
	for i := range samples {
		if s := stateIndex(samples[i].State); s >= 0 {
			byState[s]++
		}
		for j, h := range samples[i].hashrates() {
			fleet[j] += h
		}
	}
	for i, st := range WorkerStates {
		ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(byState[i]), st)
	}
	for i, w := range hashrateWindows {
		ch <- prometheus.MustNewConstMetric(c.fleetHashrate, prometheus.GaugeValue, fleet[i], w)
	}
	if !perWorker {
		return
	}

	top, dropped := topWorkers(samples, max)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.GaugeValue, float64(dropped))
	for _, w := range top {
		c.collectWorker(ch, w)
	}
}

// collectWorker exports one worker's series; w.Name is valid UTF-8.
func (c *workerCollector) collectWorker(ch chan<- prometheus.Metric, w *WorkerSample) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	count := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for i, h := range w.hashrates() {
		gauge(c.hashrate, h, w.Name, hashrateWindows[i])
	}
	count(c.shares, float64(w.Accepted), w.Name, "accepted")
	count(c.shares, float64(w.Rejected), w.Name, "rejected")
	count(c.shares, float64(w.Stale), w.Name, "stale")
	count(c.shares, float64(w.Duplicate), w.Name, "duplicate")
	count(c.upstream, float64(w.UpstreamAccepted), w.Name, "accepted")
	count(c.upstream, float64(w.UpstreamRejected), w.Name, "rejected")
	count(c.work, w.AcceptedWork, w.Name)
	if stateIndex(w.State) >= 0 {
		gauge(c.state, 1, w.Name, w.State)
	}
	if !w.LastShare.IsZero() {
		gauge(c.lastShare, float64(w.LastShare.UnixNano())/1e9, w.Name)
	}
	gauge(c.connections, float64(w.Connections), w.Name)
	gauge(c.difficulty, w.Difficulty, w.Name)
	if w.HasEnergy {
		gauge(c.power, w.PowerKW, w.Name)
		count(c.energy, w.EnergyKWh, w.Name)
	}
}

// topWorkers returns the at most max workers with the highest 5-minute hashrate
// (ties by name, so the set is stable between scrapes), names made valid UTF-8 and
// unique, and how many workers were left out. samples is not modified.
func topWorkers(samples []WorkerSample, max int) (top []*WorkerSample, dropped int) {
	all := make([]*WorkerSample, 0, len(samples))
	seen := make(map[string]bool, len(samples))
	for i := range samples {
		w := &samples[i]
		if name := strings.ToValidUTF8(w.Name, "\uFFFD"); name != w.Name {
			cp := *w
			cp.Name = name
			w = &cp
		}
		if seen[w.Name] { // two series with the same labels would fail the whole scrape
			dropped++
			continue
		}
		seen[w.Name] = true
		all = append(all, w)
	}
	slices.SortFunc(all, func(a, b *WorkerSample) int {
		if c := cmp.Compare(b.Hashrate5m, a.Hashrate5m); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(all) > max {
		dropped += len(all) - max
		all = all[:max]
	}
	return all, dropped
}

func stateIndex(s string) int {
	for i, st := range WorkerStates {
		if s == st {
			return i
		}
	}
	return -1
}
