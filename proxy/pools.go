package proxy

import (
	"math/rand/v2"
	"sync"
	"time"
)

// poolHealth tracks every configured pool's health, shared by all slots: a pool is
// unhealthy after a connect failure, a job timeout or an unanswered submit, and is
// retried after an exponential back-off with jitter.
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
	p.failures++
	p.retryAt = h.now().Add(h.backoff(p.failures))
	p.healthySince = time.Time{}
	p.lastErr = reason
}

// healthy records that pool i delivered work.
func (h *poolHealth) healthy(i int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &h.pools[i]
	p.failures = 0
	p.retryAt = time.Time{}
	if p.healthySince.IsZero() {
		p.healthySince = h.now()
	}
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

// snapshot returns a copy of every pool's state, for status pages.
func (h *poolHealth) snapshot() []poolState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]poolState(nil), h.pools...)
}
