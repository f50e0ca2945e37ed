package stratumtest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// The handshake's request ids; submits count up from firstSubmitID.
const (
	idConfigure uint64 = iota + 1
	idSubscribe
	idAuthorize
	idExtranonceSubscribe
	idSuggestDifficulty

	// firstSubmitID is the first submit's id: the ids below it are the handshake's.
	firstSubmitID uint64 = 100
)

var (
	errAuthorize = errors.New("stratumtest: mining.authorize refused")
	errSubscribe = errors.New("stratumtest: mining.subscribe failed")
)

// work is what the hasher mines: immutable once published.
type work struct {
	job        *stratum.Job
	jobID      []byte
	en1        []byte
	en2Size    int
	target     stratum.Target
	difficulty float64
	rolling    bool   // send version bits (6 params)
	mask       uint32 // roll inside this mask
	received   time.Time
	staleID    []byte // a job id voided by a later clean job, for ShareStale
}

// pendingSubmit is a submit awaiting its answer.
type pendingSubmit struct {
	sent time.Time
	kind ShareKind
}

// minerConn is one connection of a Miner: a reader goroutine (serve) that owns the
// parse state and the work, a hasher goroutine that mines the published work (none
// when the miner is Idle), and a watcher that drains and closes the connection
// when the context ends or churn is due.
type minerConn struct {
	m      *Miner
	raw    net.Conn // the socket, for SetLinger
	conn   net.Conn // raw, counting bytes
	addr   string
	worker []byte

	// selfClosed is set before the miner closes the connection on purpose
	// (Disconnect, Churn), so the error the reader then gets is not recorded.
	selfClosed atomic.Bool
	churned    bool // closed by Churn; written by closeWhenDone, read after it returned

	wmu sync.Mutex // guards writes to conn

	mu      sync.Mutex               // guards pending and nextID
	pending map[uint64]pendingSubmit // by submit id
	nextID  uint64

	cur      atomic.Pointer[work]
	signal   chan struct{} // new work, capacity 1
	idle     chan struct{} // pending became empty, capacity 1
	quit     chan struct{} // closed when the reader returns
	hashDone chan struct{} // closed when the hasher returns

	// Reader only.
	dec         stratum.Decoder
	subscribed  bool
	authorized  bool // mining.authorize answered true; no work is mined before
	en1         []byte
	en2Size     int
	rolling     bool
	mask        uint32
	difficulty  float64
	target      stratum.Target
	nextDiff    float64 // from set_difficulty; applies at the next notify
	nextEn1     []byte  // from set_extranonce; applies at the next notify
	nextEn2Size int
	job         *stratum.Job
	gotJob      bool   // a notify arrived on this connection
	staleID     []byte // see work.staleID
	lastReason  string // the last reject reason, reused while it repeats
}

// neverSentJobID is ShareStale's job id before any job was voided.
var neverSentJobID = []byte("deadbeef")

func newMinerConn(m *Miner, conn net.Conn, addr string) *minerConn {
	return &minerConn{
		m:          m,
		raw:        conn,
		conn:       countingConn{Conn: conn, m: m},
		addr:       addr,
		worker:     []byte(m.cfg.worker()),
		pending:    make(map[uint64]pendingSubmit),
		nextID:     firstSubmitID,
		signal:     make(chan struct{}, 1),
		idle:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		hashDone:   make(chan struct{}),
		difficulty: 1,
		target:     stratum.Diff1Target(),
		staleID:    neverSentJobID,
	}
}

