package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// Why attach refuses an upstream.
var (
	errUpstreamGone       = errors.New("upstream closed before it could be attached")
	errExtranonceTooSmall = errors.New("upstream extranonce2 too small for the slot's miners")
)

// attach makes u (connected to pool poolIdx) the slot's upstream. The miners keep
// their prefixes and extranonce2 size; u's last job is relayed at once, clean, and
// a changed version mask reaches them at once. Shares buffered for a lost session
// go to u when it resumed that session, else they are counted lost.
//
// When u's extranonce2 cannot hold prefix + the miners' extranonce2, a fail-back
// (the slot still has a working upstream) is refused; otherwise the slot takes u's
// layout and closes its miners with CloseUpstreamIncompatible, so they subscribe
// again and get an extranonce2 that fits: a pool they cannot mine on is worse than
// a reconnect.
func (s *slot) attach(u *upstream, poolIdx int, failback bool) error {
	s.mu.Lock()
	if u.closed.Load() {
		s.mu.Unlock()
		return errUpstreamGone
	}
	var evict []*session
	if need := s.prefixSize + s.minerEn2; s.minerEn2 == 0 || u.Extranonce2Size < need {
		if s.minerEn2 != 0 && failback {
			s.mu.Unlock()
			return fmt.Errorf("%w: %d bytes, need %d", errExtranonceTooSmall, u.Extranonce2Size, need)
		}
		l, err := stratum.NewLayout(u.Extranonce1, u.Extranonce2Size, s.srv.cfg.prefixSize())
		if err != nil {
			s.mu.Unlock()
			return err
		}
		if s.minerEn2 != 0 {
			evict = s.snapshotMinersLocked(nil)
			s.log.Warn().Int("upstream_en2", u.Extranonce2Size).Int("need", need).Int("miners", len(evict)).
				Str("pool", s.srv.cfg.Upstreams[poolIdx].String()).
				Msg("upstream extranonce2 too small for this slot's miners; they must subscribe again")
		}
		s.prefixSize, s.minerEn2 = l.PrefixSize, l.MinerExtranonce2Size()
	}
	st := s.state(u)
	if st.difficulty == 0 {
		st.difficulty = u.difficulty()
	}
	// A connection that resumed the lost session takes the shares found on that
	// session's jobs. Resumed is the pool giving back the extranonce1 asked for;
	// the session id must come back too, since a restarted pool that counts its
	// extranonces from the same start hands out the same extranonce1 to a new
	// session that knows none of the old jobs.
	st.sess = u
	if lost := s.lost; lost != nil && u.Resumed && u.SessionID == lost.SessionID {
		if lst := s.states[lost]; lst != nil && lst.sess != nil && bytes.Equal(lst.en1, u.Extranonce1) {
			st.sess = lst.sess
		}
	}
	switched := s.attached && s.poolIdx != poolIdx
	st.poolIdx, st.attached = poolIdx, true
	for old, ost := range s.states {
		if old != u && old != s.up && old != s.lost && ost.closed {
			delete(s.states, old)
		}
	}
	s.up, s.poolIdx, s.attached = u, poolIdx, true
	s.lostSince = time.Time{}
	s.forceClean, s.fresh = true, true
	oldMask := s.mask
	s.mask = u.versionMask()
	mask := s.mask
	last, lastDiff := st.lastJob, st.lastDiff
	buffered := s.buffered
	s.buffered = nil
	s.mu.Unlock()

	s.srv.stats.upstreamUp(poolIdx)
	if switched {
		s.srv.stats.m.UpstreamSwitches.Inc()
		s.srv.stats.switched(poolIdx)
	}
	s.srv.stats.poolDifficulty(poolIdx, u.difficulty())
	s.srv.health.healthy(poolIdx)
	s.reauthorize(u)
	for _, m := range evict {
		m.c.close(CloseUpstreamIncompatible)
	}
	if mask != oldMask {
		s.pushVersionMask()
	}
	if last != nil {
		s.relay(u, last, lastDiff, false)
	}
	for i := range buffered {
		s.forward(&buffered[i])
	}
	return nil
}

