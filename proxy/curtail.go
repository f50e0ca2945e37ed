package proxy

// Flexible load (issue 7): curtail and restore fleet hashrate on a signal.
//
// A miner with no pool stops hashing and drops to idle power, so HashRelay curtails a
// worker by withholding its work: the server closes the worker's connection and refuses
// its reconnects while isCurtailed says so, and lets it back at once when restored.
//
// The pieces, one file each:
//
//	energy.go           power models (W or J/TH per model, idle draw) and the energy meter
//	curtail_policy.go   which workers go first (least efficient, then priority, then name)
//	curtail_ramp.go     ramps: targets reached in bounded steps, restores likewise
//	curtail_signals.go  API, schedule and price targets; the API body decoder
//	curtail.go          the curtailer tying them together for the server
//
// The server calls tick on its own clock (every second or so) with a snapshot of its
// workers and acts on the names it gets back; everything here is driven by the time it
// is given, so tests use a fake clock.

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// CurtailConfig configures flexible load. The zero value has no signals but the API
// and uses the defaults named on each field.
type CurtailConfig struct {
	// Models estimate each worker's draw; the first match wins (see PowerModel).
	Models []PowerModel
	// DefaultJoulesPerTH applies to workers no model matches; 0 means
	// DefaultJoulesPerTH (an assumption: set it for your fleet).
	DefaultJoulesPerTH float64
	// Exempt lists worker-name globs never curtailed (see exemptList).
	Exempt []string
	// Schedule windows curtail at set times of day.
	Schedule []ScheduleWindow
	// Price curtails on a polled power price; disabled without a URL.
	Price PriceConfig
	// StepInterval is the least time between two curtailment steps; default and
	// minimum MinCurtailStep.
	StepInterval time.Duration
	// MaxStepWorkers bounds the workers curtailed or restored per step; default
	// DefaultMaxStepWorkers.
	MaxStepWorkers int
}

func (c *CurtailConfig) stepInterval() time.Duration { return max(c.StepInterval, MinCurtailStep) }

func (c *CurtailConfig) maxStepWorkers() int {
	if c.MaxStepWorkers <= 0 {
		return DefaultMaxStepWorkers
	}
	return c.MaxStepWorkers
}

func (c *CurtailConfig) validate() error {
	for i := range c.Models {
		if err := c.Models[i].validate(); err != nil {
			return err
		}
	}
	if c.DefaultJoulesPerTH < 0 || c.DefaultJoulesPerTH > 1000 {
		return fmt.Errorf("curtail: default J/TH %v is outside 0…1000", c.DefaultJoulesPerTH)
	}
	for i := range c.Schedule {
		if c.Schedule[i].Location == nil {
			return fmt.Errorf("curtail schedule %d: no time zone", i)
		}
	}
	if c.Price.URL != "" && c.Price.RestoreBelow >= c.Price.CurtailAbove {
		return fmt.Errorf("curtail price: below (%v) must be less than above (%v)", c.Price.RestoreBelow, c.Price.CurtailAbove)
	}
	return nil
}

// curtailWorkerLoad is what the server tells tick about one worker.
type curtailWorkerLoad struct {
	Name     string
	Agent    string
	Hashrate float64 // measured H/s
	Online   bool    // connected and given work
}

// curtailedWorker remembers what a curtailed worker drew when it was curtailed: it has
// no hashrate while curtailed, and its shed is counted at the draw it gave up.
type curtailedWorker struct {
	model           string
	hashingW, idleW float64
	since           time.Time
}

