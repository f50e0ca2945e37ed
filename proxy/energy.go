package proxy

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Power-model defaults. They are estimates, not measurements: HashRelay sees hashrate,
// never a wall socket, so every kW and kWh it reports is a configured model applied to a
// measured hashrate.
const (
	// DefaultJoulesPerTH is the efficiency assumed for a worker no PowerModel matches.
	// 25 J/TH sits between an S19 (~30) and an S21 (~17.5); operators should set
	// CurtailConfig.DefaultJoulesPerTH, or better a model per machine type.
	DefaultJoulesPerTH = 25.0
	// DefaultIdleFraction is the draw of a curtailed miner, as a fraction of its hashing
	// draw, when its model gives no IdleWatts: control board, PSU losses and fans
	// spinning down. 10 % is a deliberately pessimistic figure (a miner with no pool
	// typically idles at 3-10 %), so curtailed-energy estimates err low.
	DefaultIdleFraction = 0.10
	// defaultPowerModelName names the model applied to unmatched workers.
	defaultPowerModelName = "default"
	// maxEnergyGap bounds one integration interval: a worker not observed for longer
	// (the server stopped ticking, the worker vanished from the snapshot) has that gap
	// left out of its energy rather than filled with a guess.
	maxEnergyGap = 5 * time.Minute
	// maxModelWatts bounds a configured draw, to catch a kW/W mix-up at parse.
	maxModelWatts = 1e6
)

// PowerModel estimates the draw of one kind of miner. A worker matches a model when
// every pattern the model sets matches: Agent against the user agent from
// mining.subscribe (case-insensitive), Worker against the worker name (case-sensitive).
// Patterns are globs where '*' matches any run of characters. The first matching model
// in configuration order wins.
//
// Flag syntax (repeatable flag; the same string works in env vars and TOML arrays):
//
//	name=s19,agent=bmminer/2.*,watts=3250,idle=15,priority=1
//	name=s21,worker=farm1.s21-*,jth=17.5
//
// Keys: name (required), agent, worker, watts or jth (exactly one), idle, priority.
type PowerModel struct {
	Name   string
	Agent  string // user-agent glob, case-insensitive; "" matches any
	Worker string // worker-name glob; "" matches any
	// Watts is a fixed draw while hashing, whatever the measured hashrate.
	Watts float64
	// JoulesPerTH makes the draw proportional to measured hashrate: W = J/TH × TH/s.
	// Used when Watts is 0.
	JoulesPerTH float64
	// IdleWatts is the draw while curtailed (no work). 0 means DefaultIdleFraction of
	// the hashing draw.
	IdleWatts float64
	// Priority orders equally efficient workers for curtailment: the lower number is
	// curtailed first (see chooseCurtail).
	Priority int
}

// ParsePowerModel parses the flag syntax documented on PowerModel.
func ParsePowerModel(s string) (PowerModel, error) {
	const what = "power model"
	kvs, err := splitFlagKV(what, s)
	if err != nil {
		return PowerModel{}, err
	}
	var m PowerModel
	for _, kv := range kvs {
		switch kv.key {
		case "name":
			m.Name = kv.val
		case "agent":
			m.Agent = strings.ToLower(kv.val)
		case "worker":
			m.Worker = kv.val
		case "watts":
			m.Watts, err = flagFloat(what, kv, 0)
		case "jth":
			m.JoulesPerTH, err = flagFloat(what, kv, 0)
		case "idle":
			m.IdleWatts, err = flagFloat(what, kv, 0)
		case "priority":
			var f float64
			f, err = flagFloat(what, kv, -1e6)
			if err == nil && (f != math.Trunc(f) || f > 1e6) {
				err = fmt.Errorf("%s: key %q: %q is not an integer in -1000000..1000000", what, kv.key, kv.val)
			}
			m.Priority = int(f)
		default:
			err = fmt.Errorf("%s: unknown key %q (want name, agent, worker, watts, jth, idle, priority)", what, kv.key)
		}
		if err != nil {
			return PowerModel{}, err
		}
	}
	return m, m.validate()
}

