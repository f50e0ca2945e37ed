package proxy

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/stratum"
)

// Limits of a miner session.
const (
	// maxMalformed is how many consecutive undecodable lines a miner may send before it
	// is closed for a protocol error; each one before that gets an error reply.
	maxMalformed = 8
	// closeLinger bounds how long a session that closes a miner on its own decision
	// (protocol error, unauthorized worker) waits for its last replies to leave, so
	// the miner learns why.
	closeLinger = 100 * time.Millisecond
)

// errAlreadySubscribed answers a second mining.subscribe on one connection.
var errAlreadySubscribed = &stratum.Error{Code: 20, Message: "Already subscribed"}

// session is one miner's connection.
//
// Ownership. The reader goroutine (serve and everything it calls: handle and the
// handlers) owns the fields under "reader only". Job delivery, version-mask changes
// and reconnects come from the slot's goroutines (deliverJob, upstreamMask,
// sendReconnect); what they share with the reader is under mu. The reader takes mu
// for a share check, which reads the job window the slot's deliveries write.
//
// Lock order: a slot's bcast (held across a broadcast), then mu, then the worker
// account's mu (a share batch folded, accounts.go) and the conn's and the flusher's
// locks, which are leaves. mu is never held while taking a slot's mu or the
// server's, and never across a blocking call.
type session struct {
	srv  *Server
	c    *conn
	id   uint64
	addr string

	// Reader only.
	checker    stratum.Checker
	out        []byte // reply scratch, borrowed while a line is handled (borrow.go)
	subscribed bool
	authorized bool
	xnsub      bool // sent mining.extranonce.subscribe or subscribe-extranonce
	malformed  int  // consecutive undecodable lines
	agent      string
	acct       *worker
	password   string // as authorized, for identity modes
	upName     string // the worker name registered with the slot (identity modes)
	slot       *slot
	prefix     []byte // the miner's extranonce1
	en2Size    int
	// prefixNum is written by slot.join and read by slot.leave, both under the
	// slot's mu.
	prefixNum uint64

	mu sync.Mutex
	// live is set once the subscribe result has been sent: jobs delivered before
	// that wait in early, so that nothing reaches the miner before its extranonce1.
	live  bool
	early *relayJob
	// upMask is the upstream's version mask as last told (0 before subscribe);
	// pendingUpMask holds one told before the subscribe result was sent.
	upMask        uint32
	pendingUpMask uint32
	hasPendingUp  bool
	wantMask      uint32 // the mask the miner asked for in mining.configure
	rolling       bool   // version rolling granted
	mask          uint32 // granted version mask (0 without rolling)
	// diff is the difficulty the miner should get from its next job, before the
	// bounds (clampDifficulty at delivery). minerMin (mining.configure's
	// minimum-difficulty) and suggested (suggest_difficulty, suggest_target) are the
	// miner's own floors: ckpool, too, keeps vardiff at or above a suggestion.
	diff      float64
	minerMin  float64
	suggested float64
	sentDiff  float64 // the difficulty last sent (0 before the first job)
	target    stratum.Target
	targetFor float64
	vd        vardiff
	window    *stratum.JobWindow
	// relays maps the jobs in window back to their relay jobs (upstream job id and
	// target): a ring of the last len(relays) deliveries, which covers the window.
	relays    []*relayJob
	relayNext int
	// batch counts the shares not yet folded into the worker's account
	// (accounts.go): handleSubmit holds mu for the check anyway.
	batch shareBatch
}

// notificationBuffer fits the short notifications a session writes outside a
// request (set_difficulty, set_version_mask, client.reconnect), on the stack: a
// buffer kept per session would stay with every idle miner.
const notificationBuffer = 192

func newSession(srv *Server, c *conn, id uint64, addr string) *session {
	n := srv.cfg.jobsPerMiner()
	m := &session{
		srv:    srv,
		c:      c,
		id:     id,
		addr:   addr,
		window: stratum.NewJobWindow(n),
		relays: make([]*relayJob, n),
		diff:   srv.cfg.startDifficulty(),
	}
	m.vd.interval, m.vd.retarget = srv.cfg.vardiffInterval(), srv.cfg.vardiffRetarget()
	return m
}

// serve runs the reader loop until the connection ends, then detaches the miner.
func (m *session) serve(ctx context.Context) {
	reason := m.c.readLoop(func(line []byte) bool {
		ok := m.handle(ctx, line)
		if m.c.buffered() == 0 {
			m.c.flushNow() // pipelined requests' replies leave together, from here
		}
		return ok
	})
	if m.slot != nil {
		m.slot.leave(m)
		if m.upName != "" {
			m.slot.dropWorker(m.upName)
		}
	}
	m.srv.stats.closed(reason)
	if m.acct != nil {
		m.acct.disconnected(m)
	}
	m.event(zerolog.DebugLevel).Str("reason", reason.String()).Msg("miner closed")
}

