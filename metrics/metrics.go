// Package metrics defines every Prometheus metric HashRelay exports, in one place, and
// serves them. It is built on github.com/prometheus/client_golang, the reference
// implementation: its text exposition is what promtool and Prometheus themselves
// parse, and its histograms and registries need no code of ours. Labels stay
// low-cardinality (reasons, verdicts, pools); per-worker detail is in the status API,
// and in opt-in, capped per-worker series computed at scrape time (workers.go).
package metrics

import (
	"net/http"
	"regexp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "hashrelay"

// Metrics holds HashRelay's metrics in their own registry, so several servers in one
// process (tests) never collide.
type Metrics struct {
	Registry *prometheus.Registry

	// Miners.
	MinersConnected   prometheus.Gauge       // miners connected now
	Connections       prometheus.Counter     // miner connections accepted
	ConnectionsClosed *prometheus.CounterVec // miner connections closed, by reason
	MalformedLines    prometheus.Counter     // miner lines that did not decode
	AcceptErrors      prometheus.Counter     // failed accepts on the miner port (EMFILE and the like)

	// Shares.
	Shares          *prometheus.CounterVec // shares checked, by verdict
	SharesForwarded prometheus.Counter     // shares sent upstream
	UpstreamShares  *prometheus.CounterVec // upstream answers, by result (accepted, rejected, error)
	UpstreamRejects *prometheus.CounterVec // upstream rejects, by normalized reason
	SharesLost      *prometheus.CounterVec // accepted shares that never reached a pool, by reason
	SharesBuffered  prometheus.Counter     // shares held during an upstream outage
	BlockCandidates prometheus.Counter     // shares meeting the network target
	FakeJobs        prometheus.Counter     // unpaid jobs sent while no pool was reachable
	FakeShares      prometheus.Counter     // accepted shares on those jobs (never forwarded)
	AcceptedWork    prometheus.Counter     // difficulty-weighted accepted shares

	// Upstreams.
	UpstreamUp          *prometheus.GaugeVec   // slots connected to each pool now, by pool
	UpstreamDisconnects *prometheus.CounterVec // upstream connections closed, by reason
	UpstreamSwitches    prometheus.Counter     // slots moved to another pool (failover or fail-back)
	ExtranonceChanges   prometheus.Counter     // mining.set_extranonce from pools
	UpstreamDifficulty  *prometheus.GaugeVec   // last mining.set_difficulty from each pool, by pool

	// Latency.
	JobFanout prometheus.Histogram // time to hand one job to every miner of a slot
	// MinerReply is the time from reading a miner's request off its socket to writing
	// the reply: the proxy's own share of the latency a miner sees.
	MinerReply prometheus.Histogram
	// UpstreamSubmit is a forwarded share's round trip to its pool, by pool: from
	// writing mining.submit to reading the answer.
	UpstreamSubmit *prometheus.HistogramVec

	// workers exports the worker and fleet figures at scrape (SetWorkerSource).
	workers *workerCollector
	// energy exports the fleet energy and curtailment figures at scrape
	// (SetEnergySource).
	energy *energyCollector
	// collectors is everything registered, for Names.
	collectors []prometheus.Collector
}

// New creates the metrics and registers them, with the Go runtime and process
// collectors, in a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry:          prometheus.NewRegistry(),
		MinersConnected:   gauge("miners_connected", "Miners connected now."),
		Connections:       counter("connections_total", "Miner connections accepted."),
		ConnectionsClosed: counterVec("connections_closed_total", "Miner connections closed, by reason.", "reason"),
		MalformedLines:    counter("malformed_lines_total", "Miner lines that did not decode as Stratum."),
		AcceptErrors:      counter("accept_errors_total", "Failed accepts on the miner port (out of file descriptors and the like); the listener backs off and retries."),

		Shares:          counterVec("shares_total", "Shares checked, by verdict.", "verdict"),
		SharesForwarded: counter("shares_forwarded_total", "Shares sent upstream (those meeting the pool's target)."),
		UpstreamShares:  counterVec("upstream_shares_total", "Upstream answers to forwarded shares, by result.", "result"),
		UpstreamRejects: counterVec("upstream_rejects_total", "Shares rejected upstream, by normalized reason.", "reason"),
		SharesLost:      counterVec("shares_lost_total", "Accepted upstream-worthy shares that never reached a pool, by reason.", "reason"),
		SharesBuffered:  counter("shares_buffered_total", "Shares held while an upstream reconnected."),
		BlockCandidates: counter("block_candidates_total", "Shares meeting the network target."),
		FakeJobs:        counter("fake_jobs_total", "Unpaid jobs sent to miners while no pool was reachable (-fake-jobs)."),
		FakeShares:      counter("fake_shares_total", "Shares accepted on unpaid jobs; never forwarded."),
		AcceptedWork:    counter("accepted_work_total", "Difficulty-weighted accepted shares (difficulty-1 units)."),

		UpstreamUp:          gaugeVec("upstream_up", "Slots connected to each pool.", "pool"),
		UpstreamDisconnects: counterVec("upstream_disconnects_total", "Upstream connections closed, by reason.", "reason"),
		UpstreamSwitches:    counter("upstream_switches_total", "Slots moved to another pool."),
		ExtranonceChanges:   counter("extranonce_changes_total", "mining.set_extranonce received from pools."),
		UpstreamDifficulty:  gaugeVec("upstream_difficulty", "Last difficulty set by each pool.", "pool"),

		JobFanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_fanout_seconds",
			Help:    "Time to hand one job to every miner of a slot.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		MinerReply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "miner_reply_seconds",
			Help:    "Time from reading a miner's request to writing the reply.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 1.5, 30), // 10 us to 1.3 s
		}),
		UpstreamSubmit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "upstream_submit_seconds",
			Help:    "Round trip of a forwarded share to its pool, by pool.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1 ms to 8 s
		}, []string{"pool"}),
		workers: newWorkerCollector(),
		energy:  newEnergyCollector(),
	}
	m.collectors = []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.MinersConnected, m.Connections, m.ConnectionsClosed, m.MalformedLines, m.AcceptErrors,
		m.Shares, m.SharesForwarded, m.UpstreamShares, m.UpstreamRejects, m.SharesLost,
		m.SharesBuffered, m.BlockCandidates, m.FakeJobs, m.FakeShares, m.AcceptedWork,
		m.UpstreamUp, m.UpstreamDisconnects, m.UpstreamSwitches, m.ExtranonceChanges,
		m.UpstreamDifficulty, m.JobFanout, m.MinerReply, m.UpstreamSubmit, m.workers, m.energy,
	}
	m.Registry.MustRegister(m.collectors...)
	return m
}

// descName picks the metric name out of a Desc's String, the only place
// client_golang shows it.
var descName = regexp.MustCompile(`^Desc\{fqName: "([a-zA-Z_:][a-zA-Z0-9_:]*)"`)

// Names lists, sorted, every series name m can export, per-worker and not yet
// observed ones included (a histogram as its _bucket, _sum and _count), so that
// checks of the deploy/ alert rules and dashboard fail when a metric is renamed.
func (m *Metrics) Names() []string {
	var names []string
	for _, c := range m.collectors {
		ch := make(chan *prometheus.Desc)
		go func() {
			c.Describe(ch)
			close(ch)
		}()
		_, hist := c.(prometheus.Histogram)
		if _, ok := c.(*prometheus.HistogramVec); ok {
			hist = true
		}
		for d := range ch {
			match := descName.FindStringSubmatch(d.String())
			if match == nil {
				continue
			}
			if n := match[1]; hist {
				names = append(names, n+"_bucket", n+"_sum", n+"_count")
			} else {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
}
