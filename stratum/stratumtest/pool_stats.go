package stratumtest

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// CloseReason is why the pool closed a session.
type CloseReason uint8

// The close reasons.
const (
	closeNone        CloseReason = iota
	CloseClient                  // the miner closed the connection
	CloseReadError               // reading failed (reset, timeout)
	CloseProtocol                // a line that is not JSON (a TLS probe, garbage)
	CloseLineTooLong             // a line over the limit
	CloseWriteError              // writing failed or timed out
	CloseDropped                 // DropConnections
	CloseTakenOver               // a new connection resumed this session
	ClosePoolClosed              // Pool.Close
	closeReasonCount
)

// CloseReasonCount is the number of close reasons, for arrays indexed by CloseReason.
const CloseReasonCount = int(closeReasonCount)

var closeReasonNames = [...]string{
	closeNone:        "none",
	CloseClient:      "client_closed",
	CloseReadError:   "read_error",
	CloseProtocol:    "protocol_error",
	CloseLineTooLong: "line_too_long",
	CloseWriteError:  "write_error",
	CloseDropped:     "dropped",
	CloseTakenOver:   "taken_over",
	ClosePoolClosed:  "pool_closed",
}

// String returns a short snake_case name.
func (r CloseReason) String() string {
	if int(r) < len(closeReasonNames) {
		return closeReasonNames[r]
	}
	return "invalid"
}

// SubmitRecord is one mining.submit as the pool received and judged it.
type SubmitRecord struct {
	Time    time.Time
	Session string // session id
	Worker  string
	JobID   string
	// JobNTime is the ntime of the job the share was judged on (0 if unknown).
	JobNTime uint32
	// Extranonce2 is the hex text as sent.
	Extranonce2 string
	NTime       uint32
	Nonce       uint32
	// VersionBits is the 6th param; HasVersionBits tells whether it was sent.
	VersionBits    uint32
	HasVersionBits bool
	// Verdict is the check's verdict; Injected means a valid share answered with a
	// reject by RejectNext or RejectFraction.
	Verdict  stratum.Verdict
	Injected bool
	// Block reports that the hash met the job's network target.
	Block bool
	// Hash and Difficulty are set once the share was hashed.
	Hash       stratum.Hash
	Difficulty float64
}

// BlockCandidate is a share whose hash met the network target.
type BlockCandidate struct {
	Worker string
	JobID  string
	Hash   stratum.Hash
}

// WorkerStats counts one worker name's shares.
type WorkerStats struct {
	// Verdicts counts shares by the verdict they were answered with; an injected
	// reject counts in InjectedRejects, not VerdictAccepted.
	Verdicts        [stratum.VerdictCount]uint64
	InjectedRejects uint64
}

// Accepted returns the shares answered true.
func (w WorkerStats) Accepted() uint64 { return w.Verdicts[stratum.VerdictAccepted] }

// PoolStats is a snapshot of what a Pool saw.
type PoolStats struct {
	Connections       uint64 // connections accepted
	Sessions          int    // connections open now
	Subscribes        uint64 // mining.subscribe answered
	Resumes           uint64 // of which resumed an earlier session id
	Authorizes        uint64 // mining.authorize answered true
	AuthorizeFailures uint64 // mining.authorize answered false
	Jobs              uint64 // jobs made (whether or not sent)
	// Verdicts counts checked submits by the verdict they were answered with. A
	// valid share answered with an injected reject counts in InjectedRejects, not
	// in VerdictAccepted, so Verdicts[VerdictAccepted] is the shares answered true.
	Verdicts        [stratum.VerdictCount]uint64
	InjectedRejects uint64
	// Refused counts submits refused before any check: not subscribed, or a worker
	// not authorized on the connection.
	Refused uint64
	// Workers counts shares per worker name.
	Workers map[string]WorkerStats
	// BlockCandidates counts shares that met the network target; Blocks keeps the
	// most recent of them.
	BlockCandidates uint64
	Blocks          []BlockCandidate
	// Submits is the log of the most recent submits, oldest first, bounded by
	// PoolConfig.SubmitLogSize; SubmitsTotal counts every submit logged.
	Submits      []SubmitRecord
	SubmitsTotal uint64
	// Closes counts closed sessions by reason.
	Closes         [CloseReasonCount]uint64
	UnknownMethods uint64 // requests answered -32601
	ProtocolErrors uint64 // lines that did not decode
	// BytesIn and BytesOut count the bytes read from and written to every
	// session's socket.
	BytesIn, BytesOut uint64
}

// Accepted returns the shares answered true.
func (s PoolStats) Accepted() uint64 { return s.Verdicts[stratum.VerdictAccepted] }

// Rejected returns the checked shares answered with a reject, injected ones included.
func (s PoolStats) Rejected() uint64 {
	n := s.InjectedRejects
	for v, c := range s.Verdicts {
		if stratum.Verdict(v) != stratum.VerdictAccepted {
			n += c
		}
	}
	return n
}

// poolCounters accumulates PoolStats. Its methods are safe for concurrent use.
type poolCounters struct {
	mu      sync.Mutex
	s       PoolStats // Workers, Blocks and Submits kept below instead
	workers map[string]*WorkerStats
	blocks  []BlockCandidate // ring, maxBlockLog
	log     []SubmitRecord   // ring, logSize
	logNext int
	logSize int

	// Counted per read and per write, without the mutex.
	bytesIn, bytesOut atomic.Uint64
}