// event starts a log event at level carrying the session's context, or returns nil
// (on which every Event method does nothing) when level is off. The context is
// built for each event written rather than kept: an idle miner holds none of it.
func (m *session) event(level zerolog.Level) *zerolog.Event {
	e := m.srv.log.WithLevel(level)
	if e == nil {
		return nil
	}
	e = e.Uint64("miner", m.id).Str("remote", m.addr)
	if m.acct != nil {
		e = e.Str("worker", m.acct.name)
	}
	return e
}

// handle processes one line; false closes the connection (the reason already set).
// Reader only.
func (m *session) handle(ctx context.Context, line []byte) bool {
	dec, out := getDecoder(), getReplyBuffer()
	m.out = *out
	defer func() {
		putDecoder(dec)
		putReplyBuffer(out, m.out)
		m.out = nil
	}()
	msg, err := dec.Decode(line)
	if err != nil {
		m.malformed++
		m.srv.stats.m.MalformedLines.Inc()
		if m.malformed > maxMalformed {
			m.event(zerolog.DebugLevel).Int("lines", m.malformed).Msg("closing: undecodable lines")
			m.closeAfterReplies(CloseProtocol)
			return false
		}
		m.out = stratum.AppendError(m.out[:0], nil, stratum.ErrParse)
		m.c.send(m.out)
		return true
	}
	m.malformed = 0
	if msg.Kind == stratum.KindResponse {
		return true // answers to requests the miner got from us; none needs one
	}
	switch msg.Method {
	case stratum.MethodSubmit:
		m.handleSubmit(msg)
	case stratum.MethodConfigure:
		m.handleConfigure(msg)
	case stratum.MethodSubscribe:
		m.handleSubscribe(ctx, msg)
	case stratum.MethodAuthorize:
		return m.handleAuthorize(msg)
	case stratum.MethodExtranonceSubscribe:
		// Granted: the proxy never needs mining.set_extranonce (the upstream's
		// extranonce1 is folded into coinb1), so a subscribed miner loses nothing.
		m.xnsub = true
		m.replyBool(msg, true)
	case stratum.MethodSuggestDifficulty:
		if d, err := msg.Difficulty(); err == nil {
			m.suggest(d)
		}
		m.replyBool(msg, true)
	case stratum.MethodSuggestTarget:
		if t, err := msg.SuggestTarget(); err == nil {
			m.suggest(t.Difficulty())
		}
		m.replyBool(msg, true)
	case stratum.MethodGetTransactions:
		// bfgminer asks after every job; the proxy has no transaction list to give.
		m.reply(msg, "[]")
	case stratum.MethodPing:
		if msg.Kind == stratum.KindRequest {
			m.out = stratum.AppendStringResult(m.out[:0], msg.ID, []byte("pong"))
			m.c.send(m.out)
		}
	case stratum.MethodGetVersion:
		if msg.Kind == stratum.KindRequest {
			m.out = stratum.AppendStringResult(m.out[:0], msg.ID, []byte("hashrelay/"+m.srv.cfg.Version))
			m.c.send(m.out)
		}
	case stratum.MethodShowMessage:
		// A miner has no business showing the proxy a message, but a request gets an
		// answer, not -32601 (which some firmware treats as fatal).
		m.replyBool(msg, true)
	default:
		m.replyError(msg, stratum.ErrMethodNotFound)
	}
	return true
}

// reply answers a request with the raw JSON result; a notification gets nothing.
func (m *session) reply(msg *stratum.Message, result string) {
	if msg.Kind == stratum.KindRequest {
		m.out = stratum.AppendResult(m.out[:0], msg.ID, result)
		m.c.send(m.out)
	}
}

func (m *session) replyBool(msg *stratum.Message, v bool) {
	if v {
		m.reply(msg, "true")
	} else {
		m.reply(msg, "false")
	}
}

// replyError answers a request with an error; a notification gets nothing.
func (m *session) replyError(msg *stratum.Message, e *stratum.Error) {
	if msg.Kind == stratum.KindRequest {
		m.out = stratum.AppendError(m.out[:0], msg.ID, e)
		m.c.send(m.out)
	}
}

