package proxy

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// fleetCounts are fleet-wide share counts.
type fleetCounts struct {
	Accepted         uint64  `json:"accepted"`
	Rejected         uint64  `json:"rejected"`
	AcceptedWork     float64 `json:"accepted_work"`
	Forwarded        uint64  `json:"forwarded"`
	UpstreamAccepted uint64  `json:"upstream_accepted"`
	UpstreamRejected uint64  `json:"upstream_rejected"`
	SharesLost       uint64  `json:"shares_lost"`
	BlockCandidates  uint64  `json:"block_candidates"`
}

// addWorkerLocked adds w's counts. w.mu must be held.
func (f *fleetCounts) addWorkerLocked(w *worker) {
	f.Accepted += w.accepted
	for _, n := range w.rejected {
		f.Rejected += n
	}
	f.AcceptedWork += w.work
	f.Forwarded += w.forwarded
	f.UpstreamAccepted += w.upAccepted
	for _, n := range w.upRejected {
		f.UpstreamRejected += n
	}
	for _, n := range w.lost {
		f.SharesLost += n
	}
	f.BlockCandidates += w.blocks
}

func (f *fleetCounts) add(g fleetCounts) {
	f.Accepted += g.Accepted
	f.Rejected += g.Rejected
	f.AcceptedWork += g.AcceptedWork
	f.Forwarded += g.Forwarded
	f.UpstreamAccepted += g.UpstreamAccepted
	f.UpstreamRejected += g.UpstreamRejected
	f.SharesLost += g.SharesLost
	f.BlockCandidates += g.BlockCandidates
}

// fleet is the fleet's totals and states at one instant.
type fleet struct {
	fleetCounts
	rates  [numRates]float64
	states map[string]int
	total  int
}

// fleet sums every worker (their batches folded) and the forgotten ones.
func (a *accounts) fleet() fleet {
	ws := a.snapshot()
	now := a.now()
	f := fleet{states: make(map[string]int, len(workerStates))}
	for _, st := range workerStates {
		f.states[st] = 0
	}
	for _, w := range ws {
		s := w.status(now, &a.policy)
		f.states[s.State]++
		f.total++
		f.rates[rate1m] += s.Hashrate1m
		f.rates[rate5m] += s.Hashrate5m
		f.rates[rate1h] += s.Hashrate1h
		f.rates[rate24h] += s.Hashrate24h
		w.mu.Lock()
		f.addWorkerLocked(w)
		w.mu.Unlock()
	}
	a.mu.Lock()
	f.add(a.gone)
	a.mu.Unlock()
	return f
}

// historyPoints is how many points the fleet hashrate history keeps: one a minute
// for 24 hours.
const historyPoints = 1440

// historyRing is the fleet's 1-minute hashrate, and its estimated power, one point
// per unix minute, in a ring indexed by minute. histMu guards it.
type historyRing struct {
	pts [historyPoints]historyPoint
	// energy reports the fleet's power and whether curtailment is active, recorded
	// with each point; nil: no power is recorded. Set by setEnergySource.
	energy func() historyEnergy
}

type historyPoint struct {
	minute int64 // unix minute; 0: empty
	rate   float64
	energy historyEnergy
}

// historyEnergy is the fleet's power at one history point.
type historyEnergy struct {
	ok          bool    // recorded (the point has power)
	powerKW     float64 // estimated fleet draw
	curtailment bool    // curtailment active
}

// set records rate as the point of now's minute (replacing an earlier one), with no
// power.
func (h *historyRing) set(now time.Time, rate float64) { h.setPoint(now, rate, historyEnergy{}) }

// setPoint records rate and e as the point of now's minute, replacing an earlier
// one but for its curtailment mark: a minute with curtailment active at any of its
// samples stays marked, so a short curtailment still shows on the chart.
func (h *historyRing) setPoint(now time.Time, rate float64, e historyEnergy) {
	m := now.Unix() / 60
	p := &h.pts[m%historyPoints]
	if p.minute == m && p.energy.curtailment && e.ok {
		e.curtailment = true
	}
	*p = historyPoint{minute: m, rate: rate, energy: e}
}

