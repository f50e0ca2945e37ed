package proxy

import (
	"context"

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
}

// enqueue hands an accepted upstream-worthy share to the slot's submit loop without
// blocking the miner; a block candidate is never dropped.
func (s *slot) enqueue(p pendingShare) {
	if p.block {
		s.srv.log.Info().Str("hash", p.hash.String()).Str("worker", p.acct.name).Int("slot", s.index).Msg("block candidate")
		select {
		case s.blocks <- p:
		default:
			s.forward(&p)
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
			s.forward(&p)
			continue
		default:
		}
		select {
		case p := <-s.blocks:
			s.forward(&p)
		case p := <-s.shares:
			s.forward(&p)
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
			for _, p := range s.buffered {
				s.srv.stats.lost(lostShutdown, p.acct)
			}
			s.buffered = nil
			s.mu.Unlock()
			return
		}
	}
}

// forward submits p on the connection its job came from, or on a connection that
// resumed that session; while the slot has no upstream it is buffered for the resume
// window; otherwise it is counted lost with the reason.
func (s *slot) forward(p *pendingShare) {
	s.mu.Lock()
	u := p.rj.up
	if st := s.states[u]; st == nil || st.closed {
		switch {
		case s.up != nil && s.states[s.up].resumeOf == u:
			u = s.up
		case s.up == nil && s.lost == u:
			if len(s.buffered) < s.srv.cfg.maxBufferedShares() || p.block {
				s.buffered = append(s.buffered, *p)
				s.mu.Unlock()
				s.srv.stats.m.SharesBuffered.Inc()
				return
			}
			s.mu.Unlock()
			s.srv.stats.lost(lostBufferFull, p.acct)
			return
		default:
			s.mu.Unlock()
			s.srv.stats.lost(lostUpstreamChanged, p.acct)
			return
		}
	}
	worker := s.srv.cfg.Upstreams[s.states[u].poolIdx].User
	s.mu.Unlock()

	var en2 [2*stratum.MaxExtranonce2Size + 2*8]byte
	sub := stratum.Submit{
		Worker:         []byte(worker),
		JobID:          []byte(p.rj.upstreamID),
		Extranonce2:    p.rj.appendUpstreamExtranonce2(en2[:0], p.prefix[:s.prefixSize], p.en2[:p.en2Len]),
		NTime:          p.ntime,
		Nonce:          p.nonce,
		VersionBits:    p.vbits,
		HasVersionBits: p.hasVB,
	}
	acct, block, hash, diff := p.acct, p.block, p.hash, p.diff
	s.srv.stats.forwarded(acct)
	u.submit(sub.Worker, &sub, func(r submitResult) {
		s.srv.stats.upstreamResult(acct, r, diff)
		if block {
			s.srv.log.Info().Str("hash", hash.String()).Bool("accepted", r.Accepted).Msg("block candidate answered")
		}
	})
}
