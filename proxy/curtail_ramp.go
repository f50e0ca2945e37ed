package proxy

import "time"

// Ramp bounds. Load moves in steps, never a cliff: a ramp is cut into at most
// maxRampSteps steps, each at least MinCurtailStep apart; on top of that the curtailer
// acts on at most MaxStepWorkers per step (CurtailConfig.MaxStepWorkers), so however
// large the fleet or short the ramp, at most MaxStepWorkers connections are closed or
// let back per MinCurtailStep: with the defaults, 20 miners a second.
const (
	// MinCurtailStep is the shortest interval between two curtailment steps.
	MinCurtailStep = time.Second
	// DefaultMaxStepWorkers bounds how many workers one step curtails or restores.
	DefaultMaxStepWorkers = 20
	// DefaultCurtailRamp is the ramp of a target that gives none.
	DefaultCurtailRamp = 60 * time.Second
	// MaxCurtailRamp bounds a ramp (API, schedule and price targets alike).
	MaxCurtailRamp = 24 * time.Hour
	// maxRampSteps bounds the steps of one ramp: a long ramp gets longer steps, not more.
	maxRampSteps = 120
)

// rampPlan moves the shed target from one level (kW) to another over a duration, in
// equal steps. Step k (1…steps) takes effect at start + k×interval, so the plan holds
// from until the first interval has passed and reaches to at start + steps×interval,
// which is the ramp rounded up to whole intervals. A zero ramp is one step, at start.
// A rampPlan is a value; the zero value holds 0 kW forever.
type rampPlan struct {
	from, to float64
	start    time.Time
	interval time.Duration
	steps    int
}

// newRampPlan plans a move from → to starting at start. The interval is the ramp
// divided into maxRampSteps, but no shorter than minStep (MinCurtailStep if smaller).
func newRampPlan(from, to float64, start time.Time, ramp, minStep time.Duration) rampPlan {
	minStep = max(minStep, MinCurtailStep)
	p := rampPlan{from: from, to: to, start: start, steps: 1}
	if ramp <= 0 || from == to {
		return p
	}
	p.interval = max(ramp/maxRampSteps, minStep)
	p.steps = int((ramp + p.interval - 1) / p.interval)
	return p
}

// step returns how many steps have taken effect at now (0…steps).
func (p *rampPlan) step(now time.Time) int {
	if p.interval <= 0 {
		if now.Before(p.start) {
			return 0
		}
		return p.steps
	}
	d := now.Sub(p.start)
	if d < 0 {
		return 0
	}
	return int(min(int64(d/p.interval), int64(p.steps)))
}

// at returns the planned shed target at now, in kW.
func (p *rampPlan) at(now time.Time) float64 {
	k := p.step(now)
	if k >= p.steps {
		return p.to
	}
	return p.from + (p.to-p.from)*float64(k)/float64(p.steps)
}

// progress is the fraction of the plan's steps taken at now, 0…1 (1 when nothing to do).
func (p *rampPlan) progress(now time.Time) float64 {
	if p.steps == 0 {
		return 1
	}
	return float64(p.step(now)) / float64(p.steps)
}

// done reports whether the plan has reached its final level at now.
func (p *rampPlan) done(now time.Time) bool { return p.step(now) >= p.steps }

// rampStep is one point of a plan's schedule.
type rampStep struct {
	At time.Time
	KW float64
}

// schedule lists every step of the plan, in order.
func (p *rampPlan) schedule() []rampStep {
	out := make([]rampStep, 0, p.steps)
	for k := 1; k <= p.steps; k++ {
		at := p.start.Add(time.Duration(k) * p.interval)
		out = append(out, rampStep{At: at, KW: p.at(at)})
	}
	return out
}