// each calls f for the points of the last 24 hours up to now, oldest first.
func (h *historyRing) each(now time.Time, f func(unixSec float64, p *historyPoint)) {
	cur := now.Unix() / 60
	for m := cur - historyPoints + 1; m <= cur; m++ {
		if p := &h.pts[((m%historyPoints)+historyPoints)%historyPoints]; p.minute == m && m > 0 {
			f(float64(m*60), p)
		}
	}
}

// points returns the points of the last 24 hours up to now, oldest first, as
// [unix seconds, hashes per second].
func (h *historyRing) points(now time.Time) [][2]float64 {
	out := make([][2]float64, 0, historyPoints)
	h.each(now, func(t float64, p *historyPoint) { out = append(out, [2]float64{t, p.rate}) })
	return out
}

// powerPoints returns the points with power of the last 24 hours up to now, oldest
// first, as [unix seconds, kW, 1 if curtailment was active else 0].
func (h *historyRing) powerPoints(now time.Time) [][3]float64 {
	out := [][3]float64{}
	h.each(now, func(t float64, p *historyPoint) {
		if p.energy.ok {
			c := 0.0
			if p.energy.curtailment {
				c = 1
			}
			out = append(out, [3]float64{t, math.Round(p.energy.powerKW*1e3) / 1e3, c}) // to the watt
		}
	})
	return out
}

// setEnergySource makes every history point record f's fleet power (see
// historyRing.energy). f is called without histMu held.
func (a *accounts) setEnergySource(f func() historyEnergy) {
	a.histMu.Lock()
	a.history.energy = f
	a.histMu.Unlock()
}

// sample records the fleet's 1-minute hashrate (and power, with an energy source)
// as the current minute's point and returns the totals it computed.
func (a *accounts) sample() fleet {
	f := a.fleet()
	now := a.now()
	a.histMu.Lock()
	energy := a.history.energy
	a.histMu.Unlock()
	var e historyEnergy
	if energy != nil {
		e = energy()
	}
	a.histMu.Lock()
	a.history.setPoint(now, f.rates[rate1m], e)
	a.histMu.Unlock()
	return f
}

// historyPoints returns the fleet hashrate history (see historyRing.points).
func (a *accounts) historyPoints() [][2]float64 {
	now := a.now()
	a.histMu.Lock()
	defer a.histMu.Unlock()
	return a.history.points(now)
}

// powerHistory returns the fleet power history (see historyRing.powerPoints).
func (a *accounts) powerHistory() [][3]float64 {
	now := a.now()
	a.histMu.Lock()
	defer a.histMu.Unlock()
	return a.history.powerPoints(now)
}

// Persistence. Each worker's durable counters are one JSON document keyed by its
// name; the fleet blob holds the forgotten workers' totals and the history.

// durableWorker is what a worker keeps across a restart.
type durableWorker struct {
	Accepted         uint64            `json:"accepted"`
	Rejected         map[string]uint64 `json:"rejected,omitempty"` // by verdict name
	AcceptedWork     float64           `json:"accepted_work"`
	BlockCandidates  uint64            `json:"block_candidates"`
	Forwarded        uint64            `json:"forwarded"`
	UpstreamAccepted uint64            `json:"upstream_accepted"`
	UpstreamRejected map[string]uint64 `json:"upstream_rejected,omitempty"`
	SharesLost       map[string]uint64 `json:"shares_lost,omitempty"`
	LastShare        time.Time         `json:"last_share"`
	Difficulty       float64           `json:"difficulty"`
	RemoteAddr       string            `json:"remote_addr,omitempty"`
	UserAgent        string            `json:"user_agent,omitempty"`
	// The hashrate averages: restored, they decay over the time the proxy was down.
	Rates     [numRates]float64 `json:"rates"`
	RatesAt   time.Time         `json:"rates_at"`
	RateStart time.Time         `json:"rates_start"`
}

// durableFleet is the fleet blob. The history is kept compact (the store bounds a
// blob at 64 KiB): the rates of the minutes up to EndMinute, oldest first, rounded
// to whole hashes per second, -1 for a minute without a point.
type durableFleet struct {
	Gone      fleetCounts `json:"gone"`
	EndMinute int64       `json:"history_end_minute"` // unix minute of the last rate
	History   []float64   `json:"history"`
}

