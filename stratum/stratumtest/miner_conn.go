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
}

// minerConn is one connection of a Miner: a reader goroutine (serve) that owns the
// parse state and the work, a hasher goroutine that mines the published work, and
// a watcher that drains and closes the connection when the context ends.
type minerConn struct {
	m      *Miner
	conn   net.Conn
	addr   string
	worker []byte

	wmu sync.Mutex // guards writes to conn

	mu      sync.Mutex           // guards pending and nextID
	pending map[uint64]time.Time // submit id -> sent
	nextID  uint64

	cur      atomic.Pointer[work]
	signal   chan struct{} // new work, capacity 1
	idle     chan struct{} // pending became empty, capacity 1
	quit     chan struct{} // closed when the reader returns
	hashDone chan struct{} // closed when the hasher returns

	// Reader only.
	dec         stratum.Decoder
	subscribed  bool
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
}

func newMinerConn(m *Miner, conn net.Conn, addr string) *minerConn {
	return &minerConn{
		m:          m,
		conn:       conn,
		addr:       addr,
		worker:     []byte(m.cfg.worker()),
		pending:    make(map[uint64]time.Time),
		nextID:     firstSubmitID,
		signal:     make(chan struct{}, 1),
		idle:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		hashDone:   make(chan struct{}),
		difficulty: 1,
		target:     stratum.Diff1Target(),
	}
}

// serve runs the connection until it ends and reports how.
func (c *minerConn) serve(ctx context.Context) connEnd {
	var wg sync.WaitGroup
	wg.Go(func() { c.hashLoop(ctx) })
	wg.Go(func() { c.closeWhenDone(ctx) })

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

// closeWhenDone closes the connection once ctx is done, after the hasher stopped
// and the shares in flight were answered (or drainTimeout passed).
func (c *minerConn) closeWhenDone(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-c.quit:
		return
	}
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
		return nil
	case idExtranonceSubscribe:
		ok := m.Accepted()
		c.m.update(func(s *MinerStats) { s.ExtranonceSubscribed = ok })
		return nil
	case idSuggestDifficulty:
		return nil
	}

	c.mu.Lock()
	sent, ok := c.pending[id]
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
	latency := time.Since(sent)
	accepted := m.Accepted()
	var rej stratum.Reject
	if !accepted {
		rej = m.Reject()
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.m.recordLatencyLocked(latency)
	if accepted {
		c.m.st.Accepted++
		return nil
	}
	c.m.st.Rejected++
	c.m.st.RejectCodes[rej.Code]++
	reason := string(rej.Reason)
	if _, seen := c.m.st.RejectReasons[reason]; seen || len(c.m.st.RejectReasons) < maxRejectReasons {
		c.m.st.RejectReasons[reason]++
	}
	return nil
}

// handleNotify takes a new job, applying a pending difficulty and extranonce.
func (c *minerConn) handleNotify(m *stratum.Message) {
	j, err := m.Notify()
	if err != nil {
		return
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
	if c.job == nil || !c.subscribed {
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