// closeAfterReplies closes the connection once the replies already appended have
// been written, or after closeLinger: the miner sees the error that ends it. Reader
// only (it blocks the reader, which has nothing left to do).
func (m *session) closeAfterReplies(reason CloseReason) {
	m.c.flush()
	deadline := time.Now().Add(closeLinger)
	for m.c.pending() > 0 && !m.c.isClosed() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	m.c.close(reason)
}

// suggest records a miner's difficulty wish (suggest_difficulty, suggest_target):
// its next job comes at that difficulty within the bounds, and vardiff does not go
// below it.
func (m *session) suggest(d float64) {
	m.mu.Lock()
	m.suggested, m.diff = d, d
	m.mu.Unlock()
}

// floorLocked is the lowest difficulty the miner may get: the configured minimum or
// the miner's own, whichever is higher (the ceilings still win over it). mu must be
// held.
func (m *session) floorLocked() float64 {
	return max(m.srv.cfg.minDifficulty(), m.minerMin, m.suggested)
}

func (m *session) handleConfigure(msg *stratum.Message) {
	req := new(stratum.ConfigureRequest) // once per connection
	if err := msg.Configure(req); err != nil {
		m.replyError(msg, stratum.ErrOther)
		return
	}
	res := stratum.ConfigureResult{Asked: req.Extensions, Unknown: req.Unknown}
	if req.Extensions&stratum.ExtVersionRolling != 0 {
		var guess uint32
		if !m.subscribed {
			guess = m.expectedUpstreamMask() // takes the server's and a slot's locks: not under mu
		}
		m.mu.Lock()
		up := m.upMask
		if !m.subscribed {
			up = guess
		}
		m.wantMask = req.VersionMask
		m.mask = req.VersionMask & up
		m.rolling = m.mask != 0
		if m.rolling {
			res.Granted |= stratum.ExtVersionRolling
			res.VersionMask = m.mask
		}
		m.mu.Unlock()
	}
	if req.Extensions&stratum.ExtMinimumDifficulty != 0 {
		res.Granted |= stratum.ExtMinimumDifficulty
		m.mu.Lock()
		m.minerMin = req.MinimumDifficulty
		m.diff = max(m.diff, req.MinimumDifficulty)
		m.mu.Unlock()
	}
	if req.Extensions&stratum.ExtSubscribeExtranonce != 0 {
		res.Granted |= stratum.ExtSubscribeExtranonce
		m.xnsub = true
	}
	if req.Extensions&stratum.ExtInfo != 0 {
		res.Granted |= stratum.ExtInfo
	}
	if msg.Kind == stratum.KindRequest {
		m.out = stratum.AppendConfigureResult(m.out[:0], msg.ID, &res)
		m.c.send(m.out)
	}
}

// expectedUpstreamMask is the version mask a miner that has not subscribed yet will
// most likely roll in: that of the slot a subscribe would join now (the first with
// room) once it has an upstream, else the mask the proxy asks pools for. A wrong
// guess is corrected with mining.set_version_mask right after the subscribe result.
// Reader only; takes the server's mu, then a slot's.
func (m *session) expectedUpstreamMask() uint32 {
	srv := m.srv
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, sl := range srv.slots {
		sl.mu.Lock()
		room := len(sl.miners) < sl.capacity()
		up, mask := sl.up != nil, sl.mask
		sl.mu.Unlock()
		if room {
			if up {
				return mask
			}
			break
		}
	}
	return srv.cfg.versionMask()
}

// handleSubscribe joins a slot (waiting up to SubscribeWait for one with work),
// answers with the miner's extranonce1 and size, then sends its difficulty and first
// job. A miner that finds no upstream gets an error and may subscribe again.
func (m *session) handleSubscribe(ctx context.Context, msg *stratum.Message) {
	if m.subscribed {
		m.replyError(msg, errAlreadySubscribed)
		return
	}
	agent, _ := msg.Subscribe()
	m.agent = string(agent)
	sl, prefix, en2, mask, cur, err := m.srv.join(ctx, m)
	if err != nil {
		m.event(zerolog.DebugLevel).Err(err).Msg("subscribe failed")
		m.replyError(msg, &stratum.Error{Code: 20, Message: err.Error()})
		return
	}
	m.slot, m.prefix, m.en2Size = sl, prefix, en2
	m.subscribed = true
	m.registerIdentity() // authorize may have come first
	if m.acct != nil {
		m.acct.setAgent(m.agent)
	}
	sid := strconv.AppendUint(nil, m.id, 16)

	// From join on, the slot may deliver jobs and masks; until live they wait, so
	// the miner sees its subscribe result first, then its mask, difficulty and job.
	m.mu.Lock()
	defer m.mu.Unlock()
	m.out = stratum.AppendSubscribeResult(m.out[:0], msg.ID, sid, prefix, en2)
	m.c.send(m.out)
	m.live = true
	if m.hasPendingUp {
		mask, m.hasPendingUp = m.pendingUpMask, false
	}
	m.upMask = mask
	if m.rolling {
		m.setMaskLocked(m.wantMask & mask)
	}
	first := cur
	if m.early != nil {
		first, m.early = m.early, nil // newer than cur: delivered after join
	}
	if first != nil {
		// A miner's first job is always clean. The reader flushes (serve), so a
		// pipelined authorize's reply leaves in the same write.
		j := *first.job
		j.Clean = true
		m.deliverLocked(first, stratum.AppendNotify(nil, &j))
	}
}