// CurtailState is the state reported by GET /api/v1/curtailment. Every number is
// finite.
type CurtailState struct {
	// Active: a signal asks for shedding, or workers are still being restored.
	Active bool `json:"active"`
	// Cause is the signal whose target is in force; Causes every signal asking.
	Cause  string   `json:"cause,omitempty"`
	Causes []string `json:"causes"`
	// TargetKW is the combined target; StepTargetKW where the ramp has got to.
	TargetKW     float64 `json:"target_kw"`
	StepTargetKW float64 `json:"step_target_kw"`
	// ShedKW is the load now shed: hashing − idle draw of the curtailed workers.
	ShedKW float64 `json:"shed_kw"`
	// BaselineKW is fleet hashing power when the curtailment began (fractions are of
	// this); 0 when none is under way.
	BaselineKW       float64 `json:"baseline_kw"`
	CurtailedWorkers int     `json:"curtailed_workers"`
	// RampProgress is the share of the current ramp's steps taken, 0…1.
	RampProgress float64   `json:"ramp_progress"`
	RampEnds     time.Time `json:"ramp_ends,omitzero"`
	// Since is when the current curtailment began.
	Since  time.Time    `json:"since,omitzero"`
	Energy EnergyStatus `json:"energy"`
	Price  *PriceStatus `json:"price,omitempty"`
}

// curtailer holds the signals, the ramp and the curtailed set. All methods are safe
// for concurrent use; isCurtailed takes no lock.
type curtailer struct {
	cfg    CurtailConfig
	exempt exemptList
	log    zerolog.Logger
	price  *priceSignal // nil without a price URL

	// set is the curtailed names, replaced (never modified) on every change, so
	// isCurtailed, called on every authorize, is one atomic load and a map lookup.
	set atomic.Pointer[map[string]struct{}]

	mu         sync.Mutex // guards everything below
	api        *CurtailTarget
	targetKW   float64
	cause      string
	causes     []string
	ramp       time.Duration // ramp of the target in force, reused to restore when it ends
	plan       rampPlan
	baselineKW float64
	since      time.Time
	lastStep   time.Time
	shedW      float64
	curtailed  map[string]*curtailedWorker
	meter      *energyMeter
}

// newCurtailer checks cfg and returns a curtailer with nothing curtailed. client is
// used for the price feed (nil: a client with priceFetchTimeout).
func newCurtailer(cfg CurtailConfig, log zerolog.Logger, client *http.Client) (*curtailer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &curtailer{
		cfg:       cfg,
		exempt:    exemptList(cfg.Exempt),
		log:       log,
		curtailed: make(map[string]*curtailedWorker),
		meter:     newEnergyMeter(),
	}
	if cfg.Price.URL != "" {
		c.price = newPriceSignal(cfg.Price, client)
	}
	c.set.Store(&map[string]struct{}{})
	return c, nil
}

// isCurtailed reports whether worker is curtailed: the server refuses its authorize
// (and has closed its connection) until it is restored.
func (c *curtailer) isCurtailed(worker string) bool {
	_, ok := (*c.set.Load())[worker]
	return ok
}

// setAPITarget sets the API's target (POST /api/v1/curtailment), replacing any
// earlier one; it takes effect at the next tick.
func (c *curtailer) setAPITarget(t CurtailTarget) {
	if t.Cause == "" {
		t.Cause = "api"
	}
	c.mu.Lock()
	c.api = &t
	c.mu.Unlock()
}

// clearAPITarget drops the API's target (DELETE /api/v1/curtailment). Workers come back
// over the ramp of the target that ends, unless another signal still asks.
func (c *curtailer) clearAPITarget() {
	c.mu.Lock()
	c.api = nil
	c.mu.Unlock()
}

// runPrice polls the price feed until ctx ends (see priceSignal.run); it returns at
// once without a price URL. Fetch errors are logged at warn level.
func (c *curtailer) runPrice(ctx context.Context, tick <-chan time.Time, now func() time.Time) {
	if c.price == nil {
		return
	}
	c.price.run(ctx, tick, now, func(err error) {
		c.log.Warn().Err(err).Str("url", redactURL(c.cfg.Price.URL)).Msg("curtailment price feed")
	})
}

// targetsLocked gathers every signal asking for curtailment at now. mu must be held.
func (c *curtailer) targetsLocked(now time.Time) []CurtailTarget {
	var ts []CurtailTarget
	if c.api != nil {
		ts = append(ts, *c.api)
	}
	for i := range c.cfg.Schedule {
		if c.cfg.Schedule[i].active(now) {
			ts = append(ts, c.cfg.Schedule[i].Target)
		}
	}
	if c.price != nil {
		if t, ok := c.price.target(now); ok {
			ts = append(ts, t)
		}
	}
	return ts
}

