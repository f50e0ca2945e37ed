package proxy

import (
	"math"
	"time"
)

// vardiff steers one miner's difficulty toward a share every `interval`. It lives in
// its session under the session's mu: shares are observed by the reader, and every
// job delivery (a slot goroutine) checks it, so a miner that stops finding shares is
// lowered too.
//
// The estimate is the miner's work rate, the sum of the difficulties its accepted
// shares were judged at over the time they took (difficulty-1 units per second),
// times the target interval. A change is at most vardiffMaxStep either way and is
// made only when it is more than vardiffDeadband of the current difficulty.
type vardiff struct {
	interval time.Duration // target time between shares
	retarget time.Duration // how often the difficulty may change
	since    time.Time     // start of the current measuring window; zero until the first job
	shares   int           // accepted shares in the window
	work     float64       // sum of the difficulties they were judged at
}

const (
	// vardiffMaxStep bounds one change, so a miner that was idle for a while does
	// not fall to the floor in one step (nor a burst lift it to the ceiling).
	vardiffMaxStep = 4.0
	// vardiffDeadband ignores changes under 20%: each one costs the miner a
	// set_difficulty, and a window of a few shares is that noisy anyway.
	vardiffDeadband = 0.2
)

// observe records an accepted share judged at difficulty d and, once per retarget
// period, returns the difficulty the miner should get next (0 when unchanged).
// current is the difficulty last sent.
func (v *vardiff) observe(now time.Time, d, current float64) float64 {
	if v.since.IsZero() {
		v.since = now
	}
	v.shares++
	v.work += d
	return v.check(now, current)
}

// check is observe without a share. The first call (the miner's first job) starts
// the measuring window.
func (v *vardiff) check(now time.Time, current float64) float64 {
	if v.since.IsZero() {
		v.since = now
		return 0
	}
	elapsed := now.Sub(v.since)
	if elapsed < v.retarget || elapsed <= 0 || !(current > 0) {
		return 0
	}
	rate := v.work / elapsed.Seconds() // difficulty-1 units per second
	v.since, v.shares, v.work = now, 0, 0
	next := rate * v.interval.Seconds()
	next = math.Max(current/vardiffMaxStep, math.Min(current*vardiffMaxStep, next))
	if math.Abs(next-current) <= vardiffDeadband*current {
		return 0
	}
	return next
}

// clampDifficulty bounds a miner's difficulty d. minD is the floor (the configured
// minimum or the miner's own); maxD (0: none) and upstream, the pool's difficulty
// for the job (0: unknown), are ceilings, and a ceiling wins over the floor: a share
// the pool would pay for is never refused for being under the miner's difficulty.
//
// With pow2 (Config.PowerOfTwoDifficulty) the result is 2^k for an integer k,
// rounded down so the ceilings hold. Its purpose is firmware that cannot parse a
// fractional difficulty, so below 1 it is raised to 1 whenever the ceilings allow
// (maxD and the pool's difficulty at least 1), even above what vardiff or the floor
// asked for. Only a ceiling under 1 (a pool with fractional difficulty) gives a
// fraction 2^-k (0.5, 0.25, …), which is exact in binary and printed without
// rounding; such a pool cannot serve that firmware in any case. A result under the
// floor is rounded up instead when the ceilings leave room.
func clampDifficulty(d, minD, maxD, upstream float64, pow2 bool) float64 {
	ceil := math.Inf(1)
	if maxD > 0 {
		ceil = maxD
	}
	if upstream > 0 {
		ceil = math.Min(ceil, upstream)
	}
	d = math.Min(math.Max(d, minD), ceil)
	if !pow2 || !(d > 0) || math.IsInf(d, 0) {
		return d
	}
	p := math.Exp2(math.Floor(math.Log2(d))) // the largest 2^k <= d, exactly
	switch {
	case p < 1 && ceil >= 1:
		p = 1
	case p < minD && 2*p <= ceil:
		p *= 2
	}
	return p
}
