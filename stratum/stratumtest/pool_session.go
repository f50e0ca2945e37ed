package stratumtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// maxWorkersPerSession bounds the worker names one connection may authorize.
const maxWorkersPerSession = 16

// sentJob is a job as sent to one session, with the extranonce1 its shares use.
type sentJob struct {
	job *stratum.Job
	en1 []byte
}

// session is one miner connection to the pool.
type session struct {
	p      *Pool
	conn   net.Conn
	remote string
	closed atomic.Bool
	done   chan struct{} // closed by close

	// Guarded by p.mu: the session id and current extranonce1, for resume.
	pid       string
	pen1      []byte
	takenOver bool

	mu         sync.Mutex // guards the fields below and every write to conn
	out        []byte     // replies not yet flushed
	subscribed bool
	id         string
	agent      string
	en1        []byte // extranonce1 of jobs sent from now on
	pendingEn1 []byte // from set_extranonce: applies from the next job
	xnsub      bool   // sent mining.extranonce.subscribe
	rolling    bool   // negotiated version rolling
	minerMask  uint32 // the miner's requested mask
	mask       uint32 // negotiated mask: pool & miner; 0 without rolling
	difficulty float64
	target     stratum.Target // for jobs sent from now on
	window     *stratum.JobWindow
	sent       []sentJob // last sessionJobs jobs sent, oldest first
	lastJob    *stratum.Job
	lastSeq    uint64 // Pool.jobSeq of the last job sent
	workers    []string
	suggested  float64
	version    string // answer to client.get_version
	pongs      uint64
	probes     map[uint64]stratum.Method

	// readLoop only.
	dec     stratum.Decoder
	checker stratum.Checker
	sub     stratum.Submit
	conf    stratum.ConfigureRequest
}

func newSession(p *Pool, conn net.Conn) *session {
	return &session{
		p:      p,
		conn:   conn,
		remote: conn.RemoteAddr().String(),
		done:   make(chan struct{}),
		window: stratum.NewJobWindow(sessionJobs),
		probes: make(map[uint64]stratum.Method),
	}
}

// close closes the connection once, recording why.
func (s *session) close(r CloseReason) {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	close(s.done)
	s.conn.Close()
	s.p.stats.closed(r)
}

// readLoop reads and answers the miner's lines until the connection ends.
func (s *session) readLoop() {
	defer s.p.forget(s)
	lr := stratum.NewLineReader(countingReader{s.conn, &s.p.stats.bytesIn}, maxLineSize)
	for {
		line, err := lr.ReadLine()
		if err != nil {
			s.close(readCloseReason(err))
			return
		}
		if !s.waitStall() {
			return
		}
		s.mu.Lock()
		reason := s.handle(line)
		if reason == closeNone && (!lineWaiting(lr) || s.p.stallGate() != nil) {
			// Flush only when no further request is already buffered, so
			// pipelined replies leave in one packet; but always when stalled,
			// since the next line waits for Resume: what was handled before a
			// stall is answered.
			if !s.flushLocked() {
				reason = CloseWriteError
			}
		}
		s.mu.Unlock()
		if reason != closeNone {
			s.close(reason)
			return
		}
	}
}

func readCloseReason(err error) CloseReason {
	switch {
	case errors.Is(err, io.EOF):
		return CloseClient
	case errors.Is(err, stratum.ErrLineTooLong):
		return CloseLineTooLong
	}
	return CloseReadError
}

