package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Fleet energy and curtailment figures (flexible load) are computed at scrape time,
// like the worker figures (workers.go): the proxy's curtailer already integrates
// power per worker, and a scrape asks it for one snapshot. Every kW and kWh is an
// estimate, a configured power model applied to measured hashrate; HashRelay never
// sees a wall socket. Per-worker power and energy are exported by the worker
// collector, under the same opt-in and cap as the other per-worker series.

// EnergySample is the fleet's energy and curtailment state as a scrape sees it.
// Counters (the *Total fields) are totals since the proxy started.
type EnergySample struct {
	PowerKW          float64 // estimated fleet draw now
	EnergyKWhTotal   float64 // estimated energy drawn
	CurtailedSeconds float64 // worker-seconds spent curtailed, summed over workers
	CurtailedKWh     float64 // estimated energy not drawn because curtailed

	CurtailmentActive bool    // a signal asks for shedding, or workers are being restored
	TargetKW          float64 // combined curtailment target
	ShedKW            float64 // load shed now
	CurtailedWorkers  int     // workers curtailed now

	// HasPrice says a price feed is configured; only then are Price and
	// PriceErrors exported.
	HasPrice    bool
	Price       float64 // last good price from the feed
	PriceErrors uint64  // failed price fetches
}

// SetEnergySource makes each scrape call f for the fleet's energy figures. f is
// called once per scrape, possibly concurrently with itself. Safe to call at any
// time; a nil f exports every energy metric at zero (and no price).
func (m *Metrics) SetEnergySource(f func() EnergySample) {
	m.energy.mu.Lock()
	m.energy.source = f
	m.energy.mu.Unlock()
}

// energyCollector turns an EnergySample into constant metrics at scrape.
type energyCollector struct {
	mu     sync.Mutex // guards source
	source func() EnergySample

	power, energy, curtailedSeconds, curtailedEnergy *prometheus.Desc
	active, target, shed, curtailedWorkers           *prometheus.Desc
	price, priceErrors                               *prometheus.Desc
}

func newEnergyCollector() *energyCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, nil, nil)
	}
	return &energyCollector{
		power:            d("fleet_power_kw", "Estimated fleet power draw in kW (power models applied to measured hashrate)."),
		energy:           d("fleet_energy_kwh_total", "Estimated fleet energy drawn in kWh."),
		curtailedSeconds: d("curtailed_seconds_total", "Worker-seconds spent curtailed, summed over workers."),
		curtailedEnergy:  d("curtailed_energy_kwh_total", "Estimated energy not drawn because workers were curtailed, in kWh."),
		active:           d("curtailment_active", "1 while a curtailment signal asks for shedding or workers are being restored, else 0."),
		target:           d("curtailment_target_kw", "Combined curtailment target in kW; 0 when none."),
		shed:             d("curtailment_shed_kw", "Load shed now in kW: hashing minus idle draw of the curtailed workers."),
		curtailedWorkers: d("curtailed_workers", "Workers curtailed now."),
		price:            d("curtailment_price", "Last good power price from the curtailment price feed (only with a feed)."),
		priceErrors:      d("curtailment_price_errors_total", "Failed fetches of the curtailment price feed (only with a feed)."),
	}
}

// Describe sends every descriptor, the price ones included.
func (c *energyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.power, c.energy, c.curtailedSeconds, c.curtailedEnergy,
		c.active, c.target, c.shed, c.curtailedWorkers, c.price, c.priceErrors,
	} {
		ch <- d
	}
}

// Collect calls the source once and exports the sample.
func (c *energyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	var s EnergySample
	if source != nil {
		s = source()
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	count := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.power, s.PowerKW)
	count(c.energy, s.EnergyKWhTotal)
	count(c.curtailedSeconds, s.CurtailedSeconds)
	count(c.curtailedEnergy, s.CurtailedKWh)
	active := 0.0
	if s.CurtailmentActive {
		active = 1
	}
	gauge(c.active, active)
	gauge(c.target, s.TargetKW)
	gauge(c.shed, s.ShedKW)
	gauge(c.curtailedWorkers, float64(s.CurtailedWorkers))
	if s.HasPrice {
		gauge(c.price, s.Price)
		count(c.priceErrors, float64(s.PriceErrors))
	}
}
