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
	poolIdx    int       // the pool up (or the last active connection) belongs to
	attached   bool      // some connection has been active: poolIdx is meaningful
	states     map[*upstream]*upState
	prefixSize int // fixed until the slot must re-subscribe its miners (attach)
	minerEn2   int // set by the first upstream; 0 until then
	mask       uint32
	seq        uint64
	jobs       []*relayJob // newest last
	forceClean bool        // the next relayed job is sent clean (new upstream or extranonce)
	fresh      bool        // the next relayed job is a new connection's first: it voids no job of another
	miners     map[*session]struct{}
	prefixes   map[uint64]*session
	nextPrefix uint64
	ready      chan struct{} // closed when the first job is relayed
	readyOnce  sync.Once
	buffered   []pendingShare         // shares waiting for their session to resume
	stopped    bool                   // drainLost has run: nothing may be buffered
	workers    map[string]*workerAuth // identity modes: names authorized upstream (identity.go)
	lost       *upstream              // the last active upstream that closed
	lostSince  time.Time              // when it closed; zero while an upstream is active

	shares chan *pendingShare // forwarded shares, in order; bounded by MaxBufferedShares
	blocks chan *pendingShare // block candidates, sent before any other share

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
	sess       *upstream // the session's first connection: itself unless it resumed one
	// A mining.set_extranonce applies from the pool's next job (nextEn1 then
	// replaces en1): the jobs sent before it keep the extranonce1 they were sent with.
	nextEn1     []byte
	nextEn2Size int
	hasNextEn   bool
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
		shares:     make(chan *pendingShare, srv.cfg.maxBufferedShares()),
		blocks:     make(chan *pendingShare, blockQueue),
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
		// A connection's first job is clean for that connection only (a pool sends
		// every new subscriber a clean job): it says nothing of the jobs of the
		// connection before it, whose shares still go there or are counted lost.
		clean, voids := j.Clean || s.forceClean, j.Clean && !s.fresh
		rj, err = newRelayJob(j, u, s.seq, st.en1, st.en2Size, s.prefixSize, s.minerEn2, diff, clean, voids)
		if err != nil {
			s.mu.Unlock()
			s.log.Warn().Err(err).Str("job", j.ID).Msg("upstream job refused")
			return
		}
		if st.sess != nil {
			rj.sess = st.sess
		}
		s.forceClean, s.fresh = false, false
	}
	s.addJobLocked(rj)
	miners := s.snapshotMinersLocked(s.srv.minerScratch(len(s.miners)))
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })

	start := s.srv.now()
	for _, m := range miners {
		m.deliverJob(rj, rj.notify)
		s.srv.fl.throttle() // bounds the outbound buffers a fan-out holds at once
	}
	s.srv.stats.observeFanout(len(miners), s.srv.now().Sub(start))
	s.srv.releaseMinerScratch(miners)
}

// addJobLocked records a job about to be relayed: a clean one voids the history,
// which is bounded by jobHistory. mu must be held.
func (s *slot) addJobLocked(rj *relayJob) {
	if rj.job.Clean {
		s.jobs = s.jobs[:0]
	}
	if len(s.jobs) == jobHistory {
		copy(s.jobs, s.jobs[1:])
		s.jobs = s.jobs[:jobHistory-1]
	}
	s.jobs = append(s.jobs, rj)
	s.relayedAt = s.srv.now()
}

// lostSession is what a slot remembers of the upstream it just lost, to resume it.
type lostSession struct {
	pool  int
	sid   string
	en1   []byte
	tried bool // the immediate attempt (past the back-off) was made
}

// run keeps the slot connected to the best pool it can reach until ctx ends.
//
// When the active connection is lost, the pool is redialed at once with the lost
// session's id, back-off or not, provided that is its first failure since it was
// last stable and the resume window is open: a pool that drops connections one by
// one (or restarts) gets its sessions back within milliseconds. That happens once;
// after it the back-off rules, and later dials to that pool still ask for the
// session, which only helps (a pool that does not know it gives a new one).
func (s *slot) run(ctx context.Context) {
	from := 0
	var resume *lostSession
	redirect := map[int]string{} // pool → address a client.reconnect sent us to
	for ctx.Err() == nil {
		i, wait := s.srv.health.pick(from)
		var sess *lostSession
		fast := false
		if resume != nil {
			if !resume.tried && s.inResumeWindow() && s.srv.health.firstFailure(resume.pool) {
				i, wait, fast = resume.pool, 0, true
				resume.tried = true
			}
			if i == resume.pool {
				sess = resume
			}
		}
		if i < 0 {
			from = 0
			if !sleepCtx(ctx, wait) {
				break
			}
			continue
		}
		u, err := s.connect(ctx, i, sess, fast, redirect[i])
		if err != nil {
			delete(redirect, i)
			s.srv.health.failed(i, err.Error())
			s.log.Warn().Err(err).Str("pool", s.srv.cfg.Upstreams[i].String()).Msg("upstream connect failed")
			from = i + 1
			continue
		}
		from, resume = 0, nil
		end := s.serve(ctx, u, i)
		if ctx.Err() != nil {
			break
		}
		if end.failed {
			s.srv.health.failed(end.pool, end.reason.String())
		}
		if end.attached && (end.failed || end.redirect != nil) {
			resume = &lostSession{pool: end.pool, sid: end.u.SessionID, en1: s.sessionEn1(end.u)}
		}
		if end.redirect != nil {
			// client.reconnect: obeyed for this upstream only, never relayed to
			// miners. The wait is bounded: miners have no work meanwhile.
			redirect[end.pool] = end.redirect.addr(s.srv.cfg.Upstreams[end.pool].Addr)
			if !sleepCtx(ctx, min(end.redirect.Wait, s.srv.cfg.backoffMax())) {
				break
			}
		}
	}
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	if up != nil {
		up.close(upstreamCloseShutdown)
	}
}