// sessionEn1 returns u's extranonce1 as the slot last applied it (a set_extranonce
// changes it from the handshake's): what a resume of u's session gets back.
func (s *slot) sessionEn1(u *upstream) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.states[u]; st != nil {
		return st.en1
	}
	return u.Extranonce1
}

// pushVersionMask shrinks (or restores) every rolling miner's mask to the upstream's.
func (s *slot) pushVersionMask() {
	s.bcast.Lock() // in order with jobs, so no miner ends on a stale mask
	defer s.bcast.Unlock()
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

// state returns what the slot knows of u, creating it; mu must be held.
func (s *slot) state(u *upstream) *upState {
	st := s.states[u]
	if st == nil {
		st = &upState{en1: u.Extranonce1, en2Size: u.Extranonce2Size, difficulty: 1, sess: u}
		s.states[u] = st
	}
	return st
}

func (s *slot) upstreamJob(u *upstream, j *stratum.Job) {
	s.mu.Lock()
	st := s.state(u)
	active := u == s.up
	if st.hasNextEn {
		st.en1, st.en2Size = st.nextEn1, st.nextEn2Size
		st.nextEn1, st.hasNextEn = nil, false
		if active {
			s.forceClean = true // miners must drop work folded with the old one
		}
	}
	st.lastJob, st.lastDiff = j, st.difficulty
	diff, idx := st.lastDiff, st.poolIdx
	s.mu.Unlock()
	if active {
		s.srv.health.healthy(idx)
		s.relay(u, j, diff, false)
	}
}

func (s *slot) upstreamDifficulty(u *upstream, d float64) {
	s.mu.Lock()
	s.state(u).difficulty = d
	active, idx := u == s.up, s.poolIdx
	s.mu.Unlock()
	if active {
		s.srv.stats.poolDifficulty(idx, d)
	}
}

// upstreamExtranonce keeps a new extranonce for the pool's next job (which is then
// relayed clean, folding it): shares on the jobs sent before it still use the old
// one, as the pool checks them.
func (s *slot) upstreamExtranonce(u *upstream, en1 []byte, en2Size int) {
	s.mu.Lock()
	st := s.state(u)
	if s.minerEn2 != 0 && en2Size < s.prefixSize+s.minerEn2 {
		s.mu.Unlock()
		s.log.Warn().Int("upstream_en2", en2Size).Msg("set_extranonce leaves too little extranonce2; reconnecting")
		u.close(upstreamCloseIncompatible)
		return
	}
	st.nextEn1, st.nextEn2Size, st.hasNextEn = en1, en2Size, true
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

// upstreamClosed records the close. The active connection's loss opens the resume
// window; one never attached (a probe, or one refused) is forgotten at once.
func (s *slot) upstreamClosed(u *upstream, reason upstreamCloseReason, err error) {
	s.mu.Lock()
	st := s.state(u)
	st.closed, st.reason, st.closeErr = true, reason, err
	if u == s.up {
		s.up, s.lost = nil, u
		s.lostSince = s.srv.now()
		time.AfterFunc(s.srv.cfg.resumeWindow(), s.expireBuffered)
	}
	idx, attached := st.poolIdx, st.attached
	if !attached {
		delete(s.states, u)
	}
	for _, wa := range s.workers {
		delete(wa.ok, u)
	}
	s.mu.Unlock()
	s.srv.stats.upstreamDown(idx, attached, reason)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// expireBuffered counts as lost the shares still buffered once the resume window
// has passed with no upstream. Block candidates stay: only their own session can
// take them, and a late resume of it (any later dial asks for it) still may; the
// next attach or the shutdown settles them.
func (s *slot) expireBuffered() {
	s.mu.Lock()
	if s.up != nil || s.lostSince.IsZero() || s.inResumeWindowLocked() {
		s.mu.Unlock()
		return
	}
	var expired []pendingShare
	keep := s.buffered[:0]
	for _, p := range s.buffered {
		if p.block {
			keep = append(keep, p)
		} else {
			expired = append(expired, p)
		}
	}
	clear(s.buffered[len(keep):])
	s.buffered = keep
	s.mu.Unlock()
	for i := range expired {
		s.drop(&expired[i], lostUpstreamChanged)
	}
}
