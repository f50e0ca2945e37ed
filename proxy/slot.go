package proxy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/stratum"
)

// jobHistory is how many relayed jobs a slot remembers for mapping shares back to
// their upstream job; it must be at least Config.JobsPerMiner.
const jobHistory = 32

// errNoUpstream reports that a slot found no pool within the subscribe wait.
var errNoUpstream = errors.New("no upstream pool available")

// slot is up to Config.MinersPerUpstream miners sharing one upstream session at a
// time. It owns their extranonce prefixes (stable across upstream changes), relays
// the upstream's jobs in folded form, forwards their shares, and moves between pools
// on failure and fail-back without disconnecting them.
type slot struct {
	srv   *Server
	index int
	log   zerolog.Logger

	bcast sync.Mutex // serializes broadcasts, so miners see jobs in order

	mu         sync.Mutex
	up         *upstream // active connection; nil while none
	poolIdx    int       // the pool up belongs to
	states     map[*upstream]*upState
	prefixSize int // fixed for the slot's life
	minerEn2   int // fixed at the first upstream; 0 until then
	mask       uint32
	seq        uint64
	jobs       []*relayJob // newest last
	forceClean bool        // the next relayed job voids older ones (new upstream)
	miners     map[*session]struct{}
	prefixes   map[uint64]*session
	nextPrefix uint64
	ready      chan struct{} // closed when the first job is relayed
	readyOnce  sync.Once
	buffered   []pendingShare // shares waiting for an upstream (resume window)
	lost       *upstream      // the last active upstream that closed
	lostSince  time.Time      // when it closed; zero while an upstream is active

	shares chan pendingShare // forwarded shares, in order; bounded by MaxBufferedShares
	blocks chan pendingShare // block candidates, sent before any other share

	wake      chan struct{} // slot loop: upstream closed or fail-back due
	relayedAt time.Time     // when the last job went to the miners
}

// upState is what a slot knows of one upstream connection.
type upState struct {
	poolIdx    int
	en1        []byte
	en2Size    int
	difficulty float64 // pool difficulty for its next job
	lastJob    *stratum.Job
	lastDiff   float64 // the difficulty in force for lastJob
	closed     bool
	reason     upstreamCloseReason
	closeErr   error
	attached   bool      // was the slot's active connection
	resumeOf   *upstream // the connection this one resumed (same extranonce1)
}

func newSlot(srv *Server, index int) *slot {
	return &slot{
		srv:        srv,
		index:      index,
		log:        srv.log.With().Int("slot", index).Logger(),
		states:     make(map[*upstream]*upState),
		prefixSize: srv.cfg.prefixSize(),
		miners:     make(map[*session]struct{}),
		prefixes:   make(map[uint64]*session),
		ready:      make(chan struct{}),
		wake:       make(chan struct{}, 1),
		shares:     make(chan pendingShare, srv.cfg.maxBufferedShares()),
		blocks:     make(chan pendingShare, blockQueue),
	}
}

// capacity is how many miners the slot can hold.
func (s *slot) capacity() int {
	n := s.srv.cfg.minersPerUpstream()
	if max := 1 << (8 * uint(s.prefixSize)); n > max {
		n = max
	}
	return n
}

// full reports whether the slot holds as many miners as it may.
func (s *slot) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.miners) >= s.capacity()
}

// join attaches a subscribing miner, waiting up to SubscribeWait for the slot's first
// job. It returns the miner's prefix (its extranonce1), extranonce2 size, the version
// mask the upstream allows, and the current job.
func (s *slot) join(ctx context.Context, m *session) (prefix []byte, en2Size int, mask uint32, cur *relayJob, err error) {
	t := time.NewTimer(s.srv.cfg.subscribeWait())
	defer t.Stop()
	select {
	case <-s.ready:
	case <-t.C:
		return nil, 0, 0, nil, errNoUpstream
	case <-ctx.Done():
		return nil, 0, 0, nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.miners) >= s.capacity() {
		return nil, 0, 0, nil, errSlotFull
	}
	n := s.nextPrefix
	for s.prefixes[n%uint64(1<<(8*uint(s.prefixSize)))] != nil {
		n++
	}
	n %= uint64(1 << (8 * uint(s.prefixSize)))
	s.nextPrefix = n + 1
	s.prefixes[n] = m
	s.miners[m] = struct{}{}
	m.prefixNum = n
	prefix = stratum.Layout{PrefixSize: s.prefixSize}.AppendPrefix(nil, n)
	return prefix, s.minerEn2, s.mask, s.latestLocked(), nil
}