func (m *session) handleAuthorize(msg *stratum.Message) bool {
	user, password, err := msg.Authorize()
	if err != nil {
		m.replyError(msg, stratum.ErrUnauthorized)
		return true
	}
	name := string(user)
	m.password = string(password)
	if !m.srv.allowed(name) {
		m.replyError(msg, stratum.ErrUnauthorized)
		m.event(zerolog.InfoLevel).Str("worker", name).Msg("worker not allowed")
		m.closeAfterReplies(CloseUnauthorized)
		return false
	}
	if m.srv.curtail.isCurtailed(name) {
		// Withheld work is how a worker is curtailed: firmware without a pool idles
		// and retries, and is let back on the first authorize after its restore.
		m.replyError(msg, stratum.ErrUnauthorized)
		m.event(zerolog.DebugLevel).Str("worker", name).Msg("worker curtailed: authorize refused")
		m.closeAfterReplies(CloseCurtailed)
		return false
	}
	if m.acct == nil || m.acct.name != name {
		if m.acct != nil {
			m.acct.disconnected(m)
		}
		m.acct = m.srv.accounts.connect(name, m.addr, m.agent, m)
	}
	m.authorized = true
	m.registerIdentity()
	m.replyBool(msg, true)
	return true
}

// registerIdentity tells the slot the miner's worker name, for identity modes that
// submit under it (reader only).
func (m *session) registerIdentity() {
	if m.slot == nil || !m.authorized || m.acct == nil || m.upName == m.acct.name {
		return
	}
	if m.upName != "" {
		m.slot.dropWorker(m.upName)
	}
	m.upName = m.acct.name
	m.slot.addWorker(m.upName, m.password)
}

// handleSubmit checks a share against the job it names, at the target that job was
// sent with, answers the miner at once, and queues the share for the pool when it
// meets the pool's target: the pool's answer never delays the miner's.
func (m *session) handleSubmit(msg *stratum.Message) {
	if !m.authorized {
		m.replyError(msg, stratum.ErrUnauthorized)
		return
	}
	if !m.subscribed {
		m.replyError(msg, stratum.ErrNotSubscribed)
		return
	}
	var sub stratum.Submit
	s := &sub
	if err := msg.Submit(s); err != nil {
		m.mu.Lock()
		if m.batch.count(m.srv.accounts.now(), stratum.VerdictMalformed, 0, false, false) {
			m.batch.flush(m.srv.accounts.now())
		}
		m.mu.Unlock()
		m.rejected(msg, stratum.VerdictMalformed)
		return
	}
	now := m.srv.now()
	acctNow := m.srv.accounts.now() // the accounts' clock (a test's may be fake)
	p := stratum.CheckParams{Extranonce1: m.prefix, Extranonce2Size: m.en2Size}
	var rj *relayJob
	var shareDiff float64

	m.mu.Lock()
	p.VersionMask = m.mask
	if j, _ := m.window.Lookup(s.JobID); j != nil {
		if rj = m.relayLocked(j); rj != nil {
			p.UpstreamTarget = &rj.upTarget
		}
	}
	r, _ := m.window.Check(&m.checker, s, &p)
	if r.Verdict == stratum.VerdictAccepted {
		shareDiff = p.ShareTarget.Difficulty()
		if d := m.vd.observe(now, shareDiff, m.sentDiff); d > 0 {
			m.diff = d
		}
	}
	if m.batch.count(acctNow, r.Verdict, shareDiff, r.Block, s.HasVersionBits && s.VersionBits != 0) {
		m.batch.flush(acctNow) // takes the worker's mu: after this session's, per the lock order
	}
	m.mu.Unlock()

	if r.Verdict != stratum.VerdictAccepted {
		m.rejected(msg, r.Verdict)
		return
	}
	m.replyBool(msg, true)
	m.srv.stats.verdict(stratum.VerdictAccepted)
	if r.Block {
		m.srv.metrics.BlockCandidates.Inc()
	}
	if rj != nil && rj.fake {
		m.srv.metrics.FakeShares.Inc() // unpaid work: no pool to send it to
		return
	}
	// rj is never nil for an accepted share: relays covers the window.
	if rj != nil && (r.MeetsUpstream || r.Block) { // a block is worth sending whatever the pool's difficulty
		ps := pendingShare{rj: rj, acct: m.acct, ntime: s.NTime, nonce: s.Nonce, vbits: s.VersionBits, hasVB: s.HasVersionBits, block: r.Block, hash: r.Hash, diff: rj.upDifficulty}
		copy(ps.prefix[:], m.prefix)
		ps.en2Len = uint8(copy(ps.en2[:], s.Extranonce2))
		m.slot.enqueue(ps)
	}
}

