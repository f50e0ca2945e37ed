package stratumtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// Defaults and limits of the pool.
const (
	// DefaultVersionMask is the pool's version-rolling mask when none is configured:
	// the BIP 320 general-purpose bits 13..28.
	DefaultVersionMask = 0x1fffe000
	// DefaultNBits is the synthetic jobs' nbits when none is configured: mainnet's
	// difficulty 1, which tiny share difficulties practically never meet. Use
	// RegtestNBits to see block candidates.
	DefaultNBits = 0x1d00ffff
	// RegtestNBits is regtest's nbits (target just under 2^255): nearly every hash
	// is a block candidate.
	RegtestNBits = 0x207fffff
	// DefaultSubmitLogSize is how many submits PoolStats.Submits keeps by default.
	DefaultSubmitLogSize = 1024
	// DefaultTransactions is how many random txids a synthetic job's merkle branch
	// covers by default (7 give a 3-hash branch).
	DefaultTransactions = 7
	// MaxTransactions bounds PoolConfig.Transactions (a 12-hash branch).
	MaxTransactions = 4096

	defaultExtranonce1Size = 4
	defaultExtranonce2Size = 8

	// sessionJobs is how many jobs each session keeps for share checks.
	sessionJobs = 16
	// maxRecentSessions bounds the disconnected sessions remembered for resume.
	maxRecentSessions = 1024
	// maxBlockLog bounds the block candidates PoolStats keeps.
	maxBlockLog = 256
	// maxLineSize bounds a line from a miner.
	maxLineSize = stratum.DefaultMaxLineSize
	// writeTimeout bounds each write to a socket.
	writeTimeout = 5 * time.Second
	// maxPendingProbes bounds the pool's own requests awaiting an answer per session.
	maxPendingProbes = 64
	// acceptBackoffMin and acceptBackoffMax bound the pause after an accept error.
	acceptBackoffMin = 10 * time.Millisecond
	acceptBackoffMax = time.Second
)

// RejectForm is how the pool words a rejected share. Pools in the wild use three.
type RejectForm uint8

// The reject forms.
const (
	// RejectArray is the V1 error array: "result":null,"error":[23,"Low difficulty share",null].
	RejectArray RejectForm = iota
	// RejectString is an error string: "result":null,"error":"Low difficulty share".
	RejectString
	// RejectCKPool is ckpool's form: "result":false,"error":null,"reject-reason":"Above target".
	RejectCKPool
)

// PoolConfig configures a Pool. The zero value is a working pool at difficulty 1.
type PoolConfig struct {
	// Addr is the address to listen on; default "127.0.0.1:0".
	Addr string
	// Difficulty is the share difficulty sent after subscribe, fractions allowed;
	// default 1.
	Difficulty float64
	// Extranonce1Size is the size of each session's extranonce1; default 4.
	Extranonce1Size int
	// Extranonce1, when set, is handed to every session instead of a unique one (so
	// sessions share it): it reproduces a recorded share byte for byte. Its length
	// overrides Extranonce1Size.
	Extranonce1 []byte
	// Extranonce2Size is the extranonce2 size given to miners; default 8.
	Extranonce2Size int
	// VersionMask is the pool's version-rolling mask; default DefaultVersionMask.
	VersionMask uint32
	// NoVersionRolling refuses version rolling: mining.configure gets
	// "version-rolling":false and any version bits are rejected.
	NoVersionRolling bool
	// JobInterval, when above zero, sends a new non-clean job on each tick; default
	// 0, no periodic jobs.
	JobInterval time.Duration
	// Jobs, when set, are served in turn instead of synthetic jobs (wrapping
	// around), with their ids kept, Clean set as each send requires: the first at
	// start, the next at each SendJob, NewBlock or tick.
	Jobs []*stratum.Job
	// NBits is the synthetic jobs' nbits; default DefaultNBits.
	NBits uint32
	// Transactions is how many random txids a synthetic job's merkle branch covers
	// (at most MaxTransactions); default DefaultTransactions, negative for none (an
	// empty branch).
	Transactions int
	// Authorize, when set, decides each mining.authorize (it is called from many
	// sessions at once); default: accept anyone.
	Authorize func(user, password string) bool
	// RejectForm is how rejected shares are answered; default RejectArray.
	RejectForm RejectForm
	// SubmitLogSize is how many recent submits PoolStats.Submits keeps; default
	// DefaultSubmitLogSize, negative for none.
	SubmitLogSize int
	// Seed seeds the pool's randomness (jobs, session ids, RejectFraction), so two
	// pools with one seed make the same jobs; default 0: from the clock.
	Seed uint64
}

func (c *PoolConfig) addr() string {
	if c.Addr == "" {
		return "127.0.0.1:0"
	}
	return c.Addr
}

func (c *PoolConfig) difficulty() float64 {
	if c.Difficulty <= 0 {
		return 1
	}
	return c.Difficulty
}

func (c *PoolConfig) extranonce1Size() int {
	switch {
	case c.Extranonce1 != nil:
		return len(c.Extranonce1)
	case c.Extranonce1Size <= 0:
		return defaultExtranonce1Size
	}
	return c.Extranonce1Size
}

