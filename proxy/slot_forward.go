package proxy

import (
	"context"
	"errors"

	"github.com/hashrelay/hashrelay/stratum"
)

// blockQueue is how many block candidates may wait for the submit loop; past it, a
// miner's reader submits its block itself rather than drop it.
const blockQueue = 64

// pendingShare is an accepted share that meets the upstream target, on its way to the
// pool.
type pendingShare struct {
	rj     *relayJob
	acct   *worker
	prefix [8]byte
	en2    [2 * stratum.MaxExtranonce2Size]byte // the miner's extranonce2, hex
	en2Len uint8
	ntime  uint32
	nonce  uint32
	vbits  uint32
	hasVB  bool
	block  bool
	hash   stratum.Hash
	diff   float64
	// resent is set on a block candidate whose connection closed before the pool
	// answered (err says how): it was counted forwarded, and is submitted again on
	// the resumed session. If it cannot be, it ends as that unanswered submit.
	resent bool
	err    error
}

// enqueue hands an accepted upstream-worthy share to the slot's submit loop without
// blocking the miner; a block candidate is never dropped.
//
// The queues hold pointers: a slot's queue is MaxBufferedShares long, and a channel
// of values would take that many shares' worth of memory (over half a megabyte per
// slot) before the first share; only shares meeting the pool's target come here.
func (s *slot) enqueue(v pendingShare) {
	p := &v
	if p.block {
		s.srv.log.Info().Str("hash", p.hash.String()).Str("worker", p.acct.name).Int("slot", s.index).Msg("block candidate")
		select {
		case s.blocks <- p:
		default:
			s.forward(p)
		}
		return
	}
	select {
	case s.shares <- p:
	default:
		s.srv.stats.lost(lostQueueFull, p.acct)
	}
}

// submitLoop forwards queued shares, block candidates first.
func (s *slot) submitLoop(ctx context.Context) {
	for {
		select {
		case p := <-s.blocks:
			s.forward(p)
			continue
		default:
		}
		select {
		case p := <-s.blocks:
			s.forward(p)
		case p := <-s.shares:
			s.forward(p)
		case <-ctx.Done():
			s.drainLost()
			return
		}
	}
}

// drainLost counts every share still queued at exit as lost.
func (s *slot) drainLost() {
	for {
		select {
		case p := <-s.blocks:
			s.srv.stats.lost(lostShutdown, p.acct)
		case p := <-s.shares:
			s.srv.stats.lost(lostShutdown, p.acct)
		default:
			s.mu.Lock()
			buffered := s.buffered
			s.buffered, s.stopped = nil, true
			s.mu.Unlock()
			for i := range buffered {
				s.drop(&buffered[i], lostShutdown)
			}
			return
		}
	}
}

// drop settles a share that will not be submitted: lost for reason, or, for one
// already forwarded once (resent), as the unanswered submit it was.
func (s *slot) drop(p *pendingShare, reason lostReason) {
	if p.resent {
		s.srv.stats.upstreamResult(p.acct, submitResult{Err: p.err}, p.diff, -1)
		return
	}
	s.srv.stats.lost(reason, p.acct)
}

// forward submits p on a live connection of the pool session its job came from:
// that connection, or one that resumed the session. While the session may still
// resume (the slot has no upstream and the resume window is open) it is buffered;
// a block candidate is buffered past the window too. Otherwise it is counted lost
// with the reason (a resent one, as the unanswered submit it was): a share is never
// dropped silently.
func (s *slot) forward(p *pendingShare) {
	s.mu.Lock()
	u := p.rj.up
	if !s.liveLocked(u) {
		u = nil
		if up := s.up; up != nil && s.liveLocked(up) && s.states[up].sess == p.rj.sess {
			u = up
		}
	}
	if u == nil {
		reason := lostUpstreamChanged
		switch {
		case s.resumableLocked(p.rj.sess) && (p.block || s.inResumeWindowLocked()):
			if p.block || len(s.buffered) < s.srv.cfg.maxBufferedShares() {
				s.buffered = append(s.buffered, *p)
				s.mu.Unlock()
				s.srv.stats.m.SharesBuffered.Inc()
				return
			}
			reason = lostBufferFull
		}
		s.mu.Unlock()
		s.drop(p, reason)
		return
	}
	pool := s.states[u].poolIdx
	worker := s.submitNameLocked(u, p.acct, pool)
	s.mu.Unlock()

	var en2 [2*stratum.MaxExtranonce2Size + 2*8]byte
	sub := stratum.Submit{
		Worker:         []byte(worker),
		JobID:          []byte(p.rj.upstreamID),
		Extranonce2:    p.rj.appendUpstreamExtranonce2(en2[:0], p.prefix[:p.rj.prefixSize], p.en2[:p.en2Len]),
		NTime:          p.ntime,
		Nonce:          p.nonce,
		VersionBits:    p.vbits,
		HasVersionBits: p.hasVB,
	}
	acct, block, hash, diff := p.acct, p.block, p.hash, p.diff
	if !p.resent {
		s.srv.stats.forwarded(acct)
	}
	var again pendingShare
	if block {
		again = *p
	}
	u.submit(sub.Worker, &sub, func(r submitResult) {
		if block && r.Err != nil && s.resubmitLater(&again, u, r.Err) {
			s.srv.log.Info().Str("hash", hash.String()).AnErr("error", r.Err).Msg("block candidate unanswered; held for the resumed session")
			return
		}
		s.srv.stats.upstreamResult(acct, r, diff, pool)
		if block {
			s.srv.log.Info().Str("hash", hash.String()).Bool("accepted", r.Accepted).AnErr("error", r.Err).Msg("block candidate answered")
		}
	})
}

// resubmitLater buffers a block candidate whose connection u closed under it before
// the pool answered (the pool may never have read it), to be submitted again when
// the session resumes: a duplicate block costs nothing, a missing one a block. It
// reports false when that cannot be: the submit timed out (the pool had it), the
// proxy closed u (shutdown, fail-back), or the slot is on another session already.
// Runs on whichever goroutine closed u; no lock of the slot is held there.
func (s *slot) resubmitLater(p *pendingShare, u *upstream, err error) bool {
	if !errors.Is(err, errUpstreamClosed) {
		return false
	}
	u.mu.Lock()
	reason := u.reason
	u.mu.Unlock()
	if !reason.unhealthy() && reason != upstreamCloseReconnect {
		return false
	}
	s.mu.Lock()
	if s.stopped || !s.resumableLocked(p.rj.sess) {
		s.mu.Unlock()
		return false
	}
	p.resent, p.err = true, err
	s.buffered = append(s.buffered, *p)
	s.mu.Unlock()
	s.srv.stats.m.SharesBuffered.Inc()
	return true
}

// liveLocked reports whether u is open and the slot has not seen it close; mu must
// be held.
func (s *slot) liveLocked(u *upstream) bool {
	st := s.states[u]
	return st != nil && !st.closed && !u.closed.Load()
}

// resumableLocked reports whether session sess is the one the slot has just lost
// (or is losing): the slot has no live upstream, and a resume of sess would bring
// its shares back. mu must be held.
func (s *slot) resumableLocked(sess *upstream) bool {
	last := s.up
	if last == nil {
		last = s.lost
	} else if s.liveLocked(last) {
		return false
	}
	if last == nil {
		return false
	}
	st := s.states[last]
	return st != nil && st.sess == sess
}