// serve runs the connection until it ends and reports how.
func (c *minerConn) serve(ctx context.Context) connEnd {
	// The hasher stops on hashCtx: at ctx's end, or when churn is due.
	hashCtx, stopHash := context.WithCancel(ctx)
	defer stopHash()
	var wg sync.WaitGroup
	if c.m.cfg.Idle {
		close(c.hashDone)
	} else {
		wg.Go(func() { c.hashLoop(hashCtx) })
	}
	wg.Go(func() { c.closeWhenDone(ctx, stopHash) })

	end := connEnd{}
	if err := c.write(c.handshake()); err != nil {
		end.err = err
	} else {
		end = c.readLoop()
	}
	close(c.quit)
	c.conn.Close()
	wg.Wait()

	c.mu.Lock()
	unanswered := uint64(len(c.pending))
	c.mu.Unlock()
	end.subscribed = c.subscribed
	if c.selfClosed.Load() {
		end.err = nil
	}
	if c.churned {
		end.churn = true
	}
	c.m.update(func(s *MinerStats) {
		s.Disconnects++
		s.Unanswered += unanswered
	})
	return end
}

// handshake returns the opening requests, pipelined as bfgminer sends them:
// configure (when rolling), subscribe (resuming the last session id), authorize,
// and optionally extranonce.subscribe and suggest_difficulty.
func (c *minerConn) handshake() []byte {
	cfg := &c.m.cfg
	var b []byte
	if cfg.VersionRolling {
		b = stratum.AppendConfigure(b, idConfigure, stratum.ExtVersionRolling, cfg.versionMask(), 0)
	}
	b = stratum.AppendSubscribe(b, idSubscribe, cfg.userAgent(), c.m.resumeID())
	b = stratum.AppendAuthorize(b, idAuthorize, cfg.worker(), cfg.password())
	if cfg.ExtranonceSubscribe {
		b = stratum.AppendExtranonceSubscribe(b, idExtranonceSubscribe)
	}
	if cfg.SuggestDifficulty > 0 {
		b = stratum.AppendSuggestDifficulty(b, idSuggestDifficulty, cfg.SuggestDifficulty)
	}
	return b
}

// write sends b, closing the connection on failure.
func (c *minerConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.conn.Write(b)
	if err != nil {
		c.conn.Close()
	}
	return err
}

// closeWhenDone closes the connection once ctx is done, or its Churn lifetime
// passed, after the hasher stopped and the shares in flight were answered (or
// drainTimeout passed).
func (c *minerConn) closeWhenDone(ctx context.Context, stopHash context.CancelFunc) {
	var churn <-chan time.Time
	if mean := c.m.cfg.Misbehave.Churn; mean > 0 {
		t := time.NewTimer(expDuration(mean))
		defer t.Stop()
		churn = t.C
	}
	churned := false
	select {
	case <-ctx.Done():
	case <-churn:
		churned = true
	case <-c.quit:
		return
	}
	stopHash()
	select {
	case <-c.hashDone:
	case <-c.quit:
		return
	}
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
drain:
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-c.idle:
		case <-deadline.C:
			break drain
		case <-c.quit:
			return
		}
	}
	if churned {
		c.churned = true
		c.selfClosed.Store(true)
		c.m.update(func(s *MinerStats) { s.ChurnCloses++ })
	}
	c.conn.Close()
}

// readLoop reads and handles lines until the connection ends.
func (c *minerConn) readLoop() connEnd {
	lr := stratum.NewLineReader(c.conn, maxLineSize)
	idle := c.m.cfg.IdleTimeout
	for {
		if idle > 0 {
			c.conn.SetReadDeadline(time.Now().Add(idle))
		}
		line, err := lr.ReadLine()
		if err != nil {
			return connEnd{err: err}
		}
		if end, done := c.handle(line); done {
			return end
		}
	}
}

