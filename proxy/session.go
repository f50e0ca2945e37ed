package proxy

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/stratum"
)

// maxMalformed is how many consecutive undecodable lines a miner may send before it
// is closed for a protocol error; each one before that gets an error reply.
const maxMalformed = 8

// session is one miner's connection. The reader goroutine owns everything not marked
// otherwise; mu guards what job delivery (a slot's broadcast) also touches.
type session struct {
	srv  *Server
	c    *conn
	id   uint64
	log  zerolog.Logger
	addr string

	// Reader-owned.
	dec         stratum.Decoder
	checker     stratum.Checker
	submit      stratum.Submit
	cfgReq      stratum.ConfigureRequest
	out         []byte // reply scratch
	subscribed  bool
	authorized  bool
	xnsub       bool // sent mining.extranonce.subscribe or subscribe-extranonce
	malformed   int
	agent       string
	acct        *worker
	slot        *slot
	prefix      []byte
	prefixNum   uint64
	en2Size     int
	wantMask    uint32 // the mask the miner asked for in mining.configure
	rolling     bool   // version rolling negotiated
	vd          vardiff
	suggested   float64 // suggest_difficulty / minimum-difficulty, 0 if none
	minerMinDif float64

	mu        sync.Mutex
	window    *stratum.JobWindow
	mask      uint32  // granted version mask
	diff      float64 // difficulty for the next job
	sentDiff  float64 // difficulty last sent
	target    stratum.Target
	targetFor float64
	scratch   []byte // delivery scratch, mu
}

func newSession(srv *Server, c *conn, id uint64, addr string) *session {
	m := &session{
		srv:    srv,
		c:      c,
		id:     id,
		addr:   addr,
		log:    srv.log.With().Uint64("miner", id).Str("remote", addr).Logger(),
		window: stratum.NewJobWindow(srv.cfg.jobsPerMiner()),
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
			m.c.flush()
		}
		return ok
	})
	if m.slot != nil {
		m.slot.leave(m)
	}
	m.srv.stats.closed(reason)
	if m.acct != nil {
		m.acct.disconnected()
	}
	m.log.Debug().Str("reason", reason.String()).Msg("miner closed")
}

// reply appends a finished line to the connection.
func (m *session) send(b []byte) { m.c.send(b) }

// handle processes one line; false closes the connection (the reason already set).
func (m *session) handle(ctx context.Context, line []byte) bool {
	msg, err := m.dec.Decode(line)
	if err != nil {
		m.malformed++
		m.srv.stats.m.MalformedLines.Inc()
		if m.malformed > maxMalformed {
			m.c.close(CloseProtocol)
			return false
		}
		m.send(stratum.AppendError(m.out[:0], nil, stratum.ErrParse))
		return true
	}
	m.malformed = 0
	if msg.Kind == stratum.KindResponse {
		return true // answers to our client.get_version and the like
	}
	switch msg.Method {
	case stratum.MethodSubmit:
		m.handleSubmit(msg)
	case stratum.MethodConfigure:
		m.handleConfigure(msg)
	case stratum.MethodSubscribe:
		return m.handleSubscribe(ctx, msg)
	case stratum.MethodAuthorize:
		return m.handleAuthorize(msg)
	case stratum.MethodExtranonceSubscribe:
		m.xnsub = true
		m.reply(msg, true)
	case stratum.MethodSuggestDifficulty:
		if d, err := msg.Difficulty(); err == nil {
			m.suggest(d)
		}
		m.reply(msg, true)
	case stratum.MethodSuggestTarget:
		if t, err := msg.SuggestTarget(); err == nil {
			m.suggest(t.Difficulty())
		}
		m.reply(msg, true)
	case stratum.MethodGetTransactions:
		if msg.Kind == stratum.KindRequest {
			m.send(stratum.AppendResult(m.out[:0], msg.ID, "[]"))
		}
	case stratum.MethodPing:
		if msg.Kind == stratum.KindRequest {
			m.send(stratum.AppendStringResult(m.out[:0], msg.ID, []byte("pong")))
		}
	case stratum.MethodGetVersion:
		if msg.Kind == stratum.KindRequest {
			m.send(stratum.AppendStringResult(m.out[:0], msg.ID, []byte("hashrelay/"+m.srv.cfg.Version)))
		}
	default:
		if msg.Kind == stratum.KindRequest {
			m.send(stratum.AppendError(m.out[:0], msg.ID, stratum.ErrMethodNotFound))
		}
	}
	return true
}

