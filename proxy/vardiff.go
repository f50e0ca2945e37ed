package proxy

import (
	"math"
	"time"
)

// vardiff steers one miner's difficulty toward a share every `interval`. It is owned
// by the miner's reader goroutine.
type vardiff struct {
	interval time.Duration // target time between shares
	retarget time.Duration // how often the difficulty may change
	since    time.Time     // start of the current measuring window
	shares   int           // accepted shares in the window
	work     float64       // sum of the difficulties they were judged at
}

// vardiffMaxStep bounds one change, so a miner that was idle for a while does not
// fall to the floor in one step.
const vardiffMaxStep = 4.0

// observe records an accepted share judged at difficulty d and, once per retarget
// period, returns a new suggested difficulty (0 when unchanged). The estimate is the
// miner's work rate (difficulty units per second) times the target interval.
func (v *vardiff) observe(now time.Time, d float64, current float64) float64 {
	if v.since.IsZero() {
		v.since = now
	}
	v.shares++
	v.work += d
	return v.check(now, current)
}

// check is observe without a share: a miner that stops finding shares at its
// difficulty is lowered too.
func (v *vardiff) check(now time.Time, current float64) float64 {
	if v.since.IsZero() {
		v.since = now
		return 0
	}
	elapsed := now.Sub(v.since)
	if elapsed < v.retarget {
		return 0
	}
	rate := v.work / elapsed.Seconds() // difficulty-1 units per second
	v.since, v.shares, v.work = now, 0, 0
	next := rate * v.interval.Seconds()
	if next == 0 {
		next = current / vardiffMaxStep
	}
	next = math.Max(current/vardiffMaxStep, math.Min(current*vardiffMaxStep, next))
	// Ignore changes under 20%: each one costs the miner a set_difficulty.
	if math.Abs(next-current) < 0.2*current {
		return 0
	}
	return next
}

// clampDifficulty applies the configured bounds and the upstream ceiling (a share the
// pool would pay for is never rejected locally), then optional power-of-two rounding
// (down, so the ceiling still holds).
func clampDifficulty(d, minD, maxD, upstream float64, pow2 bool) float64 {
	if maxD > 0 && d > maxD {
		d = maxD
	}
	if upstream > 0 && d > upstream {
		d = upstream
	}
	if d < minD {
		d = minD
		if upstream > 0 && d > upstream {
			d = upstream
		}
	}
	if pow2 {
		p := math.Exp2(math.Floor(math.Log2(d)))
		if p < 1 && d >= 1 {
			p = 1
		}
		d = p
	}
	return d
}