func (m *PowerModel) validate() error {
	switch {
	case m.Name == "":
		return fmt.Errorf("power model: key \"name\" is required")
	case (m.Watts > 0) == (m.JoulesPerTH > 0):
		return fmt.Errorf("power model %s: give exactly one of \"watts\" or \"jth\", above 0", m.Name)
	case m.Watts > maxModelWatts || m.IdleWatts > maxModelWatts:
		return fmt.Errorf("power model %s: \"watts\"/\"idle\" above %v W (kW given as W?)", m.Name, maxModelWatts)
	case m.JoulesPerTH > 1000:
		return fmt.Errorf("power model %s: key \"jth\": %v J/TH is implausible (max 1000)", m.Name, m.JoulesPerTH)
	case m.Watts > 0 && m.IdleWatts >= m.Watts:
		return fmt.Errorf("power model %s: key \"idle\": %v W is not below watts %v W", m.Name, m.IdleWatts, m.Watts)
	}
	return nil
}

// matches reports whether the model applies to a worker; agentLower is the user agent
// already lower-cased.
func (m *PowerModel) matches(agentLower, worker string) bool {
	return (m.Agent == "" || globMatch(m.Agent, agentLower)) &&
		(m.Worker == "" || globMatch(m.Worker, worker))
}

// matchPowerModel returns the first model matching the worker, or a J/TH model named
// "default" with defaultJTH (DefaultJoulesPerTH when 0) and priority 0.
func matchPowerModel(models []PowerModel, defaultJTH float64, agent, worker string) *PowerModel {
	agent = strings.ToLower(agent)
	for i := range models {
		if models[i].matches(agent, worker) {
			return &models[i]
		}
	}
	if defaultJTH <= 0 {
		defaultJTH = DefaultJoulesPerTH
	}
	return &PowerModel{Name: defaultPowerModelName, JoulesPerTH: defaultJTH}
}

// hashingWatts is the estimated draw while hashing at hashrate H/s.
func (m *PowerModel) hashingWatts(hashrate float64) float64 {
	if m.Watts > 0 {
		return m.Watts
	}
	if hashrate <= 0 || math.IsInf(hashrate, 0) || hashrate != hashrate {
		return 0
	}
	return m.JoulesPerTH * hashrate / 1e12
}

// idleWatts is the draw while curtailed, given the hashing draw it replaces.
func (m *PowerModel) idleWatts(hashingW float64) float64 {
	if m.IdleWatts > 0 {
		return min(m.IdleWatts, hashingW)
	}
	return DefaultIdleFraction * hashingW
}

// power is the estimated draw in watts: the hashing draw at hashrate H/s, or the idle
// draw when the worker is not hashing (curtailed).
func (m *PowerModel) power(hashrate float64, hashing bool) float64 {
	w := m.hashingWatts(hashrate)
	if !hashing {
		return m.idleWatts(w)
	}
	return w
}

// joulesPerTH is the efficiency in J/TH (= W per TH/s) of a draw of watts at hashrate
// H/s. With no measured hashrate efficiency is undefined; it returns 0, read as
// "unknown", so JSON never carries NaN or Inf.
func joulesPerTH(watts, hashrate float64) float64 {
	if hashrate <= 0 || watts <= 0 {
		return 0
	}
	j := watts / (hashrate / 1e12)
	if math.IsInf(j, 0) || j != j {
		return 0
	}
	return j
}

// energyAccount is one worker's (or the fleet's) integrated energy.
//
// Integration is left-rectangle: the power given at one observation is taken to hold
// until the next. Curtailment changes power in a step at the moment it happens, and the
// server observes right after acting, so the left rectangle is exact for the
// curtailment step, where a trapezoid would smear it over the tick.
type energyAccount struct {
	last          time.Time // zero until the first observation
	watts         float64   // draw since last
	shedWatts     float64   // hashing − idle draw avoided since last, when curtailed
	curtailed     bool
	hashrate      float64
	joules        float64 // total energy drawn
	shedJoules    float64 // energy not drawn because curtailed
	curtailedTime time.Duration
}