// lineWaiting reports whether a whole line is already buffered.
func lineWaiting(lr *stratum.LineReader) bool {
	n := lr.Buffered()
	if n == 0 {
		return false
	}
	b, _ := lr.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// waitStall blocks while the pool is stalled; false when the session or pool closed.
func (s *session) waitStall() bool {
	for {
		gate := s.p.stallGate()
		if gate == nil {
			return true
		}
		select {
		case <-gate:
		case <-s.done:
			return false
		case <-s.p.done:
			return false
		}
	}
}

// flushLocked writes s.out. s.mu must be held.
func (s *session) flushLocked() bool {
	if len(s.out) == 0 {
		return true
	}
	if s.closed.Load() {
		s.out = s.out[:0]
		return false
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, err := s.conn.Write(s.out)
	s.p.stats.bytesOut.Add(uint64(n))
	s.out = s.out[:0]
	return err == nil
}

// sendLocked writes line now (after anything pending). s.mu must be held.
func (s *session) sendLocked(line []byte) bool {
	s.out = append(s.out, line...)
	return s.flushLocked()
}

// handle answers one line. s.mu must be held. It returns closeNone to go on.
func (s *session) handle(line []byte) CloseReason {
	m, err := s.dec.Decode(line)
	if err != nil {
		s.p.stats.protocolError()
		if errors.Is(err, stratum.ErrNotJSON) {
			return CloseProtocol // not JSON at all (a TLS probe, garbage): drop at once
		}
		s.out = stratum.AppendError(s.out, nil, stratum.ErrParse)
		return closeNone
	}
	switch m.Kind {
	case stratum.KindResponse:
		s.handleResponse(m)
		return closeNone
	case stratum.KindNotification:
		return closeNone // miners send no notifications worth answering
	}
	switch m.Method {
	case stratum.MethodConfigure:
		s.handleConfigure(m)
	case stratum.MethodSubscribe:
		return s.handleSubscribe(m)
	case stratum.MethodAuthorize:
		s.handleAuthorize(m)
	case stratum.MethodExtranonceSubscribe:
		s.xnsub = true
		s.out = stratum.AppendBool(s.out, m.ID, true)
	case stratum.MethodSuggestDifficulty:
		if d, err := m.Difficulty(); err == nil {
			s.suggested = d
		}
		s.out = stratum.AppendBool(s.out, m.ID, true)
	case stratum.MethodSuggestTarget:
		if t, err := m.SuggestTarget(); err == nil {
			s.suggested = t.Difficulty()
		}
		s.out = stratum.AppendBool(s.out, m.ID, true)
	case stratum.MethodSubmit:
		s.handleSubmit(m)
	case stratum.MethodGetTransactions:
		s.out = stratum.AppendResult(s.out, m.ID, "[]")
	case stratum.MethodPing:
		s.out = stratum.AppendStringResult(s.out, m.ID, []byte("pong"))
	default:
		s.p.stats.unknownMethod()
		s.out = stratum.AppendError(s.out, m.ID, stratum.ErrMethodNotFound)
	}
	return closeNone
}

func (s *session) handleConfigure(m *stratum.Message) {
	if err := m.Configure(&s.conf); err != nil {
		s.out = stratum.AppendError(s.out, m.ID, stratum.ErrOther)
		return
	}
	res := stratum.ConfigureResult{Asked: s.conf.Extensions, Unknown: s.conf.Unknown}
	if s.conf.Extensions&stratum.ExtVersionRolling != 0 {
		s.p.mu.Lock()
		poolMask := s.p.mask
		s.p.mu.Unlock()
		if poolMask != 0 {
			res.Granted |= stratum.ExtVersionRolling
			res.VersionMask = poolMask & s.conf.VersionMask
			s.rolling, s.minerMask, s.mask = true, s.conf.VersionMask, res.VersionMask
		}
	}
	if s.conf.Extensions&stratum.ExtSubscribeExtranonce != 0 {
		res.Granted |= stratum.ExtSubscribeExtranonce
		s.xnsub = true
	}
	s.out = stratum.AppendConfigureResult(s.out, m.ID, &res)
}

func (s *session) handleSubscribe(m *stratum.Message) CloseReason {
	agent, resume := m.Subscribe()
	s.agent = string(agent)
	p := s.p
	var takeover *session
	resumed := false
	p.mu.Lock()
	if !s.subscribed {
		s.id, s.en1, resumed, takeover = p.subscribeLocked(s, string(resume))
		s.subscribed = true
		s.difficulty, s.target = p.difficulty, p.target
	}
	job, seq := p.cleanJob, p.jobSeq
	forgotten := seq <= p.forgotSeq
	stalled := p.stall != nil
	p.mu.Unlock()
	if takeover != nil {
		takeover.close(CloseTakenOver)
	}
	p.stats.subscribed(resumed)

	s.out = stratum.AppendSubscribeResult(s.out, m.ID, []byte(s.id), s.en1, p.cfg.extranonce2Size())
	if stalled {
		return closeNone // a pool stalled since this line arrived sends no work
	}
	// Like real pools: difficulty and a clean job right away, before the
	// authorize reply that is probably already waiting.
	s.out = stratum.AppendSetDifficulty(s.out, s.difficulty)
	s.addJobLocked(job, seq)
	if forgotten {
		s.forgetJobsLocked() // sent, but the pool no longer knows it (ForgetJobs)
	}
	s.out = stratum.AppendNotify(s.out, job)
	return closeNone
}

func (s *session) handleAuthorize(m *stratum.Message) {
	user, password, err := m.Authorize()
	if err != nil {
		s.out = stratum.AppendError(s.out, m.ID, stratum.ErrOther)
		return
	}
	ok := s.p.cfg.Authorize == nil || s.p.cfg.Authorize(string(user), string(password))
	if ok && !s.authorized(user) && len(s.workers) < maxWorkersPerSession {
		s.workers = append(s.workers, string(user))
	}
	s.p.stats.authorized(ok)
	s.out = stratum.AppendBool(s.out, m.ID, ok)
}

// authorized reports whether worker was authorized on this connection.
func (s *session) authorized(worker []byte) bool {
	for _, w := range s.workers {
		if w == string(worker) {
			return true
		}
	}
	return false
}

func (s *session) handleSubmit(m *stratum.Message) {
	if !s.subscribed {
		s.p.stats.refused()
		s.out = stratum.AppendError(s.out, m.ID, stratum.ErrNotSubscribed)
		return
	}
	if err := m.Submit(&s.sub); err != nil {
		s.p.stats.submit(s, &s.sub, nil, stratum.Result{Verdict: stratum.VerdictMalformed}, false)
		s.out = appendReject(s.out, m.ID, s.p.cfg.RejectForm, stratum.VerdictMalformed)
		return
	}
	if !s.authorized(s.sub.Worker) {
		s.p.stats.refused()
		s.out = stratum.AppendError(s.out, m.ID, stratum.ErrUnauthorized)
		return
	}
	job, _ := s.window.Lookup(s.sub.JobID)
	params := stratum.CheckParams{
		Extranonce1:     s.extranonce1For(job),
		Extranonce2Size: s.p.cfg.extranonce2Size(),
		VersionMask:     s.mask,
	}
	r, job := s.window.Check(&s.checker, &s.sub, &params)
	injected := r.Verdict == stratum.VerdictAccepted && s.p.injectReject()
	// Count before answering, so a miner that has its answer sees it counted.
	s.p.stats.submit(s, &s.sub, job, r, injected)
	switch {
	case injected:
		s.out = appendReject(s.out, m.ID, s.p.cfg.RejectForm, stratum.VerdictLowDifficulty)
	case r.Verdict == stratum.VerdictAccepted:
		s.out = stratum.AppendBool(s.out, m.ID, true)
	default:
		s.out = appendReject(s.out, m.ID, s.p.cfg.RejectForm, r.Verdict)
	}
}

// extranonce1For returns the extranonce1 that job was sent with (the current one
// when the job is unknown: the check then fails on the job anyway).
func (s *session) extranonce1For(job *stratum.Job) []byte {
	for i := len(s.sent) - 1; i >= 0; i-- {
		if s.sent[i].job == job {
			return s.sent[i].en1
		}
	}
	return s.en1
}

// addJobLocked records that j (the pool's job number seq) is being sent: a pending
// extranonce1 takes effect, and the job enters the window at the session's current
// target. s.mu must be held.
func (s *session) addJobLocked(j *stratum.Job, seq uint64) {
	if s.pendingEn1 != nil {
		s.en1, s.pendingEn1 = s.pendingEn1, nil
		s.p.mu.Lock()
		s.pen1 = s.en1
		s.p.mu.Unlock()
	}
	s.window.Add(j, s.target)
	if len(s.sent) == sessionJobs {
		copy(s.sent, s.sent[1:])
		s.sent = s.sent[:sessionJobs-1]
	}
	s.sent = append(s.sent, sentJob{job: j, en1: s.en1})
	s.lastJob, s.lastSeq = j, seq
}

// forgetJobsLocked drops every job sent so far: shares on them get 21 (job not
// found). s.mu must be held.
func (s *session) forgetJobsLocked() {
	s.window = stratum.NewJobWindow(sessionJobs)
	clear(s.sent)
	s.sent = s.sent[:0]
}

// sendJobLocked sends j, the pool's job number seq (its notify line already
// encoded), unless the session already got it at subscribe. s.mu must be held.
func (s *session) sendJobLocked(j *stratum.Job, seq uint64, notify []byte) bool {
	if s.lastSeq >= seq {
		return true
	}
	s.addJobLocked(j, seq)
	return s.sendLocked(notify)
}

// handleResponse matches an answer to a request the pool sent (ping, get_version).
func (s *session) handleResponse(m *stratum.Message) {
	id, err := strconv.ParseUint(string(m.ID), 10, 64)
	if err != nil {
		return
	}
	method, ok := s.probes[id]
	if !ok {
		return
	}
	delete(s.probes, id)
	switch method {
	case stratum.MethodPing:
		s.pongs++
	case stratum.MethodGetVersion:
		if v, ok := m.StringResult(); ok {
			s.version = string(v)
		}
	}
}

// probeLocked sends a request the pool originates. s.mu must be held.
func (s *session) probeLocked(method stratum.Method) bool {
	if len(s.probes) >= maxPendingProbes {
		return true
	}
	id := s.p.nextProbeID()
	s.probes[id] = method
	if method == stratum.MethodPing {
		return s.sendLocked(stratum.AppendPing(nil, id))
	}
	return s.sendLocked(stratum.AppendGetVersion(nil, id))
}

// info returns what the session knows, for Pool.Sessions.
func (s *session) info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	si := SessionInfo{
		ID:                  s.id,
		Remote:              s.remote,
		UserAgent:           s.agent,
		Subscribed:          s.subscribed,
		Extranonce1:         append([]byte(nil), s.en1...),
		ExtranonceSubscribe: s.xnsub,
		VersionRolling:      s.rolling,
		VersionMask:         s.mask,
		Difficulty:          s.difficulty,
		SuggestedDifficulty: s.suggested,
		Workers:             append([]string(nil), s.workers...),
		ClientVersion:       s.version,
		Pongs:               s.pongs,
	}
	if s.lastJob != nil {
		si.JobID = s.lastJob.ID
	}
	return si
}