// countingReader counts the bytes read through it into n, once per Read (a
// batch of lines), not per line.
type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.n.Add(uint64(n))
	}
	return n, err
}

func (c *poolCounters) init(logSize int) {
	c.workers = make(map[string]*WorkerStats)
	c.logSize = logSize
}

func (c *poolCounters) connection() {
	c.mu.Lock()
	c.s.Connections++
	c.mu.Unlock()
}

func (c *poolCounters) jobMade() {
	c.mu.Lock()
	c.s.Jobs++
	c.mu.Unlock()
}

func (c *poolCounters) closed(r CloseReason) {
	c.mu.Lock()
	c.s.Closes[r]++
	c.mu.Unlock()
}

func (c *poolCounters) protocolError() {
	c.mu.Lock()
	c.s.ProtocolErrors++
	c.mu.Unlock()
}

func (c *poolCounters) unknownMethod() {
	c.mu.Lock()
	c.s.UnknownMethods++
	c.mu.Unlock()
}

func (c *poolCounters) subscribed(resumed bool) {
	c.mu.Lock()
	c.s.Subscribes++
	if resumed {
		c.s.Resumes++
	}
	c.mu.Unlock()
}

func (c *poolCounters) authorized(ok bool) {
	c.mu.Lock()
	if ok {
		c.s.Authorizes++
	} else {
		c.s.AuthorizeFailures++
	}
	c.mu.Unlock()
}

func (c *poolCounters) refused() {
	c.mu.Lock()
	c.s.Refused++
	c.mu.Unlock()
}

// submit counts one checked submit. s.mu must be held (for s.id).
func (c *poolCounters) submit(s *session, sub *stratum.Submit, job *stratum.Job, r stratum.Result, injected bool) {
	rec := SubmitRecord{
		Time:           time.Now(),
		Session:        s.id,
		Worker:         string(sub.Worker),
		JobID:          string(sub.JobID),
		Extranonce2:    string(sub.Extranonce2),
		NTime:          sub.NTime,
		Nonce:          sub.Nonce,
		VersionBits:    sub.VersionBits,
		HasVersionBits: sub.HasVersionBits,
		Verdict:        r.Verdict,
		Injected:       injected,
		Block:          r.Block,
		Hash:           r.Hash,
		Difficulty:     r.Difficulty,
	}
	if job != nil {
		rec.JobNTime = job.NTime
	}
	block := r.Block && (r.Verdict == stratum.VerdictAccepted || r.Verdict == stratum.VerdictLowDifficulty)

	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.workers[rec.Worker]
	if w == nil {
		w = new(WorkerStats)
		c.workers[rec.Worker] = w
	}
	if injected {
		c.s.InjectedRejects++
		w.InjectedRejects++
	} else {
		c.s.Verdicts[r.Verdict]++
		w.Verdicts[r.Verdict]++
	}
	if block {
		c.s.BlockCandidates++
		if len(c.blocks) == maxBlockLog {
			copy(c.blocks, c.blocks[1:])
			c.blocks = c.blocks[:maxBlockLog-1]
		}
		c.blocks = append(c.blocks, BlockCandidate{Worker: rec.Worker, JobID: rec.JobID, Hash: r.Hash})
	}
	c.s.SubmitsTotal++
	if c.logSize == 0 {
		return
	}
	if len(c.log) < c.logSize {
		c.log = append(c.log, rec)
		return
	}
	c.log[c.logNext] = rec
	c.logNext = (c.logNext + 1) % c.logSize
}

// snapshot returns a copy of the counters.
func (c *poolCounters) snapshot() PoolStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.s
	st.BytesIn, st.BytesOut = c.bytesIn.Load(), c.bytesOut.Load()
	st.Workers = make(map[string]WorkerStats, len(c.workers))
	for name, w := range c.workers {
		st.Workers[name] = *w
	}
	st.Blocks = append([]BlockCandidate(nil), c.blocks...)
	st.Submits = make([]SubmitRecord, 0, len(c.log))
	st.Submits = append(st.Submits, c.log[c.logNext:]...)
	st.Submits = append(st.Submits, c.log[:c.logNext]...)
	return st
}

// Stats returns a snapshot of the pool's counters and logs.
func (p *Pool) Stats() PoolStats {
	st := p.stats.snapshot()
	p.mu.Lock()
	st.Sessions = len(p.sessions)
	p.mu.Unlock()
	return st
}

// SessionInfo describes one live session.
type SessionInfo struct {
	ID          string // session id, as sent in the subscribe result
	Remote      string // the miner's address
	UserAgent   string // mining.subscribe's first param
	Subscribed  bool
	Extranonce1 []byte // for jobs sent from now on
	// ExtranonceSubscribe reports mining.extranonce.subscribe (or the BIP 310
	// subscribe-extranonce extension).
	ExtranonceSubscribe bool
	VersionRolling      bool
	VersionMask         uint32 // negotiated mask
	Difficulty          float64
	SuggestedDifficulty float64 // from mining.suggest_difficulty or suggest_target; 0 if none
	Workers             []string
	JobID               string // last job sent
	ClientVersion       string // answer to client.get_version (Pool.GetVersion)
	Pongs               uint64 // answers to mining.ping (Pool.Ping)
}

// Sessions returns a snapshot of the live sessions, in no particular order.
func (p *Pool) Sessions() []SessionInfo {
	list := p.snapshotSessions()
	out := make([]SessionInfo, 0, len(list))
	for _, s := range list {
		out = append(out, s.info())
	}
	return out
}
