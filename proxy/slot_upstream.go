package proxy

import (
	"bytes"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// attach makes u (connected to pool poolIdx) the slot's upstream. The miners keep
// their prefixes and extranonce2 size; the next job from u is relayed clean, and a
// narrower version mask reaches them at once. It returns false when u's extranonce2
// cannot hold prefix + the miners' extranonce2.
func (s *slot) attach(u *upstream, poolIdx int) bool {
	s.mu.Lock()
	if s.minerEn2 == 0 {
		l, err := stratum.NewLayout(u.Extranonce1, u.Extranonce2Size, s.prefixSize)
		if err != nil {
			s.mu.Unlock()
			return false
		}
		s.prefixSize, s.minerEn2 = l.PrefixSize, l.MinerExtranonce2Size()
	}
	if u.Extranonce2Size < s.prefixSize+s.minerEn2 {
		s.mu.Unlock()
		s.log.Warn().Int("upstream_en2", u.Extranonce2Size).Int("need", s.prefixSize+s.minerEn2).Msg("upstream extranonce2 too small for this slot's miners")
		return false
	}
	st := s.states[u]
	if st == nil {
		st = &upState{}
		s.states[u] = st
	}
	st.poolIdx, st.attached = poolIdx, true
	s.srv.stats.upstreamUp(poolIdx)
	st.en1, st.en2Size = u.Extranonce1, u.Extranonce2Size
	if st.difficulty == 0 {
		st.difficulty = u.difficulty()
	}
	// A connection that resumed the lost session (same extranonce1) can take the
	// shares found on the lost connection's jobs.
	if lost := s.lost; lost != nil && u.Resumed && bytes.Equal(s.states[lost].en1, st.en1) {
		st.resumeOf = lost
	}
	for old, ost := range s.states {
		if old != u && old != s.up && old != s.lost && ost.closed {
			delete(s.states, old)
		}
	}
	s.up, s.poolIdx = u, poolIdx
	s.lostSince = time.Time{}
	s.forceClean = true
	oldMask := s.mask
	s.mask = u.versionMask()
	last, lastDiff := st.lastJob, st.lastDiff
	buffered := s.buffered
	s.buffered = nil
	s.mu.Unlock()

	s.srv.health.healthy(poolIdx)
	if s.mask != oldMask {
		s.pushVersionMask()
	}
	if last != nil {
		s.relay(u, last, lastDiff, false)
	}
	for i := range buffered {
		s.forward(&buffered[i])
	}
	return true
}

// pushVersionMask shrinks (or restores) every rolling miner's mask to the upstream's.
func (s *slot) pushVersionMask() {
	s.mu.Lock()
	mask := s.mask
	miners := s.snapshotMinersLocked(s.srv.minerScratch(len(s.miners)))
	s.mu.Unlock()
	for _, m := range miners {
		m.upstreamMask(mask)
	}
	s.srv.releaseMinerScratch(miners)
}

// The upstreamEvents of every connection a slot opens (active or probing) arrive here
// on that connection's reader goroutine.

func (s *slot) state(u *upstream) *upState {
	st := s.states[u]
	if st == nil {
		st = &upState{en1: u.Extranonce1, en2Size: u.Extranonce2Size, difficulty: 1}
		s.states[u] = st
	}
	return st
}

func (s *slot) upstreamJob(u *upstream, j *stratum.Job) {
	s.mu.Lock()
	st := s.state(u)
	st.lastJob, st.lastDiff = j, st.difficulty
	active := u == s.up
	idx := st.poolIdx
	s.mu.Unlock()
	if active {
		s.srv.health.healthy(idx)
		s.relay(u, j, st.lastDiff, false)
	}
}

func (s *slot) upstreamDifficulty(u *upstream, d float64) {
	s.mu.Lock()
	s.state(u).difficulty = d
	s.mu.Unlock()
}

func (s *slot) upstreamExtranonce(u *upstream, en1 []byte, en2Size int) {
	s.mu.Lock()
	st := s.state(u)
	if en2Size < s.prefixSize+s.minerEn2 {
		s.mu.Unlock()
		s.log.Warn().Int("upstream_en2", en2Size).Msg("set_extranonce leaves too little extranonce2; reconnecting")
		u.close(upstreamCloseIncompatible)
		return
	}
	st.en1, st.en2Size = en1, en2Size
	if u == s.up {
		s.forceClean = true // applies from the pool's next job, which is relayed clean
	}
	s.mu.Unlock()
	s.srv.stats.m.ExtranonceChanges.Inc()
}

func (s *slot) upstreamVersionMask(u *upstream, mask uint32) {
	s.mu.Lock()
	active := u == s.up
	if active {
		s.mask = mask
	}
	s.mu.Unlock()
	if active {
		s.pushVersionMask()
	}
}

func (s *slot) upstreamClosed(u *upstream, reason upstreamCloseReason, err error) {
	s.mu.Lock()
	st := s.state(u)
	st.closed, st.reason, st.closeErr = true, reason, err
	if u == s.up {
		s.up, s.lost = nil, u
		s.lostSince = s.srv.now()
	}
	idx, attached := st.poolIdx, st.attached
	s.mu.Unlock()
	s.srv.stats.upstreamDown(idx, attached, reason)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