func (c *PoolConfig) extranonce2Size() int {
	if c.Extranonce2Size <= 0 {
		return defaultExtranonce2Size
	}
	return c.Extranonce2Size
}

func (c *PoolConfig) versionMask() uint32 {
	switch {
	case c.NoVersionRolling:
		return 0
	case c.VersionMask == 0:
		return DefaultVersionMask
	}
	return c.VersionMask
}

func (c *PoolConfig) submitLogSize() int {
	switch {
	case c.SubmitLogSize < 0:
		return 0
	case c.SubmitLogSize == 0:
		return DefaultSubmitLogSize
	}
	return c.SubmitLogSize
}

// Pool is a simulated Stratum V1 pool serving on a loopback socket. Its methods are
// safe for concurrent use.
type Pool struct {
	cfg PoolConfig
	ln  net.Listener
	wg  sync.WaitGroup

	// ctl serializes the operations that write to every session (jobs and faults),
	// so all sessions see them in one order. Taken before mu or any session's mu.
	ctl sync.Mutex

	mu         sync.Mutex // guards the fields below
	closed     bool
	sessions   map[*session]struct{}
	job        *stratum.Job // current job as last broadcast
	cleanJob   *stratum.Job // the same job with Clean set, for new subscribers
	jobSeq     uint64       // counts setJobLocked: which send a session last got
	difficulty float64
	target     stratum.Target
	mask       uint32 // pool's version mask, 0 when rolling is off
	jobs       jobSource
	rng        *rand.Rand
	idPrefix   uint32 // random per pool, so session ids differ between pools
	sessionSeq uint64
	en1Seq     uint64
	probeSeq   uint64
	recent     map[string][]byte // disconnected session id -> extranonce1
	recentIDs  []string          // FIFO of recent's keys
	stall      chan struct{}     // non-nil while stalled; closed on Resume
	stallTimer *time.Timer
	rejectNext int
	rejectFrac float64
	reuseIDs   bool   // ReuseJobIDs: new jobs keep the last job's id
	liveJobs   int    // jobs a share may still name: sent since the last clean job, at most sessionJobs
	forgotSeq  uint64 // jobSeq at the last ForgetJobs: jobs up to it are unknown

	stats poolCounters // has its own mutex
	done  chan struct{}
}

// NewPool starts a pool listening on cfg.Addr (default 127.0.0.1:0) and serving.
// It fails when the address cannot be bound, the difficulty or a fixed job is
// invalid, or the extranonce sizes are out of range.
func NewPool(cfg PoolConfig) (*Pool, error) {
	cfg.Extranonce1 = bytes.Clone(cfg.Extranonce1)
	en1Size, en2Size := cfg.extranonce1Size(), cfg.extranonce2Size()
	if en1Size > stratum.MaxExtranonce1Size || en2Size > stratum.MaxExtranonce2Size {
		return nil, fmt.Errorf("stratumtest: extranonce sizes %d and %d exceed %d and %d",
			en1Size, en2Size, stratum.MaxExtranonce1Size, stratum.MaxExtranonce2Size)
	}
	target, err := stratum.TargetFromDifficulty(cfg.difficulty())
	if err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var src jobSource
	if len(cfg.Jobs) > 0 {
		fixed, err := newFixedJobs(cfg.Jobs)
		if err != nil {
			return nil, err
		}
		src = fixed
	} else {
		synth, err := newSyntheticJobs(rng, nbitsOr(cfg.NBits), cfg.Transactions, en1Size+en2Size)
		if err != nil {
			return nil, err
		}
		src = synth
	}
	ln, err := net.Listen("tcp", cfg.addr())
	if err != nil {
		return nil, err
	}
	p := &Pool{
		cfg:        cfg,
		ln:         ln,
		sessions:   make(map[*session]struct{}),
		difficulty: cfg.difficulty(),
		target:     target,
		mask:       cfg.versionMask(),
		jobs:       src,
		rng:        rng,
		idPrefix:   rng.Uint32(),
		recent:     make(map[string][]byte),
		done:       make(chan struct{}),
	}
	p.stats.init(cfg.submitLogSize())
	p.setJobLocked(src.next(true))
	p.goroutine(p.acceptLoop)
	if cfg.JobInterval > 0 {
		p.goroutine(p.jobLoop)
	}
	return p, nil
}

func nbitsOr(n uint32) uint32 {
	if n == 0 {
		return DefaultNBits
	}
	return n
}

// Addr returns the address the pool listens on, as host:port.
func (p *Pool) Addr() string { return p.ln.Addr().String() }

// URL returns the pool's address as "stratum+tcp://host:port".
func (p *Pool) URL() string { return "stratum+tcp://" + p.Addr() }