// marshal returns every worker's durable counters and the fleet blob, batches
// folded first.
func (a *accounts) marshal() (map[string][]byte, []byte, error) {
	ws := a.snapshot()
	out := make(map[string][]byte, len(ws))
	for _, w := range ws {
		w.mu.Lock()
		d := durableWorker{
			Accepted: w.accepted, AcceptedWork: w.work, BlockCandidates: w.blocks,
			Forwarded: w.forwarded, UpstreamAccepted: w.upAccepted, LastShare: w.lastShare,
			Difficulty: w.difficulty, RemoteAddr: w.addr, UserAgent: w.agent,
			Rates: w.rates.rate, RatesAt: w.rates.at, RateStart: w.rates.start,
			Rejected: map[string]uint64{}, UpstreamRejected: map[string]uint64{}, SharesLost: map[string]uint64{},
		}
		for v, n := range w.rejected {
			if n > 0 {
				d.Rejected[stratum.Verdict(v).String()] = n
			}
		}
		for r, n := range w.upRejected {
			d.UpstreamRejected[r] = n
		}
		for r, n := range w.lost {
			d.SharesLost[r.String()] = n
		}
		w.mu.Unlock()
		b, err := json.Marshal(&d)
		if err != nil {
			return nil, nil, err
		}
		out[w.name] = b
	}
	a.mu.Lock()
	fl := durableFleet{Gone: a.gone}
	a.mu.Unlock()
	if pts := a.historyPoints(); len(pts) > 0 {
		first := int64(pts[0][0]) / 60
		fl.EndMinute = int64(pts[len(pts)-1][0]) / 60
		fl.History = make([]float64, fl.EndMinute-first+1)
		for i := range fl.History {
			fl.History[i] = -1
		}
		for _, p := range pts {
			fl.History[int64(p[0])/60-first] = math.Round(p[1])
		}
	}
	b, err := json.Marshal(&fl)
	return out, b, err
}

// restore adds the workers and fleet blob a store loaded, as offline workers, and
// returns how many workers it restored. Call it before any miner connects; a worker
// that exists already is left as it is. A document that does not parse is an error
// naming the worker; the others are still restored.
func (a *accounts) restore(workers map[string][]byte, fleetBlob []byte) (int, error) {
	var firstErr error
	n := 0
	for name, b := range workers {
		var d durableWorker
		if err := json.Unmarshal(b, &d); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("worker %q: %w", name, err)
			}
			continue
		}
		w := newWorker(name, a.now)
		w.accepted, w.work, w.blocks = d.Accepted, d.AcceptedWork, d.BlockCandidates
		w.forwarded, w.upAccepted, w.lastShare = d.Forwarded, d.UpstreamAccepted, d.LastShare
		w.difficulty, w.addr, w.agent = d.Difficulty, d.RemoteAddr, d.UserAgent
		w.lastSeen = d.LastShare
		w.rates = hashrates{rate: d.Rates, at: d.RatesAt, start: d.RateStart}
		for k, n := range d.Rejected {
			if v, ok := verdictByName(k); ok {
				w.rejected[v] += n
			}
		}
		for k, n := range d.UpstreamRejected {
			w.upRejected[k] = n
		}
		for k, n := range d.SharesLost {
			if r, ok := lostByName(k); ok {
				w.lost[r] += n
			}
		}
		a.mu.Lock()
		if a.workers[name] == nil && len(a.workers) < maxWorkers {
			a.workers[name] = w
			n++
		}
		a.mu.Unlock()
	}
	if len(fleetBlob) > 0 {
		var fl durableFleet
		if err := json.Unmarshal(fleetBlob, &fl); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("fleet: %w", err)
			}
		} else {
			a.mu.Lock()
			a.gone.add(fl.Gone)
			a.mu.Unlock()
			a.histMu.Lock()
			first := fl.EndMinute - int64(len(fl.History)) + 1
			for i, r := range fl.History {
				if r >= 0 && first+int64(i) > 0 {
					a.history.set(time.Unix((first+int64(i))*60, 0), r)
				}
			}
			a.histMu.Unlock()
		}
	}
	return n, firstErr
}

func verdictByName(s string) (stratum.Verdict, bool) {
	for v := stratum.Verdict(0); int(v) < stratum.VerdictCount; v++ {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

func lostByName(s string) (lostReason, bool) {
	for r := lostReason(0); r < lostReasonCount; r++ {
		if r.String() == s {
			return r, true
		}
	}
	return 0, false
}