var errSlotFull = errors.New("slot full")

// leave detaches a miner.
func (s *slot) leave(m *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.miners[m]; !ok {
		return
	}
	delete(s.miners, m)
	delete(s.prefixes, m.prefixNum)
}

func (s *slot) latestLocked() *relayJob {
	if len(s.jobs) == 0 {
		return nil
	}
	return s.jobs[len(s.jobs)-1]
}

// relayFor finds the relay job whose downstream form is j.
func (s *slot) relayFor(j *stratum.Job) *relayJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.jobs) - 1; i >= 0; i-- {
		if s.jobs[i].job == j {
			return s.jobs[i]
		}
	}
	return nil
}

// snapshotMiners returns the miners to deliver to; mu must be held.
func (s *slot) snapshotMinersLocked(dst []*session) []*session {
	for m := range s.miners {
		dst = append(dst, m)
	}
	return dst
}

// relay folds upstream job j and sends it to every miner of the slot.
func (s *slot) relay(u *upstream, j *stratum.Job, diff float64, refresh bool) {
	s.bcast.Lock()
	defer s.bcast.Unlock()
	s.mu.Lock()
	st := s.states[u]
	if u != s.up || st == nil || st.closed {
		s.mu.Unlock()
		return
	}
	s.seq++
	var rj *relayJob
	var err error
	if refresh {
		last := s.latestLocked()
		if last == nil || last.up != u {
			s.mu.Unlock()
			return
		}
		rj = last.refreshed(s.seq, uint32(s.srv.now().Unix()))
	} else {
		clean := j.Clean || s.forceClean
		rj, err = newRelayJob(j, u, s.seq, st.en1, st.en2Size, s.prefixSize, s.minerEn2, diff, clean)
		if err != nil {
			s.mu.Unlock()
			s.log.Warn().Err(err).Str("job", j.ID).Msg("upstream job refused")
			return
		}
		s.forceClean = false
	}
	if rj.job.Clean {
		s.jobs = s.jobs[:0]
	}
	if len(s.jobs) == jobHistory {
		copy(s.jobs, s.jobs[1:])
		s.jobs = s.jobs[:jobHistory-1]
	}
	s.jobs = append(s.jobs, rj)
	s.relayedAt = s.srv.now()
	miners := s.snapshotMinersLocked(s.srv.minerScratch(len(s.miners)))
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })

	start := s.srv.now()
	for _, m := range miners {
		m.deliverJob(rj, rj.notify)
	}
	s.srv.stats.observeFanout(len(miners), s.srv.now().Sub(start))
	s.srv.releaseMinerScratch(miners)
}

// lostSession is what a slot remembers of the upstream it just lost, to resume it.
type lostSession struct {
	pool int
	sid  string
	en1  []byte
}

// run keeps the slot connected to the best pool it can reach until ctx ends.
func (s *slot) run(ctx context.Context) {
	from := 0
	var resume *lostSession
	redirect := map[int]string{} // pool → address a client.reconnect sent us to
	for ctx.Err() == nil {
		i, wait := s.srv.health.pick(from)
		var sess *lostSession
		if resume != nil && s.sinceLost() < s.srv.cfg.resumeWindow() {
			i, wait, sess = resume.pool, 0, resume // try the lost pool once, resuming
		}
		resume = nil
		if i < 0 {
			from = 0
			if !sleepCtx(ctx, wait) {
				break
			}
			continue
		}
		u, err := s.connect(ctx, i, sess, redirect[i])
		if err != nil {
			delete(redirect, i)
			s.srv.health.failed(i, err.Error())
			s.log.Warn().Err(err).Str("pool", s.srv.cfg.Upstreams[i].String()).Msg("upstream connect failed")
			from = i + 1
			continue
		}
		from = 0
		end := s.serve(ctx, u, i)
		if ctx.Err() != nil {
			break
		}
		switch {
		case end.redirect != nil:
			// client.reconnect: obeyed for this upstream only, never relayed to miners.
			redirect[end.pool] = end.redirect.addr(s.srv.cfg.Upstreams[end.pool].Addr)
			resume = &lostSession{pool: end.pool, sid: end.u.SessionID, en1: end.u.Extranonce1}
			sleepCtx(ctx, end.redirect.Wait)
		case end.failed:
			s.srv.health.failed(end.pool, end.reason.String())
			resume = &lostSession{pool: end.pool, sid: end.u.SessionID, en1: end.u.Extranonce1}
		}
	}
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	if up != nil {
		up.close(upstreamCloseShutdown)
	}
}