func (m *session) reply(msg *stratum.Message, v bool) {
	if msg.Kind == stratum.KindRequest {
		m.send(stratum.AppendBool(m.out[:0], msg.ID, v))
	}
}

// suggest records a miner's difficulty wish, honoured within the configured bounds.
func (m *session) suggest(d float64) {
	m.suggested = d
	m.mu.Lock()
	m.diff = m.clamp(d)
	m.mu.Unlock()
}

// clamp bounds a difficulty for this miner; the upstream ceiling is applied per job.
func (m *session) clamp(d float64) float64 {
	cfg := &m.srv.cfg
	lo := max(cfg.minDifficulty(), m.minerMinDif)
	return clampDifficulty(d, lo, cfg.MaxDifficulty, 0, cfg.PowerOfTwoDifficulty)
}

func (m *session) handleConfigure(msg *stratum.Message) {
	if err := msg.Configure(&m.cfgReq); err != nil {
		m.send(stratum.AppendError(m.out[:0], msg.ID, stratum.ErrOther))
		return
	}
	req := &m.cfgReq
	res := stratum.ConfigureResult{Asked: req.Extensions, Unknown: req.Unknown}
	if req.Extensions&stratum.ExtVersionRolling != 0 {
		m.wantMask = req.VersionMask
		mask := req.VersionMask & m.upstreamMaskNow()
		if mask != 0 {
			res.Granted |= stratum.ExtVersionRolling
			res.VersionMask = mask
			m.rolling = true
			m.mu.Lock()
			m.mask = mask
			m.mu.Unlock()
		}
	}
	if req.Extensions&stratum.ExtMinimumDifficulty != 0 {
		res.Granted |= stratum.ExtMinimumDifficulty
		m.minerMinDif = req.MinimumDifficulty
		m.mu.Lock()
		m.diff = m.clamp(m.diff)
		m.mu.Unlock()
	}
	if req.Extensions&stratum.ExtSubscribeExtranonce != 0 {
		res.Granted |= stratum.ExtSubscribeExtranonce
		m.xnsub = true
	}
	if req.Extensions&stratum.ExtInfo != 0 {
		res.Granted |= stratum.ExtInfo
	}
	m.send(stratum.AppendConfigureResult(m.out[:0], msg.ID, &res))
}

// upstreamMaskNow is the version mask the miner may roll: the upstream's when known,
// else the mask the proxy asks pools for.
func (m *session) upstreamMaskNow() uint32 {
	if m.slot != nil {
		m.slot.mu.Lock()
		defer m.slot.mu.Unlock()
		if m.slot.up != nil {
			return m.slot.mask
		}
	}
	return m.srv.cfg.versionMask()
}

func (m *session) handleSubscribe(ctx context.Context, msg *stratum.Message) bool {
	if m.subscribed {
		m.send(stratum.AppendError(m.out[:0], msg.ID, stratum.ErrOther))
		return true
	}
	agent, _ := msg.Subscribe()
	m.agent = string(agent)
	sl, prefix, en2, mask, cur, err := m.srv.join(ctx, m)
	if err != nil {
		m.send(stratum.AppendError(m.out[:0], msg.ID, &stratum.Error{Code: 20, Message: err.Error()}))
		return true
	}
	m.slot, m.prefix, m.en2Size = sl, prefix, en2
	m.subscribed = true
	if m.rolling {
		m.upstreamMask(mask)
	}
	sid := strconv.AppendUint(nil, m.id, 16)
	m.send(stratum.AppendSubscribeResult(m.out[:0], msg.ID, sid, prefix, en2))
	if cur != nil {
		// A miner's first job is always clean.
		first := *cur.job
		first.Clean = true
		m.deliverJob(cur, stratum.AppendNotify(nil, &first))
	}
	return true
}

func (m *session) handleAuthorize(msg *stratum.Message) bool {
	user, _, err := msg.Authorize()
	if err != nil {
		m.send(stratum.AppendError(m.out[:0], msg.ID, stratum.ErrUnauthorized))
		return true
	}
	name := string(user)
	if !m.srv.allowed(name) {
		m.send(stratum.AppendError(m.out[:0], msg.ID, stratum.ErrUnauthorized))
		m.log.Info().Str("worker", name).Msg("worker not allowed")
		m.c.close(CloseUnauthorized)
		return false
	}
	if m.acct == nil || m.acct.name != name {
		if m.acct != nil {
			m.acct.disconnected()
		}
		m.acct = m.srv.accounts.connect(name, m.addr, m.agent)
		m.log = m.log.With().Str("worker", name).Logger()
	}
	m.authorized = true
	m.reply(msg, true)
	return true
}