// observe integrates the interval since the previous observation at the power then
// observed, then records the new state. hashingW is the draw the worker would have
// while hashing and idleW its draw without work; curtailed says which applies. An
// interval longer than maxEnergyGap, or running backwards, is skipped.
func (a *energyAccount) observe(now time.Time, hashingW, idleW, hashrate float64, curtailed bool) {
	if !a.last.IsZero() {
		if dt := now.Sub(a.last); dt > 0 && dt <= maxEnergyGap {
			a.joules += a.watts * dt.Seconds()
			if a.curtailed {
				a.shedJoules += a.shedWatts * dt.Seconds()
				a.curtailedTime += dt
			}
		}
	}
	if now.After(a.last) || a.last.IsZero() {
		a.last = now
	}
	a.curtailed, a.hashrate = curtailed, hashrate
	if curtailed {
		a.watts, a.shedWatts = idleW, max(hashingW-idleW, 0)
	} else {
		a.watts, a.shedWatts = hashingW, 0
	}
}

// EnergyStatus is the energy view of one worker or of the fleet, in the units the
// status API reports. J/TH is 0 when hashrate is unknown (never NaN).
type EnergyStatus struct {
	Name             string  `json:"name,omitempty"`
	Model            string  `json:"model,omitempty"`
	Curtailed        bool    `json:"curtailed"`
	PowerKW          float64 `json:"power_kw"`
	EnergyKWh        float64 `json:"energy_kwh"`
	JoulesPerTH      float64 `json:"joules_per_th"`
	CurtailedSeconds float64 `json:"curtailed_seconds"`
	CurtailedKWh     float64 `json:"curtailed_kwh"`
}

func (a *energyAccount) status(name, model string) EnergyStatus {
	return EnergyStatus{
		Name:             name,
		Model:            model,
		Curtailed:        a.curtailed,
		PowerKW:          a.watts / 1e3,
		EnergyKWh:        a.joules / 3.6e6,
		JoulesPerTH:      joulesPerTH(a.watts, a.hashrate),
		CurtailedSeconds: a.curtailedTime.Seconds(),
		CurtailedKWh:     a.shedJoules / 3.6e6,
	}
}

// energyMeter integrates power per worker and for the fleet. It is not safe for
// concurrent use: its owner (the curtailer) holds a lock around it.
type energyMeter struct {
	workers map[string]*energyMeterWorker
	// Fleet totals, kept as running sums of the per-worker integrals.
	joules, shedJoules float64
	curtailedTime      time.Duration // worker-time curtailed, summed over workers
}

type energyMeterWorker struct {
	energyAccount
	model string
}

func newEnergyMeter() *energyMeter {
	return &energyMeter{workers: make(map[string]*energyMeterWorker)}
}

// observe records one worker's state at now; see energyAccount.observe. New workers
// beyond maxWorkers are not metered, so the map stays bounded.
func (m *energyMeter) observe(now time.Time, name, model string, hashingW, idleW, hashrate float64, curtailed bool) {
	w := m.workers[name]
	if w == nil {
		if len(m.workers) >= maxWorkers {
			return
		}
		w = &energyMeterWorker{}
		m.workers[name] = w
	}
	j, s, c := w.joules, w.shedJoules, w.curtailedTime
	w.observe(now, hashingW, idleW, hashrate, curtailed)
	w.model = model
	m.joules += w.joules - j
	m.shedJoules += w.shedJoules - s
	m.curtailedTime += w.curtailedTime - c
}

// worker returns one worker's energy, if it has been observed.
func (m *energyMeter) worker(name string) (EnergyStatus, bool) {
	w := m.workers[name]
	if w == nil {
		return EnergyStatus{}, false
	}
	return w.status(name, w.model), true
}

// fleet sums the workers: power and hashrate as of their last observation (so J/TH
// is the fleet's draw over the fleet's hashrate), energy as integrated.
func (m *energyMeter) fleet() EnergyStatus {
	var watts, hashrate float64
	for _, w := range m.workers {
		watts += w.watts
		hashrate += w.hashrate
	}
	return EnergyStatus{
		PowerKW:          watts / 1e3,
		EnergyKWh:        m.joules / 3.6e6,
		JoulesPerTH:      joulesPerTH(watts, hashrate),
		CurtailedSeconds: m.curtailedTime.Seconds(),
		CurtailedKWh:     m.shedJoules / 3.6e6,
	}
}