// candidatesLocked builds the policy's view of the workers, adding curtailed workers
// missing from the snapshot so they can still be restored. mu must be held.
func (c *curtailer) candidatesLocked(workers []curtailWorkerLoad) []curtailCandidate {
	cands := make([]curtailCandidate, 0, len(workers)+len(c.curtailed))
	seen := make(map[string]bool, len(workers))
	for _, w := range workers {
		if seen[w.Name] {
			continue
		}
		seen[w.Name] = true
		hr := w.Hashrate
		if !(hr > 0 && hr < math.Inf(1)) {
			hr = 0
		}
		m := matchPowerModel(c.cfg.Models, c.cfg.DefaultJoulesPerTH, w.Agent, w.Name)
		cand := curtailCandidate{Name: w.Name, Agent: w.Agent, Model: m.Name, Priority: m.Priority,
			Exempt: c.exempt.exempt(w.Name)}
		if cw := c.curtailed[w.Name]; cw != nil {
			cand.HashingW, cand.IdleW, cand.Curtailed = cw.hashingW, cw.idleW, true
		} else if w.Online {
			cand.Hashrate = hr
			cand.HashingW = m.hashingWatts(hr)
			cand.IdleW = m.idleWatts(cand.HashingW)
			cand.JoulesPerTH = joulesPerTH(cand.HashingW, hr)
		}
		cands = append(cands, cand)
	}
	for name, cw := range c.curtailed {
		if !seen[name] {
			cands = append(cands, curtailCandidate{Name: name, Model: cw.model, HashingW: cw.hashingW,
				IdleW: cw.idleW, Curtailed: true})
		}
	}
	return cands
}

// tick advances curtailment to now given the server's workers, and returns the
// workers the server must now close (toCurtail) and may let back (toRestore). Their
// new state is already in force for isCurtailed when tick returns. Call it regularly
// (about once a second); steps happen no closer than the step interval.
func (c *curtailer) tick(now time.Time, workers []curtailWorkerLoad) (toCurtail, toRestore []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cands := c.candidatesLocked(workers)
	var fleetW float64
	for i := range cands {
		fleetW += cands[i].HashingW
	}

	targets := c.targetsLocked(now)
	if len(targets) > 0 {
		if c.since.IsZero() {
			c.since = now
		}
		// The baseline is taken once per curtailment, or later if the fleet had no
		// power to measure yet (a schedule window open at start-up, before miners
		// connect): nothing can have been curtailed against a zero baseline.
		if c.baselineKW == 0 {
			c.baselineKW = fleetW / 1e3
		}
	}
	kw, best := combineTargets(targets, c.baselineKW)
	cause := ""
	if best != nil {
		cause = best.Cause
	}
	c.causes = c.causes[:0]
	for i := range targets {
		c.causes = append(c.causes, targets[i].Cause)
	}
	if kw != c.targetKW || cause != c.cause {
		c.retargetLocked(now, kw, cause, best)
	}

	stepKW := c.plan.at(now)
	if c.lastStep.IsZero() || now.Sub(c.lastStep) >= c.cfg.stepInterval() {
		limit := c.cfg.maxStepWorkers()
		for _, cand := range chooseCurtail(cands, c.shedW, stepKW*1e3, limit) {
			c.curtailed[cand.Name] = &curtailedWorker{model: cand.Model, hashingW: cand.HashingW, idleW: cand.IdleW, since: now}
			c.shedW += cand.shedW()
			cand.Curtailed = true
			toCurtail = append(toCurtail, cand.Name)
		}
		// A step either curtails or restores, never both: restoring in the step that
		// overshot would churn a worker for nothing.
		var restore []*curtailCandidate
		if len(toCurtail) == 0 {
			restore = chooseRestore(cands, c.shedW, stepKW*1e3, limit)
		}
		for _, cand := range restore {
			delete(c.curtailed, cand.Name)
			c.shedW -= cand.shedW()
			cand.Curtailed, cand.HashingW, cand.IdleW = false, 0, 0 // back on its next measurement
			toRestore = append(toRestore, cand.Name)
		}
		if len(toCurtail)+len(toRestore) > 0 {
			c.lastStep = now
			c.publishLocked()
			c.log.Debug().Str("cause", cmp.Or(c.cause, "none")).Int("curtailed", len(toCurtail)).Int("restored", len(toRestore)).
				Float64("shed_kw", c.shedW/1e3).Float64("step_target_kw", stepKW).Msg("curtailment step")
		}
	}
	if len(c.curtailed) == 0 {
		c.shedW = 0 // drop float residue
		if len(targets) == 0 && !c.since.IsZero() {
			c.log.Info().Str("cause", "none").Dur("lasted", now.Sub(c.since)).Msg("curtailment ended, every worker restored")
			c.baselineKW, c.since = 0, time.Time{}
		}
	}

	for i := range cands {
		cd := &cands[i]
		c.meter.observe(now, cd.Name, cd.Model, cd.HashingW, cd.IdleW, cd.Hashrate, cd.Curtailed)
	}
	return toCurtail, toRestore
}