// Port returns the port the pool listens on.
func (p *Pool) Port() int {
	if a, ok := p.ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Close stops the pool: it closes the listener, then every session, and waits for
// all of the pool's goroutines to return. It is safe to call more than once.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.done)
	if p.stallTimer != nil {
		p.stallTimer.Stop()
	}
	sessions := p.sessionsLocked()
	p.mu.Unlock()

	err := p.ln.Close()
	for _, s := range sessions {
		s.close(ClosePoolClosed)
	}
	p.wg.Wait()
	return err
}

// goroutine runs f in a goroutine counted by p.wg, unless the pool is closing.
func (p *Pool) goroutine(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

// acceptLoop accepts connections until the listener is closed.
func (p *Pool) acceptLoop() {
	backoff := acceptBackoffMin
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-time.After(backoff):
			case <-p.done:
				return
			}
			backoff = min(2*backoff, acceptBackoffMax)
			continue
		}
		backoff = acceptBackoffMin
		s := newSession(p, conn)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			conn.Close()
			return
		}
		p.sessions[s] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		p.stats.connection()
		go func() {
			defer p.wg.Done()
			s.readLoop()
		}()
	}
}

// jobLoop sends a non-clean job every JobInterval.
func (p *Pool) jobLoop() {
	t := time.NewTicker(p.cfg.JobInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.SendJob()
		case <-p.done:
			return
		}
	}
}

// sessionsLocked returns the live sessions. p.mu must be held.
func (p *Pool) sessionsLocked() []*session {
	list := make([]*session, 0, len(p.sessions))
	for s := range p.sessions {
		list = append(list, s)
	}
	return list
}

// snapshotSessions returns the live sessions.
func (p *Pool) snapshotSessions() []*session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessionsLocked()
}

// setJobLocked makes j the current job. p.mu must be held, or p not yet shared.
func (p *Pool) setJobLocked(j *stratum.Job) {
	p.jobSeq++
	p.job = j
	if j.Clean {
		p.liveJobs = 1
		p.cleanJob = j
	} else {
		p.liveJobs = min(p.liveJobs+1, sessionJobs)
		c := *j
		c.Clean = true
		p.cleanJob = &c
	}
	p.stats.jobMade()
}

// CurrentJob returns the job most recently sent (or about to be sent) to miners.
func (p *Pool) CurrentJob() *stratum.Job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.job
}

// Difficulty returns the difficulty new jobs are sent with.
func (p *Pool) Difficulty() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.difficulty
}

// newExtranonce1 returns a fresh extranonce1: unique per call (a counter) unless
// forced by the config. p.mu must be held.
func (p *Pool) newExtranonce1Locked(forced bool) []byte {
	if forced && p.cfg.Extranonce1 != nil {
		return append([]byte(nil), p.cfg.Extranonce1...)
	}
	p.en1Seq++
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], p.en1Seq)
	size := p.cfg.extranonce1Size()
	en1 := make([]byte, size)
	if size <= 8 {
		copy(en1, b[8-size:])
	} else {
		copy(en1[size-8:], b[:])
	}
	return en1
}

// subscribeLocked assigns a session id and extranonce1 to s, resuming the session
// named by resume when it is recent or live (a live one is taken over and returned
// so the caller can close it). p.mu must be held.
func (p *Pool) subscribeLocked(s *session, resume string) (id string, en1 []byte, resumed bool, takeover *session) {
	if resume != "" {
		if old, ok := p.recent[resume]; ok {
			delete(p.recent, resume)
			id, en1, resumed = resume, old, true
		} else {
			for other := range p.sessions {
				if other != s && other.pid == resume {
					other.takenOver = true
					id, en1, resumed, takeover = resume, other.pen1, true, other
					break
				}
			}
		}
	}
	if !resumed {
		p.sessionSeq++
		id, en1 = fmt.Sprintf("%08x%08x", p.idPrefix, p.sessionSeq), p.newExtranonce1Locked(true)
	}
	s.pid, s.pen1 = id, en1
	return id, en1, resumed, takeover
}

// forget removes a closed session and, unless it was taken over or the pool is
// closing, remembers its id and extranonce1 for resume.
func (p *Pool) forget(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sessions, s)
	if s.takenOver || s.pid == "" || p.closed {
		return
	}
	if _, ok := p.recent[s.pid]; !ok {
		p.recentIDs = append(p.recentIDs, s.pid)
	}
	p.recent[s.pid] = s.pen1
	for len(p.recentIDs) > maxRecentSessions {
		delete(p.recent, p.recentIDs[0])
		p.recentIDs = p.recentIDs[1:]
	}
}

// stallGate returns a channel to wait on while the pool is stalled, or nil.
func (p *Pool) stallGate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stall
}

// injectReject reports whether the next valid share should be answered with a
// reject (RejectNext, RejectFraction).
func (p *Pool) injectReject() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rejectNext > 0 {
		p.rejectNext--
		return true
	}
	return p.rejectFrac > 0 && p.rng.Float64() < p.rejectFrac
}

// nextProbeID returns an id for a request the pool originates.
func (p *Pool) nextProbeID() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probeSeq++
	return p.probeSeq
}

// formatJobID formats a synthetic job id.
func formatJobID(seq uint64) string { return strconv.FormatUint(seq, 16) }