// sinceLost returns how long the slot has been without an upstream (0 if it has one).
func (s *slot) sinceLost() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lostSince.IsZero() {
		return 0
	}
	return s.srv.now().Sub(s.lostSince)
}

// connect dials pool i (at addr when a client.reconnect moved it), resuming the lost
// session when set.
func (s *slot) connect(ctx context.Context, i int, resume *lostSession, addr string) (*upstream, error) {
	cfg := s.srv.upstreamConfig(i)
	if addr != "" {
		cfg.Pool.Addr = addr
	}
	timeout := s.srv.cfg.dialTimeout()
	if resume != nil {
		cfg.SessionID, cfg.ResumeExtranonce1 = resume.sid, resume.en1
		timeout = min(timeout, s.srv.cfg.resumeWindow())
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return dialUpstream(dctx, cfg, s)
}

// serveEnd is how a slot's time on an upstream ended.
type serveEnd struct {
	u        *upstream
	pool     int
	failed   bool // count it against the pool's health
	reason   upstreamCloseReason
	redirect *upstreamReconnect // the pool sent client.reconnect
}

// serve attaches u as the slot's upstream until it closes or ctx ends, failing back
// to a better pool once one has been healthy for FailbackAfter.
func (s *slot) serve(ctx context.Context, u *upstream, poolIdx int) serveEnd {
	if !s.attach(u, poolIdx) {
		u.close(upstreamCloseIncompatible)
		return serveEnd{u: u, pool: poolIdx, failed: true, reason: upstreamCloseIncompatible}
	}
	failback := time.NewTicker(s.srv.cfg.failbackAfter() / 4)
	defer failback.Stop()
	refresh := time.NewTicker(s.srv.cfg.jobRefresh() / 4)
	defer refresh.Stop()
	var probe *prober
	defer func() {
		if probe != nil {
			probe.stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return serveEnd{u: u, pool: poolIdx}
		case <-s.wake:
			s.mu.Lock()
			st := s.states[u]
			var end serveEnd
			if st != nil && st.closed {
				end = serveEnd{u: u, pool: poolIdx, failed: st.reason.unhealthy(), reason: st.reason}
				end.redirect, _ = st.closeErr.(*upstreamReconnect)
			}
			s.mu.Unlock()
			if st != nil && st.closed {
				return end
			}
		case <-refresh.C:
			// Firmware stops hashing after 120 s without a job: resend quiet work.
			if s.srv.now().Sub(s.lastRelayed()) >= s.srv.cfg.jobRefresh() {
				s.relay(u, nil, 0, true)
			}
		case <-failback.C:
			if poolIdx == 0 {
				continue
			}
			if probe == nil {
				if i, _ := s.srv.health.pick(0); i >= 0 && i < poolIdx {
					probe = s.startProbe(ctx, i)
				}
				continue
			}
			if nu, idx, ok := probe.ready(s.srv.cfg.failbackAfter()); ok {
				probe = nil
				s.log.Info().Str("from", s.srv.cfg.Upstreams[poolIdx].String()).Str("to", s.srv.cfg.Upstreams[idx].String()).Msg("failing back")
				s.srv.stats.m.UpstreamSwitches.Inc()
				old := u
				if !s.attach(nu, idx) {
					nu.close(upstreamCloseIncompatible)
					continue
				}
				// Make before break: the old connection stays open long enough to
				// answer shares on its jobs.
				time.AfterFunc(s.srv.cfg.submitTimeout(), func() { old.close(upstreamCloseSwitched) })
				u, poolIdx = nu, idx
			} else if probe.isFailed() {
				probe = nil
			}
		}
	}
}

// lastRelayed returns when the slot last sent its miners a job.
func (s *slot) lastRelayed() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relayedAt
}

// pendingSubmits counts forwarded shares still waiting for a pool's answer.
func (s *slot) pendingSubmits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.buffered)
	for u, st := range s.states {
		if !st.closed {
			n += u.pendingCount()
		}
	}
	return n
}