// relayLocked returns the relay job delivered as j. mu must be held.
func (m *session) relayLocked(j *stratum.Job) *relayJob {
	n := len(m.relays)
	for i := 1; i <= n; i++ {
		if rj := m.relays[(m.relayNext-i+n)%n]; rj != nil && rj.job == j {
			return rj
		}
	}
	return nil
}

// rejected answers a rejected share; the caller has counted it in the batch.
func (m *session) rejected(msg *stratum.Message, v stratum.Verdict) {
	m.replyError(msg, v.Err())
	m.srv.stats.verdict(v)
}

// deliverJob sends a relayed job (as the given notify line), preceded by a new
// difficulty when one is due. Called by the slot's broadcast, concurrently with the
// reader; a job delivered before the subscribe result is held for handleSubscribe.
func (m *session) deliverJob(rj *relayJob, notify []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live {
		m.early = rj
		return
	}
	if m.deliverLocked(rj, notify) {
		m.c.flush()
	}
}

// deliverLocked appends a set_difficulty when the difficulty changes, then the job,
// and records the job in the window at the target it was sent with: a difficulty
// applies from the next job, as firmware applies it, and shares on older jobs keep
// theirs. It reports whether it appended anything; the caller flushes. mu must be
// held.
func (m *session) deliverLocked(rj *relayJob, notify []byte) bool {
	if m.c.isClosed() {
		return false
	}
	// Vardiff looks at every job, so a miner that finds nothing is lowered too.
	if d := m.vd.check(m.srv.now(), m.sentDiff); d > 0 {
		m.diff = d
	}
	cfg := &m.srv.cfg
	d := clampDifficulty(m.diff, m.floorLocked(), cfg.MaxDifficulty, rj.upDifficulty, cfg.PowerOfTwoDifficulty)
	if d != m.targetFor {
		t, err := stratum.TargetFromDifficulty(d)
		if err != nil {
			// m.event reads reader-owned state; this may run on a slot goroutine.
			m.srv.log.Warn().Uint64("miner", m.id).Float64("difficulty", d).Msg("job not sent: no target for the difficulty")
			return false
		}
		m.target, m.targetFor = t, d
	}
	m.window.Add(rj.job, m.target)
	m.relays[m.relayNext] = rj
	m.relayNext = (m.relayNext + 1) % len(m.relays)
	if d != m.sentDiff {
		var buf [notificationBuffer]byte
		m.c.send(stratum.AppendSetDifficulty(buf[:0], d))
		m.sentDiff = d
	}
	m.c.send(notify)
	return true
}

// upstreamMask applies the upstream's version mask to a rolling miner at once
// (BIP 310: set_version_mask is valid immediately). Called by the slot.
func (m *session) upstreamMask(up uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live {
		m.pendingUpMask, m.hasPendingUp = up, true
		return
	}
	m.upMask = up
	if m.rolling && m.setMaskLocked(m.wantMask&up) {
		m.c.flush()
	}
}

// setMaskLocked grants mask and tells the miner when it changed. mu must be held.
func (m *session) setMaskLocked(mask uint32) bool {
	if mask == m.mask {
		return false
	}
	m.mask = mask
	var buf [notificationBuffer]byte
	m.c.send(stratum.AppendSetVersionMask(buf[:0], mask))
	return true
}

// sendReconnect asks the miner to reconnect (to host:port, or the same server).
func (m *session) sendReconnect(host string, port, wait int) {
	m.mu.Lock()
	var buf [notificationBuffer]byte
	m.c.send(stratum.AppendReconnect(buf[:0], host, port, wait))
	m.mu.Unlock()
	m.c.flush()
}

// workerAccount returns the account prefix: the worker name before the first dot.
func workerAccount(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}