// inResumeWindow reports whether the slot lost its active connection less than
// ResumeWindow ago (or has it still, closed but not yet reported).
func (s *slot) inResumeWindow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inResumeWindowLocked()
}

// inResumeWindowLocked is inResumeWindow; mu must be held.
func (s *slot) inResumeWindowLocked() bool {
	if s.lostSince.IsZero() {
		return s.up != nil // closed but not yet reported: the window has not begun
	}
	return s.srv.now().Sub(s.lostSince) < s.srv.cfg.resumeWindow()
}

// connect dials pool i (at addr when a client.reconnect moved it), asking to resume
// the lost session when set; fast bounds the attempt by the resume window.
func (s *slot) connect(ctx context.Context, i int, resume *lostSession, fast bool, addr string) (*upstream, error) {
	cfg := s.srv.upstreamConfig(i)
	if addr != "" {
		cfg.Pool.Addr = addr
	}
	timeout := s.srv.cfg.dialTimeout()
	if resume != nil {
		cfg.SessionID, cfg.ResumeExtranonce1 = resume.sid, resume.en1
	}
	if fast {
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
	attached bool // u was the slot's active connection (it has a session to resume)
	failed   bool // count it against the pool's health
	reason   upstreamCloseReason
	redirect *upstreamReconnect // the pool sent client.reconnect
}

// serve attaches u as the slot's upstream until it closes or ctx ends, failing back
// to a better pool once one has been healthy for FailbackAfter.
func (s *slot) serve(ctx context.Context, u *upstream, poolIdx int) serveEnd {
	if err := s.attach(u, poolIdx, false); err != nil {
		if errors.Is(err, errUpstreamGone) {
			return serveEnd{u: u, pool: poolIdx, failed: true, reason: upstreamClosePool}
		}
		u.close(upstreamCloseIncompatible)
		s.log.Warn().Err(err).Str("pool", s.srv.cfg.Upstreams[poolIdx].String()).Msg("upstream not attached")
		return serveEnd{u: u, pool: poolIdx, failed: true, reason: upstreamCloseIncompatible}
	}
	failback := time.NewTicker(max(s.srv.cfg.failbackAfter()/4, time.Millisecond))
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
			return serveEnd{u: u, pool: poolIdx, attached: true}
		case <-s.wake:
			s.mu.Lock()
			st := s.states[u]
			closed := st != nil && st.closed
			var end serveEnd
			if closed {
				end = serveEnd{u: u, pool: poolIdx, attached: true, failed: st.reason.unhealthy(), reason: st.reason}
				end.redirect, _ = st.closeErr.(*upstreamReconnect)
			}
			s.mu.Unlock()
			if closed {
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
				if err := s.attach(nu, idx, true); err != nil {
					// Stay: count it, so the pool is probed again only after a back-off.
					nu.close(upstreamCloseIncompatible)
					s.srv.health.failed(idx, err.Error())
					s.log.Warn().Err(err).Str("pool", s.srv.cfg.Upstreams[idx].String()).Msg("not failing back")
					continue
				}
				s.log.Info().Str("from", s.srv.cfg.Upstreams[poolIdx].String()).Str("to", s.srv.cfg.Upstreams[idx].String()).Msg("failed back")
				// Make before break: the old connection stays open long enough to
				// answer shares on its jobs.
				old := u
				time.AfterFunc(s.srv.cfg.submitTimeout(), func() { old.close(upstreamCloseSwitched) })
				u, poolIdx = nu, idx
			} else if probe.isFailed() {
				s.srv.health.failed(probe.idx, "fail-back probe: "+probe.failure())
				probe.stop()
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

// pendingSubmits counts forwarded shares still waiting for a pool's answer, and
// buffered ones while their session may still resume.
func (s *slot) pendingSubmits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if s.inResumeWindowLocked() {
		n = len(s.buffered)
	}
	for u, st := range s.states {
		if !st.closed {
			n += u.pendingCount()
		}
	}
	return n
}