// retargetLocked starts a new ramp from where the current one has got to. A new
// target ramps at its own pace; a target that ends (or shrinks to nothing) restores at
// the pace of the one in force. mu must be held.
func (c *curtailer) retargetLocked(now time.Time, kw float64, cause string, best *CurtailTarget) {
	prevKW, prevCause := c.targetKW, c.cause
	if best != nil {
		c.ramp = best.Ramp
	}
	if kw != prevKW {
		c.plan = newRampPlan(c.plan.at(now), kw, now, c.ramp, c.cfg.stepInterval())
	}
	c.targetKW, c.cause = kw, cause
	ev := c.log.Info()
	if cause == "" {
		ev = ev.Str("cause", "none").Str("ended", prevCause)
	} else {
		ev = ev.Str("cause", cause)
	}
	ev.Float64("target_kw", kw).Float64("previous_kw", prevKW).Float64("baseline_kw", c.baselineKW).
		Dur("ramp", c.ramp).Msg("curtailment target changed")
}

// publishLocked replaces the set isCurtailed reads. mu must be held.
func (c *curtailer) publishLocked() {
	s := make(map[string]struct{}, len(c.curtailed))
	for name := range c.curtailed {
		s[name] = struct{}{}
	}
	c.set.Store(&s)
}

// state reports the curtailment state at now for the status API.
func (c *curtailer) state(now time.Time) CurtailState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := CurtailState{
		Active:           c.targetKW > 0 || len(c.curtailed) > 0,
		Cause:            c.cause,
		Causes:           slices.Clone(c.causes),
		TargetKW:         c.targetKW,
		StepTargetKW:     c.plan.at(now),
		ShedKW:           c.shedW / 1e3,
		BaselineKW:       c.baselineKW,
		CurtailedWorkers: len(c.curtailed),
		RampProgress:     c.plan.progress(now),
		Since:            c.since,
		Energy:           c.meter.fleet(),
	}
	if st.Causes == nil {
		st.Causes = []string{}
	}
	if !c.plan.done(now) {
		st.RampEnds = c.plan.start.Add(time.Duration(c.plan.steps) * c.plan.interval)
	}
	if c.price != nil {
		ps := c.price.status()
		st.Price = &ps
	}
	return st
}

// workerEnergy returns one worker's energy account, if it has been observed.
func (c *curtailer) workerEnergy(name string) (EnergyStatus, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.meter.worker(name)
}

// workerEnergies returns every metered worker's energy account, by name, under one
// lock (the API and a scrape read every worker at once).
func (c *curtailer) workerEnergies() map[string]EnergyStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]EnergyStatus, len(c.meter.workers))
	for name, w := range c.meter.workers {
		out[name] = w.status(name, w.model)
	}
	return out
}

// redactURL drops what may hold a secret (user info, query, fragment) from a URL
// before it is logged; a price feed's API key often rides in its query.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