func (m *session) handleSubmit(msg *stratum.Message) {
	s := &m.submit
	if err := msg.Submit(s); err != nil {
		m.rejected(msg, stratum.VerdictMalformed)
		return
	}
	if !m.authorized || m.acct == nil {
		m.send(stratum.AppendError(m.out[:0], msg.ID, stratum.ErrUnauthorized))
		return
	}
	if !m.subscribed {
		m.send(stratum.AppendError(m.out[:0], msg.ID, stratum.ErrNotSubscribed))
		return
	}
	p := stratum.CheckParams{Extranonce1: m.prefix, Extranonce2Size: m.en2Size}
	m.mu.Lock()
	p.VersionMask = m.mask
	// The upstream target is per job: look the job up first.
	j, _ := m.window.Lookup(s.JobID)
	var rj *relayJob
	if j != nil {
		rj = m.slot.relayFor(j)
		if rj != nil {
			p.UpstreamTarget = &rj.upTarget
		}
	}
	r, _ := m.window.Check(&m.checker, s, &p)
	m.mu.Unlock()

	if r.Verdict != stratum.VerdictAccepted {
		m.rejected(msg, r.Verdict)
		return
	}
	m.reply(msg, true)
	now := m.srv.now()
	shareDiff := p.ShareTarget.Difficulty()
	m.acct.addAccepted(now, shareDiff, r.Block)
	m.srv.stats.verdict(stratum.VerdictAccepted)
	if rj != nil && r.MeetsUpstream {
		ps := pendingShare{rj: rj, acct: m.acct, ntime: s.NTime, nonce: s.Nonce, vbits: s.VersionBits, hasVB: s.HasVersionBits, block: r.Block, hash: r.Hash, diff: rj.upDifficulty}
		copy(ps.prefix[:], m.prefix)
		ps.en2Len = uint8(copy(ps.en2[:], s.Extranonce2))
		m.slot.enqueue(ps)
	} else if rj == nil && r.MeetsUpstream {
		m.srv.stats.lost(lostUnknownRelay, m.acct)
	}
	if d := m.vd.observe(now, shareDiff, m.currentDiff()); d > 0 {
		m.mu.Lock()
		m.diff = m.clamp(d)
		m.mu.Unlock()
	}
}

func (m *session) currentDiff() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sentDiff
}

func (m *session) rejected(msg *stratum.Message, v stratum.Verdict) {
	m.send(stratum.AppendError(m.out[:0], msg.ID, v.Err()))
	m.srv.stats.verdict(v)
	if m.acct != nil {
		m.acct.addRejected(v)
	}
}

// deliverJob sends a relayed job (as the given notify line), preceded by a new
// difficulty when one is due: a difficulty applies from the next job, and shares on
// older jobs keep theirs. Called by the slot's broadcast, concurrently with the reader.
func (m *session) deliverJob(rj *relayJob, notify []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c.closed.Load() {
		return
	}
	d := clampDifficulty(m.diff, 0, 0, rj.upDifficulty, m.srv.cfg.PowerOfTwoDifficulty)
	if d != m.targetFor {
		t, err := stratum.TargetFromDifficulty(d)
		if err != nil {
			return
		}
		m.target, m.targetFor = t, d
	}
	m.window.Add(rj.job, m.target)
	if d != m.sentDiff {
		m.scratch = stratum.AppendSetDifficulty(m.scratch[:0], d)
		m.c.send(m.scratch)
		m.sentDiff = d
	}
	m.c.send(notify)
	m.c.flush()
}

// upstreamMask applies the upstream's version mask to a rolling miner at once
// (BIP 310: set_version_mask is valid immediately).
func (m *session) upstreamMask(up uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wantMask == 0 {
		return
	}
	mask := m.wantMask & up
	if mask == m.mask {
		return
	}
	m.mask = mask
	m.scratch = stratum.AppendSetVersionMask(m.scratch[:0], mask)
	m.c.send(m.scratch)
	m.c.flush()
}

// sendReconnect asks the miner to reconnect (to host:port, or the same server).
func (m *session) sendReconnect(host string, port, wait int) {
	m.mu.Lock()
	m.scratch = stratum.AppendReconnect(m.scratch[:0], host, port, wait)
	m.c.send(m.scratch)
	m.c.flush()
	m.mu.Unlock()
}

// workerAccount returns the account prefix: the worker name before the first dot.
func workerAccount(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

var _ = hex.EncodeToString
var _ = time.Now
