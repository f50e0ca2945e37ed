package proxy

import (
	"math/rand/v2"
	"sync"
	"time"
)

// poolHealth tracks every configured pool's health, shared by all slots: a pool is
// unhealthy after a connect failure, a job timeout or an unanswered submit, and is
// retried after an exponential back-off with jitter.
//
// A failure round is one back-off: the failures other slots (or an immediate resume
// attempt) report while the pool is already backing off belong to the same round,
// so one outage seen by twenty slots is one failure, not twenty. A pool that fails
// again soon after it came back (it accepts connections, then drops them) keeps its
// count, so a flapping pool backs off further each time instead of being redialed
// as fast as it drops; the count starts over only once the pool has stayed healthy
// for the longest back-off.
type poolHealth struct {
	min, max time.Duration
	now      func() time.Time

	mu    sync.Mutex
	pools []poolState
}

type poolState struct {
	failures     int
	retryAt      time.Time // not tried again before this
	healthySince time.Time // zero while unhealthy or unknown
	lastErr      string
}

func newPoolHealth(n int, min, max time.Duration) *poolHealth {
	return &poolHealth{min: min, max: max, now: time.Now, pools: make([]poolState, n)}
}

// backoff returns the wait after n consecutive failures: min·2^(n-1) capped at max,
// with ±25% jitter so many slots do not retry in step.
func (h *poolHealth) backoff(n int) time.Duration {
	d := h.min
	for i := 1; i < n && d < h.max; i++ {
		d *= 2
	}
	d = min(d, h.max)
	return time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
}

// failed records a failure of pool i.
func (h *poolHealth) failed(i int, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &h.pools[i]
	now := h.now()
	p.lastErr = reason
	stable := !p.healthySince.IsZero() && now.Sub(p.healthySince) >= h.max
	p.healthySince = time.Time{}
	if now.Before(p.retryAt) {
		return // this round's back-off is already running
	}
	if stable {
		p.failures = 0
	}
	p.failures++
	p.retryAt = now.Add(h.backoff(p.failures))
}

// healthy records that pool i delivered work: it may be picked at once. Its failure
// count stays until it has been healthy for the longest back-off (see failed).
func (h *poolHealth) healthy(i int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &h.pools[i]
	p.retryAt = time.Time{}
	if p.healthySince.IsZero() {
		p.healthySince = h.now()
	}
}

// firstFailure reports whether pool i's current failure round is its first since
// it was last stable: a lost session is then worth resuming at once, ignoring the
// back-off; a flapping pool's is not.
func (h *poolHealth) firstFailure(i int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pools[i].failures <= 1
}

// pick returns the first pool in failover order, at or after `from`, that may be
// tried now, or -1 and the time until the earliest retry.
func (h *poolHealth) pick(from int) (int, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	wait := time.Duration(-1)
	for i := from; i < len(h.pools); i++ {
		d := h.pools[i].retryAt.Sub(now)
		if d <= 0 {
			return i, 0
		}
		if wait < 0 || d < wait {
			wait = d
		}
	}
	return -1, wait
}