// handle handles one line; done reports that the connection must end.
func (c *minerConn) handle(line []byte) (end connEnd, done bool) {
	m, err := c.dec.Decode(line)
	if err != nil {
		return connEnd{}, false // a miner skips what it cannot read
	}
	if m.Kind == stratum.KindResponse {
		if err := c.handleResponse(m); err != nil {
			return connEnd{err: err}, true
		}
		return connEnd{}, false
	}
	isRequest := m.Kind == stratum.KindRequest
	switch m.Method {
	case stratum.MethodNotify:
		c.handleNotify(m)
	case stratum.MethodSetDifficulty:
		if d, err := m.Difficulty(); err == nil {
			c.nextDiff = d // firmware applies it from the next notify
		}
	case stratum.MethodSetExtranonce:
		c.handleSetExtranonce(m)
	case stratum.MethodSetVersionMask:
		c.handleSetVersionMask(m)
	case stratum.MethodReconnect:
		r, err := m.Reconnect()
		if err != nil {
			return connEnd{}, false
		}
		wait := min(time.Duration(r.Wait)*time.Second, maxReconnectWait)
		return connEnd{reconnect: joinHostPort(c.addr, r), wait: wait}, true
	case stratum.MethodGetVersion:
		if isRequest {
			c.write(stratum.AppendStringResult(nil, m.ID, []byte(c.m.cfg.userAgent())))
		}
	case stratum.MethodPing:
		if isRequest {
			c.write(stratum.AppendStringResult(nil, m.ID, []byte("pong")))
		}
	case stratum.MethodShowMessage:
		text := string(m.ShowMessage())
		c.m.update(func(s *MinerStats) { s.LastMessage = text })
		if isRequest {
			c.write(stratum.AppendBool(nil, m.ID, true))
		}
	default:
		if isRequest {
			c.write(stratum.AppendError(nil, m.ID, stratum.ErrMethodNotFound))
		}
	}
	return connEnd{}, false
}

// handleResponse handles the answer to one of the miner's requests.
func (c *minerConn) handleResponse(m *stratum.Message) error {
	id, err := strconv.ParseUint(string(m.ID), 10, 64)
	if err != nil {
		return nil
	}
	switch id {
	case idConfigure:
		c.rolling, c.mask = false, 0
		if r, err := m.ConfigureResult(); err == nil && r.Granted&stratum.ExtVersionRolling != 0 {
			c.rolling, c.mask = true, r.VersionMask&c.m.cfg.versionMask()
		}
		return nil
	case idSubscribe:
		r, err := m.SubscribeResult()
		if err != nil {
			return errors.Join(errSubscribe, err)
		}
		c.subscribed, c.en1, c.en2Size = true, r.Extranonce1, r.Extranonce2Size
		c.m.mu.Lock()
		if r.SessionID != "" {
			c.m.sessionID = r.SessionID
		}
		c.m.st.SessionID = c.m.sessionID
		c.m.mu.Unlock()
		c.publish()
		return nil
	case idAuthorize:
		if !m.Accepted() {
			return errAuthorize
		}
		c.authorized = true
		c.publish() // as firmware, mine nothing until the pool accepted the worker
		return nil
	case idExtranonceSubscribe:
		ok := m.Accepted()
		c.m.update(func(s *MinerStats) { s.ExtranonceSubscribed = ok })
		return nil
	case idSuggestDifficulty:
		return nil
	}

	c.mu.Lock()
	p, ok := c.pending[id]
	delete(c.pending, id)
	empty := len(c.pending) == 0
	c.mu.Unlock()
	if !ok {
		return nil
	}
	if empty {
		select {
		case c.idle <- struct{}{}:
		default:
		}
	}
	latency := time.Since(p.sent)
	accepted := m.Accepted()
	var rej stratum.Reject
	if !accepted {
		rej = m.Reject()
		if string(rej.Reason) != c.lastReason { // compared without a copy
			c.lastReason = string(rej.Reason)
		}
	}
	reason := ""
	if !accepted {
		reason = c.lastReason
	}
	c.m.mu.Lock()
	c.m.recordLatencyLocked(latency)
	if p.kind != ShareGood {
		if accepted {
			c.m.st.BadAccepted[p.kind]++
		} else {
			c.m.st.BadRejected[p.kind]++
		}
	}
	if accepted {
		c.m.st.Accepted++
	} else {
		c.m.st.Rejected++
		c.m.st.RejectCodes[rej.Code]++
		if _, seen := c.m.st.RejectReasons[reason]; seen || len(c.m.st.RejectReasons) < maxRejectReasons {
			c.m.st.RejectReasons[reason]++
		}
	}
	c.m.mu.Unlock()
	if f := c.m.cfg.OnReply; f != nil {
		f(Reply{Kind: p.kind, Latency: latency, Accepted: accepted, Code: rej.Code, Reason: reason})
	}
	return nil
}

