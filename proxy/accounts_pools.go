package proxy

import (
	"math"
	"sync"
	"time"
)

// maxPoolRejectReasons bounds the distinct reject reasons kept per pool; past it
// they count as "other".
const maxPoolRejectReasons = 32

// poolAccount is one configured pool's account, over every slot's connections to it.
type poolAccount struct {
	mu         sync.Mutex
	accepted   uint64
	rejected   uint64
	rejects    map[string]uint64 // by the pool's reason
	switches   uint64            // times a slot moved to this pool from another
	difficulty float64           // last set_difficulty on an active connection
	latency    [60]latencyBucket // submit round trips, one bucket a second
}

type latencyBucket struct {
	sec int64 // unix second
	sum time.Duration
	n   uint32
}

// answer counts a pool's answer to a submit, with its round trip.
func (p *poolAccount) answer(now time.Time, rtt time.Duration, accepted bool, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if accepted {
		p.accepted++
	} else {
		p.rejected++
		if p.rejects == nil {
			p.rejects = make(map[string]uint64)
		}
		if _, ok := p.rejects[reason]; !ok && len(p.rejects) >= maxPoolRejectReasons {
			reason = "other"
		}
		p.rejects[reason]++
	}
	sec := now.Unix()
	b := &p.latency[sec%int64(len(p.latency))]
	if b.sec != sec {
		*b = latencyBucket{sec: sec}
	}
	b.sum += rtt
	b.n++
}

// meanLatencyLocked is the mean round trip of the last minute, 0 with none. p.mu
// must be held.
func (p *poolAccount) meanLatencyLocked(now time.Time) time.Duration {
	sec := now.Unix()
	var sum time.Duration
	var n int64
	for _, b := range p.latency {
		if b.sec > sec-int64(len(p.latency)) && b.sec <= sec {
			sum += b.sum
			n += int64(b.n)
		}
	}
	if n == 0 {
		return 0
	}
	return sum / time.Duration(n)
}

func (s *stats) switched(pool int) {
	if pool >= 0 && pool < len(s.upstreams) {
		p := &s.upstreams[pool]
		p.mu.Lock()
		p.switches++
		p.mu.Unlock()
	}
}

func (s *stats) poolDifficulty(pool int, d float64) {
	if pool >= 0 && pool < len(s.upstreams) && d > 0 && !math.IsInf(d, 0) {
		p := &s.upstreams[pool]
		p.mu.Lock()
		p.difficulty = d
		p.mu.Unlock()
		s.m.UpstreamDifficulty.WithLabelValues(s.pools[pool]).Set(d)
	}
}

// Upstream states, as the API reports them.
const (
	UpstreamUp      = "up"      // some slot's active connection is to it
	UpstreamDown    = "down"    // its last attempt failed, and it has not delivered work since
	UpstreamStandby = "standby" // healthy or untried, but no slot uses it
)

// UpstreamStatus is one configured pool as /api/v1/upstreams shows it.
type UpstreamStatus struct {
	Index int    `json:"index"` // in failover order
	Pool  string `json:"pool"`  // URL without the password
	State string `json:"state"` // up, down or standby
	// Slots is how many slots' active connection is to this pool.
	Slots int `json:"slots"`
	// LatencyMs is the mean submit round trip over the last minute (0 with none).
	LatencyMs  float64 `json:"latency_ms"`
	Difficulty float64 `json:"difficulty"` // the pool's last set_difficulty
	// SharesAccepted and SharesRejected count the pool's answers; Rejects keys the
	// rejects by the pool's reason.
	SharesAccepted uint64            `json:"shares_accepted"`
	SharesRejected uint64            `json:"shares_rejected"`
	Rejects        map[string]uint64 `json:"rejects"`
	// Switches counts the times a slot moved to this pool from another.
	Switches uint64 `json:"switches"`
}

// upstreamStatus returns every configured pool's status, in failover order.
func (s *Server) upstreamStatus() []UpstreamStatus {
	slots := make([]int, len(s.cfg.Upstreams))
	s.mu.Lock()
	for _, sl := range s.slots {
		sl.mu.Lock()
		if sl.up != nil && sl.poolIdx >= 0 && sl.poolIdx < len(slots) {
			slots[sl.poolIdx]++
		}
		sl.mu.Unlock()
	}
	s.mu.Unlock()
	now := time.Now() // round trips are measured on the real clock
	out := make([]UpstreamStatus, len(s.cfg.Upstreams))
	for i, u := range s.cfg.Upstreams {
		st := UpstreamStatus{Index: i, Pool: u.String(), Slots: slots[i], Rejects: map[string]uint64{}}
		p := &s.stats.upstreams[i]
		p.mu.Lock()
		st.SharesAccepted, st.SharesRejected, st.Switches, st.Difficulty = p.accepted, p.rejected, p.switches, p.difficulty
		for r, n := range p.rejects {
			st.Rejects[r] = n
		}
		st.LatencyMs = float64(p.meanLatencyLocked(now)) / float64(time.Millisecond)
		p.mu.Unlock()
		switch {
		case st.Slots > 0:
			st.State = UpstreamUp
		case s.health.down(i):
			st.State = UpstreamDown
		default:
			st.State = UpstreamStandby
		}
		out[i] = st
	}
	return out
}

// down reports whether pool i's last attempt failed and it has not delivered work
// since.
func (h *poolHealth) down(i int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &h.pools[i]
	return p.failures > 0 && p.healthySince.IsZero()
}