// handleNotify takes a new job, applying a pending difficulty and extranonce.
func (c *minerConn) handleNotify(m *stratum.Message) {
	received := time.Now()
	j, err := m.Notify()
	if err != nil {
		return
	}
	if j.Clean && c.job != nil && c.job.ID != j.ID {
		c.staleID = []byte(c.job.ID) // voided by j
	}
	if c.nextDiff > 0 {
		if t, err := stratum.TargetFromDifficulty(c.nextDiff); err == nil {
			c.difficulty, c.target = c.nextDiff, t
		}
		c.nextDiff = 0
	}
	applied := false
	if c.nextEn1 != nil {
		c.en1, c.en2Size, c.nextEn1 = c.nextEn1, c.nextEn2Size, nil
		applied = true
	}
	c.job = j
	c.m.update(func(s *MinerStats) {
		s.JobsReceived++
		if j.Clean {
			s.CleanJobs++
		}
		if applied {
			s.ExtranonceChanges++
		}
	})
	c.publish()
	first := !c.gotJob
	c.gotJob = true
	if f := c.m.cfg.OnJob; f != nil {
		ev := JobEvent{Received: received, Clean: j.Clean, First: first}
		if t, ok := JobStamp(j.Coinb2); ok {
			ev.Stamp = t
		}
		f(ev)
	}
}

// handleSetExtranonce keeps a new extranonce for the next notify, if subscribed.
func (c *minerConn) handleSetExtranonce(m *stratum.Message) {
	if !c.m.cfg.ExtranonceSubscribe {
		c.m.update(func(s *MinerStats) { s.ExtranonceIgnored++ })
		return
	}
	en1, en2Size, err := m.SetExtranonce()
	if err != nil {
		return
	}
	c.nextEn1, c.nextEn2Size = en1, en2Size
}

// handleSetVersionMask applies a new mask at once (BIP 310), never rolling a bit
// the miner did not ask for.
func (c *minerConn) handleSetVersionMask(m *stratum.Message) {
	mask, err := m.VersionMask()
	if err != nil || !c.rolling {
		return
	}
	c.mask = mask & c.m.cfg.versionMask()
	c.m.update(func(s *MinerStats) { s.VersionMaskChanges++ })
	c.publish()
}

// publish hands the hasher new work built from the reader's state.
func (c *minerConn) publish() {
	if c.job == nil || !c.subscribed || !c.authorized {
		return
	}
	w := &work{
		job:        c.job,
		jobID:      []byte(c.job.ID),
		en1:        c.en1,
		en2Size:    c.en2Size,
		target:     c.target,
		difficulty: c.difficulty,
		rolling:    c.rolling,
		mask:       c.mask,
		received:   time.Now(),
		staleID:    c.staleID,
	}
	if prev := c.cur.Load(); prev != nil && prev.job == c.job {
		w.received = prev.received // ntime keeps rolling from the job's arrival
	}
	c.cur.Store(w)
	select {
	case c.signal <- struct{}{}:
	default:
	}
	c.m.update(func(s *MinerStats) {
		s.JobID = w.job.ID
		s.Extranonce1 = w.en1
		s.Extranonce2Size = w.en2Size
		s.Difficulty = w.difficulty
		s.VersionRolling = w.rolling
		s.VersionMask = w.mask
	})
}
