package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/stratum"
)

// Limits of an upstream connection.
const (
	// upstreamMaxLineSize bounds one line from a pool. A mining.notify with a large
	// coinbase and a full merkle branch stays well below it.
	upstreamMaxLineSize = 64 << 10
	// upstreamMaxEarlyEvents bounds the jobs and difficulty changes a pool may send
	// before it has answered subscribe and authorize (they are held until then).
	upstreamMaxEarlyEvents = 64
	// upstreamMaxRejectReasons bounds the distinct reject reasons counted; later
	// reasons are counted as "other".
	upstreamMaxRejectReasons = 32
	// upstreamMaxWriteBuffer is the largest write buffer kept between writes.
	upstreamMaxWriteBuffer = 64 << 10
	// upstreamHealthChecks is how many health checks run per the shorter of
	// JobTimeout and SubmitTimeout; a timeout is noticed at most that fraction late.
	upstreamHealthChecks = 4
	// upstreamDefaultAgent is the user agent sent in mining.subscribe and
	// client.get_version answers when none is configured.
	upstreamDefaultAgent = "hashrelay"
)

// upstreamCloseReason says why an upstream connection closed. Every close records
// exactly one, so disconnects can be counted by reason.
type upstreamCloseReason uint8

// The close reasons.
const (
	// upstreamCloseShutdown: the proxy is stopping, or the slot is done with it.
	upstreamCloseShutdown upstreamCloseReason = iota
	// upstreamCloseSwitched: the slot moved to another pool (fail-back).
	upstreamCloseSwitched
	// upstreamCloseIncompatible: the pool's extranonce cannot serve the slot's miners.
	upstreamCloseIncompatible
	// upstreamClosePool: the pool closed the connection, or a read or write failed.
	upstreamClosePool
	// upstreamCloseProtocol: an over-long line, a line that is not JSON, or a
	// set_extranonce the proxy cannot use.
	upstreamCloseProtocol
	// upstreamCloseJobTimeout: no mining.notify within JobTimeout.
	upstreamCloseJobTimeout
	// upstreamCloseSubmitTimeout: a submit (or worker authorize) unanswered past
	// SubmitTimeout.
	upstreamCloseSubmitTimeout
	// upstreamCloseWriteStall: a write did not finish within WriteTimeout.
	upstreamCloseWriteStall
	// upstreamCloseReconnect: the pool sent client.reconnect; the close's error is
	// an *upstreamReconnect saying where to.
	upstreamCloseReconnect

	numUpstreamCloseReasons = iota
)

var upstreamCloseNames = [numUpstreamCloseReasons]string{
	upstreamCloseShutdown:      "shutdown",
	upstreamCloseSwitched:      "switched",
	upstreamCloseIncompatible:  "incompatible",
	upstreamClosePool:          "pool_closed",
	upstreamCloseProtocol:      "protocol",
	upstreamCloseJobTimeout:    "job_timeout",
	upstreamCloseSubmitTimeout: "submit_timeout",
	upstreamCloseWriteStall:    "write_stall",
	upstreamCloseReconnect:     "reconnect_requested",
}

// String returns the reason as a metric label.
func (r upstreamCloseReason) String() string {
	if int(r) < len(upstreamCloseNames) {
		return upstreamCloseNames[r]
	}
	return "unknown"
}

// unhealthy reports whether the reason is the pool's failure, not a decision of
// the proxy or a request of the pool.
func (r upstreamCloseReason) unhealthy() bool {
	switch r {
	case upstreamClosePool, upstreamCloseProtocol, upstreamCloseJobTimeout,
		upstreamCloseSubmitTimeout, upstreamCloseWriteStall:
		return true
	}
	return false
}

// upstreamReconnect is the error of an upstream closed by the pool's
// client.reconnect: where the pool asked the proxy to go. The slot decides; it is
// never relayed to miners.
type upstreamReconnect struct {
	// Host is empty and Port 0 when unchanged.
	Host string
	Port int
	Wait time.Duration
}

func (r *upstreamReconnect) Error() string {
	return fmt.Sprintf("pool asked to reconnect to %s (wait %v)", r.addr("same host:same port"), r.Wait)
}

// addr returns the address to reconnect to, taking what the pool left out from
// current (host:port).
func (r *upstreamReconnect) addr(current string) string {
	host, port, err := net.SplitHostPort(current)
	if err != nil {
		host, port = current, ""
	}
	if r.Host != "" {
		host = r.Host
	}
	if r.Port != 0 {
		port = strconv.Itoa(r.Port)
	}
	return net.JoinHostPort(host, port)
}

// Errors an upstream reports.
var (
	// errUpstreamRefused wraps a pool's refusal of mining.subscribe or authorize.
	errUpstreamRefused = errors.New("pool refused")
	// errUpstreamClosed fails a request the pool will never answer: the connection
	// closed first (the close reason is appended).
	errUpstreamClosed = errors.New("upstream closed before the pool answered")
	// errUpstreamSubmitTimeout fails a request unanswered past SubmitTimeout.
	errUpstreamSubmitTimeout = errors.New("pool did not answer within the submit timeout")
	// errUpstreamPin reports a TLS certificate chain without the pinned key.
	errUpstreamPin = errors.New("no certificate in the pool's chain matches the pinned key")
)

// upstreamEvents receives an upstream's events on its reader goroutine, one at a
// time and in wire order. Handlers must not block; they may call the upstream's
// methods, close included.
//
// Jobs and difficulty changes a pool sends before answering authorize (as ckpool
// does) are held and delivered first, once dialUpstream has succeeded: they may
// arrive before dialUpstream's caller has stored the returned pointer, so handlers
// should key on u. upstreamClosed comes last, exactly once, and only for an
// upstream that dialUpstream returned.
type upstreamEvents interface {
	// upstreamJob receives every mining.notify, clean or not.
	upstreamJob(u *upstream, j *stratum.Job)
	// upstreamDifficulty receives mining.set_difficulty; it applies to the pool's
	// next job.
	upstreamDifficulty(u *upstream, d float64)
	// upstreamExtranonce receives mining.set_extranonce (en1 belongs to the
	// receiver); it applies from the pool's next job.
	upstreamExtranonce(u *upstream, en1 []byte, en2Size int)
	// upstreamVersionMask receives a changed mask (set_version_mask, or a configure
	// answer that came after the handshake), already limited to the mask asked
	// for; it is valid at once.
	upstreamVersionMask(u *upstream, mask uint32)
	// upstreamClosed reports the close, after every other event. For
	// upstreamCloseReconnect, err is an *upstreamReconnect.
	upstreamClosed(u *upstream, reason upstreamCloseReason, err error)
}

// upstreamConfig configures one upstream connection. Zero durations take the
// Default* values of Config.
type upstreamConfig struct {
	// Pool is the pool's address, account and TLS settings.
	Pool PoolURL
	// Agent is the user agent for mining.subscribe and client.get_version.
	// Default upstreamDefaultAgent.
	Agent string
	// VersionMask is the version-rolling mask asked for in mining.configure; 0
	// sends no configure.
	VersionMask uint32
	// SessionID, when set, is sent in mining.subscribe to resume that session.
	SessionID string
	// ResumeExtranonce1 is the extranonce1 of the session being resumed: Resumed is
	// set when the pool gives it back. When nil, SessionID is taken as hex
	// extranonce1 (as ckpool's session ids, and ours when the pool gave none, are).
	ResumeExtranonce1 []byte

	DialTimeout   time.Duration // connect, TLS and subscribe+authorize; default DefaultDialTimeout
	JobTimeout    time.Duration // no notify this long is unhealthy; default DefaultJobTimeout
	SubmitTimeout time.Duration // a submit unanswered this long is unhealthy; default DefaultSubmitTimeout
	WriteTimeout  time.Duration // a write stalled this long is unhealthy; default DefaultWriteTimeout

	// Log is the upstream's logger. It should name the pool (Server.upstreamConfig
	// adds pool=URL, without the password); the upstream adds no field of its own,
	// so none is repeated.
	Log zerolog.Logger

	// tls, when set, replaces the TLS defaults (system roots): a test hook.
	tls *tls.Config
}

func (c *upstreamConfig) agent() string { return orDefault(c.Agent, upstreamDefaultAgent) }
func (c *upstreamConfig) dialTimeout() time.Duration {
	return orDefault(c.DialTimeout, DefaultDialTimeout)
}
func (c *upstreamConfig) jobTimeout() time.Duration {
	return orDefault(c.JobTimeout, DefaultJobTimeout)
}
func (c *upstreamConfig) submitTimeout() time.Duration {
	return orDefault(c.SubmitTimeout, DefaultSubmitTimeout)
}
func (c *upstreamConfig) writeTimeout() time.Duration {
	return orDefault(c.WriteTimeout, DefaultWriteTimeout)
}

// tlsConfig returns the client TLS config for host: the system roots (or the test
// hook's), and with a pin, a check that some certificate of the verified chain has
// the pinned SHA-256 of its SubjectPublicKeyInfo.
func (c *upstreamConfig) tlsConfig(host string) *tls.Config {
	tc := &tls.Config{}
	if c.tls != nil {
		tc = c.tls.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	if pin := c.Pool.Pin; len(pin) > 0 {
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			for _, chain := range cs.VerifiedChains {
				for _, cert := range chain {
					if sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo); bytes.Equal(sum[:], pin) {
						return nil
					}
				}
			}
			return errUpstreamPin
		}
	}
	return tc
}

// upstream is one connection to one pool, speaking the client side of Stratum V1:
// configure, subscribe (resuming when asked), extranonce.subscribe and authorize
// pipelined, then jobs, difficulty, version mask and extranonce changes delivered
// through upstreamEvents, and submits under the proxy's own numeric ids matched to
// their answers in any order.
//
// One reader goroutine owns the parse state; a health goroutine enforces JobTimeout
// and SubmitTimeout. Writes from any goroutine go out under wmu with a deadline.
type upstream struct {
	// Set by the handshake, then read-only: the subscription's extranonce1 and
	// extranonce2 size (a later set_extranonce is only reported through
	// upstreamExtranonce), the session id to resume it later (the subscription id,
	// or extranonce1 hex when the pool gave none), and whether the pool gave back
	// the extranonce1 of the session asked to resume.
	Extranonce1     []byte
	Extranonce2Size int
	SessionID       string
	Resumed         bool

	cfg   upstreamConfig
	ev    upstreamEvents
	log   zerolog.Logger
	conn  net.Conn  // what the protocol reads and writes (TLS when asked)
	raw   net.Conn  // the TCP connection under it: closing it never blocks
	epoch time.Time // monotonic base of lastJob

	mask    atomic.Uint32 // negotiated version mask
	diff    atomic.Uint64 // math.Float64bits of the current difficulty
	lastJob atomic.Int64  // time since epoch of the last notify, or of the handshake
	nextID  atomic.Uint64 // the proxy's request ids

	// Read-only after dialUpstream.
	configureID, extranonceSubID uint64
	hsDeadline                   time.Time // write deadline bound while handshaking

	// Reader goroutine only (the dialing goroutine until the handshake is done).
	lr          *stratum.LineReader
	dec         stratum.Decoder
	handshaking bool
	early       []upstreamEvent

	wmu  sync.Mutex
	wbuf []byte // wmu must be held

	mu       sync.Mutex
	pending  map[uint64]upstreamRequest // mu; nil once closed
	reason   upstreamCloseReason        // mu; set by the close
	closeErr error                      // mu; set by the close
	rejects  map[string]uint64          // mu

	closed       atomic.Bool
	quit         chan struct{} // closed by the close: stops the health goroutine
	healthExited chan struct{}
	exited       chan struct{} // closed when both goroutines are done

	sent, accepted, rejected, timeouts, lost atomic.Uint64
	bytesIn, bytesOut                        atomic.Uint64
}

// upstreamEvent is one held event: method says which fields are set.
type upstreamEvent struct {
	method  stratum.Method
	job     *stratum.Job
	diff    float64
	en1     []byte
	en2Size int
	mask    uint32
}

// dialUpstream connects to cfg.Pool (TLS when asked), sends configure (when
// cfg.VersionMask is set), subscribe, extranonce.subscribe and authorize without
// waiting between them, and returns once subscribe and authorize have succeeded,
// within cfg.DialTimeout and ctx. A refusal is an error naming the pool's reason.
// ctx bounds the dial only: the upstream lives until it closes. ev receives its
// events from then on.
func dialUpstream(ctx context.Context, cfg upstreamConfig, ev upstreamEvents) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout())
	defer cancel()
	u := &upstream{
		cfg:          cfg,
		ev:           ev,
		log:          cfg.Log,
		epoch:        time.Now(),
		pending:      make(map[uint64]upstreamRequest),
		quit:         make(chan struct{}),
		healthExited: make(chan struct{}),
		exited:       make(chan struct{}),
	}
	u.diff.Store(math.Float64bits(1)) // Stratum's difficulty before any set_difficulty
	conn, err := u.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Pool.Addr, err)
	}
	u.conn = conn
	u.lr = stratum.NewLineReader(conn, upstreamMaxLineSize)
	if err := u.handshake(ctx); err != nil {
		u.raw.Close()
		return nil, fmt.Errorf("upstream %s: %w", cfg.Pool.Addr, err)
	}
	u.lastJob.Store(int64(time.Since(u.epoch)))
	u.log.Debug().Str("session", u.SessionID).Bool("resumed", u.Resumed).
		Uint32("version_mask", u.mask.Load()).Msg("upstream ready")
	go u.readLoop()
	go u.healthLoop()
	return u, nil
}

// dial opens the TCP connection (u.raw), counting its bytes, and the TLS session
// on top.
func (u *upstream) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", u.cfg.Pool.Addr)
	if err != nil {
		return nil, err
	}
	u.raw = raw
	conn := net.Conn(&upstreamCountingConn{Conn: raw, in: &u.bytesIn, out: &u.bytesOut})
	if !u.cfg.Pool.TLS {
		return conn, nil
	}
	host, _, err := net.SplitHostPort(u.cfg.Pool.Addr)
	if err != nil {
		host = u.cfg.Pool.Addr
	}
	tc := tls.Client(conn, u.cfg.tlsConfig(host))
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// handshake sends the opening requests in one write and reads until subscribe and
// authorize are answered. Runs on the dialing goroutine, before the reader starts.
func (u *upstream) handshake(ctx context.Context) error {
	u.handshaking = true
	u.hsDeadline, _ = ctx.Deadline()
	u.conn.SetDeadline(u.hsDeadline)
	stop := context.AfterFunc(ctx, func() { u.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	cfg := &u.cfg
	if cfg.VersionMask != 0 {
		u.configureID = u.nextID.Add(1)
	}
	subscribeID := u.nextID.Add(1)
	u.extranonceSubID = u.nextID.Add(1)
	authorizeID := u.nextID.Add(1)
	err := u.send(func(dst []byte) []byte {
		if u.configureID != 0 {
			dst = stratum.AppendConfigure(dst, u.configureID, stratum.ExtVersionRolling, cfg.VersionMask, 0)
		}
		dst = stratum.AppendSubscribe(dst, subscribeID, cfg.agent(), cfg.SessionID)
		dst = stratum.AppendExtranonceSubscribe(dst, u.extranonceSubID)
		return stratum.AppendAuthorize(dst, authorizeID, cfg.Pool.User, cfg.Pool.Password)
	})
	if err != nil {
		return handshakeErr(ctx, err)
	}

	var subscribed, authorized bool
	for !subscribed || !authorized {
		line, err := u.lr.ReadLine()
		if err != nil {
			return handshakeErr(ctx, err)
		}
		m, err := u.dec.Decode(line)
		if err == stratum.ErrNotMessage {
			continue
		}
		if err != nil {
			return err
		}
		if m.Kind == stratum.KindResponse {
			switch id, _ := parseUpstreamID(m.ID); id {
			case subscribeID:
				r, err := m.SubscribeResult()
				if err != nil {
					return refusal(stratum.MethodSubscribe, m, err)
				}
				u.subscribed(r)
				subscribed = true
				continue
			case authorizeID:
				if !m.Accepted() {
					return refusal(stratum.MethodAuthorize, m, nil)
				}
				authorized = true
				continue
			}
		}
		if _, err := u.handle(m); err != nil {
			return err
		}
		if len(u.early) > upstreamMaxEarlyEvents {
			return fmt.Errorf("more than %d jobs and changes before authorize", upstreamMaxEarlyEvents)
		}
	}
	if !stop() {
		return handshakeErr(ctx, context.Cause(ctx))
	}
	u.conn.SetDeadline(time.Time{})
	u.hsDeadline = time.Time{}
	u.handshaking = false
	return nil
}

// handshakeErr names the dial deadline or cancellation rather than the socket
// deadline it caused (which may fire a moment before ctx reports it).
func handshakeErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = context.DeadlineExceeded
	}
	return fmt.Errorf("handshake: %w", err)
}

// refusal builds the error for a refused subscribe or authorize, with the pool's
// code and reason when it gave them, else what was wrong with its answer.
func refusal(method stratum.Method, m *stratum.Message, bad error) error {
	r := m.Reject()
	if bad != nil && r.Code == 0 && len(r.Reason) == 0 {
		if v, ok := m.BoolResult(); !ok || v {
			return fmt.Errorf("%s: %w", method, bad) // neither a result nor a refusal
		}
	}
	return fmt.Errorf("%w %s: %s", errUpstreamRefused, method, rejectText(r))
}

// subscribed records the subscription. Dialing goroutine only.
func (u *upstream) subscribed(r stratum.SubscribeResult) {
	u.Extranonce1, u.Extranonce2Size = r.Extranonce1, r.Extranonce2Size
	u.SessionID = r.SessionID
	if u.SessionID == "" {
		u.SessionID = hex.EncodeToString(r.Extranonce1)
	}
	if u.cfg.SessionID == "" {
		return
	}
	want := u.cfg.ResumeExtranonce1
	if want == nil {
		b, err := hex.DecodeString(u.cfg.SessionID)
		if err != nil {
			return
		}
		want = b
	}
	u.Resumed = bytes.Equal(want, r.Extranonce1)
}

// versionMask returns the negotiated version-rolling mask (0: no rolling). Safe
// from any goroutine.
func (u *upstream) versionMask() uint32 { return u.mask.Load() }

// difficulty returns the pool's latest set_difficulty (1 before any), which
// applies to its next job. Safe from any goroutine.
func (u *upstream) difficulty() float64 { return math.Float64frombits(u.diff.Load()) }

// done is closed once the upstream has closed and delivered upstreamClosed.
func (u *upstream) done() <-chan struct{} { return u.exited }

// readLoop delivers the events held during the handshake, then reads until the
// connection fails or is closed, and reports the close last.
func (u *upstream) readLoop() {
	defer close(u.exited)
	for i := range u.early {
		if u.closed.Load() {
			break
		}
		u.deliver(&u.early[i])
	}
	u.early = nil
	reason, err := u.readLines()
	u.closeWith(reason, err)
	<-u.healthExited
	u.mu.Lock()
	reason, err = u.reason, u.closeErr
	u.mu.Unlock()
	u.ev.upstreamClosed(u, reason, err)
}

// readLines handles lines until one ends the connection, returning why. Reader
// goroutine only.
func (u *upstream) readLines() (upstreamCloseReason, error) {
	for !u.closed.Load() {
		line, err := u.lr.ReadLine()
		if err != nil {
			if errors.Is(err, stratum.ErrLineTooLong) {
				return upstreamCloseProtocol, err
			}
			return upstreamClosePool, err
		}
		m, err := u.dec.Decode(line)
		if err == stratum.ErrNotMessage {
			u.log.Debug().Msg("pool sent an object that is neither a request nor a response")
			continue
		}
		if err != nil {
			return upstreamCloseProtocol, err
		}
		if reason, err := u.handle(m); err != nil {
			return reason, err
		}
	}
	return upstreamCloseShutdown, nil // already closed: the recorded reason stands
}

// handle acts on one message from the pool and returns a reason and error when the
// connection must close. Reader goroutine (or dialing goroutine while handshaking).
func (u *upstream) handle(m *stratum.Message) (upstreamCloseReason, error) {
	if m.Kind == stratum.KindResponse {
		u.handleResponse(m)
		return 0, nil
	}
	request := m.Kind == stratum.KindRequest
	var reply func(dst []byte) []byte
	switch m.Method {
	case stratum.MethodNotify:
		j, err := m.Notify()
		if err != nil {
			u.log.Warn().Err(err).Msg("ignoring a mining.notify the proxy cannot use")
			break
		}
		u.lastJob.Store(int64(time.Since(u.epoch)))
		u.emit(upstreamEvent{method: stratum.MethodNotify, job: j})
	case stratum.MethodSetDifficulty:
		d, err := m.Difficulty()
		if err != nil {
			u.log.Warn().Err(err).Msg("ignoring a mining.set_difficulty the proxy cannot use")
			break
		}
		u.diff.Store(math.Float64bits(d))
		u.emit(upstreamEvent{method: stratum.MethodSetDifficulty, diff: d})
	case stratum.MethodSetExtranonce:
		en1, n, err := m.SetExtranonce()
		if err != nil {
			return upstreamCloseProtocol, err // shares on the unknown extranonce would be invalid
		}
		u.emit(upstreamEvent{method: stratum.MethodSetExtranonce, en1: en1, en2Size: n})
	case stratum.MethodSetVersionMask:
		mask, err := m.VersionMask()
		if err != nil {
			u.log.Warn().Err(err).Msg("ignoring a mining.set_version_mask the proxy cannot use")
			break
		}
		mask &= u.cfg.VersionMask
		u.mask.Store(mask)
		u.emit(upstreamEvent{method: stratum.MethodSetVersionMask, mask: mask})
	case stratum.MethodReconnect:
		r, err := m.Reconnect()
		if err != nil {
			u.log.Debug().Err(err).Msg("client.reconnect params unusable; taking it as to the same pool")
		}
		return upstreamCloseReconnect, &upstreamReconnect{
			Host: string(r.Host), Port: r.Port, Wait: time.Duration(r.Wait) * time.Second,
		}
	case stratum.MethodGetVersion:
		reply = func(dst []byte) []byte {
			return stratum.AppendStringResult(dst, m.ID, []byte(u.cfg.agent()))
		}
	case stratum.MethodPing:
		reply = func(dst []byte) []byte { return stratum.AppendResult(dst, m.ID, `"pong"`) }
	case stratum.MethodShowMessage:
		u.log.Info().Bytes("message", m.ShowMessage()).Msg("message from the pool")
		reply = func(dst []byte) []byte { return stratum.AppendBool(dst, m.ID, true) }
	default:
		u.log.Debug().Bytes("method", m.MethodName).Msg("pool sent a method the proxy does not serve")
		reply = func(dst []byte) []byte { return stratum.AppendError(dst, m.ID, stratum.ErrMethodNotFound) }
	}
	if request && reply != nil {
		if err := u.send(reply); err != nil {
			return writeCloseReason(err), err
		}
	}
	return 0, nil
}

// handleResponse matches an answer to the request it answers.
func (u *upstream) handleResponse(m *stratum.Message) {
	id, ok := parseUpstreamID(m.ID)
	if !ok {
		u.log.Debug().Bytes("id", m.ID).Msg("pool answered an id the proxy never sent")
		return
	}
	u.mu.Lock()
	p, found := u.pending[id]
	if found {
		delete(u.pending, id)
	}
	u.mu.Unlock()
	switch {
	case found:
		u.answer(p, m)
	case id == u.configureID:
		var mask uint32
		if r, err := m.ConfigureResult(); err == nil && r.Granted&stratum.ExtVersionRolling != 0 {
			mask = r.VersionMask & u.cfg.VersionMask
		}
		if u.mask.Swap(mask) != mask && !u.handshaking {
			u.emit(upstreamEvent{method: stratum.MethodSetVersionMask, mask: mask})
		}
	case id == u.extranonceSubID:
		ok, _ := m.BoolResult()
		u.log.Debug().Bool("ok", ok).Msg("mining.extranonce.subscribe answered")
	default:
		u.log.Debug().Uint64("id", id).Msg("pool answered a request no longer pending")
	}
}

// emit delivers an event, or holds it while the handshake is on.
func (u *upstream) emit(e upstreamEvent) {
	if u.handshaking {
		u.early = append(u.early, e)
		return
	}
	u.deliver(&e)
}

func (u *upstream) deliver(e *upstreamEvent) {
	switch e.method {
	case stratum.MethodNotify:
		u.ev.upstreamJob(u, e.job)
	case stratum.MethodSetDifficulty:
		u.ev.upstreamDifficulty(u, e.diff)
	case stratum.MethodSetExtranonce:
		u.ev.upstreamExtranonce(u, e.en1, e.en2Size)
	case stratum.MethodSetVersionMask:
		u.ev.upstreamVersionMask(u, e.mask)
	}
}

// healthLoop closes the upstream when no job came within JobTimeout or a request
// is unanswered past SubmitTimeout.
func (u *upstream) healthLoop() {
	defer close(u.healthExited)
	jobTimeout, submitTimeout := u.cfg.jobTimeout(), u.cfg.submitTimeout()
	t := time.NewTicker(max(min(jobTimeout, submitTimeout)/upstreamHealthChecks, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-u.quit:
			return
		case <-t.C:
		}
		if idle := time.Since(u.epoch) - time.Duration(u.lastJob.Load()); idle > jobTimeout {
			u.closeWith(upstreamCloseJobTimeout, fmt.Errorf("no mining.notify for %v", idle.Round(time.Millisecond)))
			return
		}
		if age := u.oldestPending(); age > submitTimeout {
			u.closeWith(upstreamCloseSubmitTimeout, fmt.Errorf("a request unanswered for %v", age.Round(time.Millisecond)))
			return
		}
	}
}

// close closes the upstream for reason: see closeWith.
func (u *upstream) close(reason upstreamCloseReason) { u.closeWith(reason, nil) }

// closeWith closes the upstream once, recording reason and err: it logs the
// decision, closes the socket, and fails every pending request. It waits for
// nothing, so it may be called from any goroutine, event handlers included;
// upstreamClosed follows on the reader goroutine.
func (u *upstream) closeWith(reason upstreamCloseReason, err error) {
	if !u.closed.CompareAndSwap(false, true) {
		return
	}
	now := time.Now()
	u.mu.Lock()
	u.reason, u.closeErr = reason, err
	pending := u.pending
	u.pending = nil
	u.mu.Unlock()

	e := u.log.Info()
	if reason.unhealthy() {
		e = u.log.Warn()
	}
	e.Str("reason", reason.String()).AnErr("error", err).Int("pending", len(pending)).Msg("upstream closed")

	close(u.quit)
	// The TCP connection, not the TLS one: a TLS close first sends close_notify,
	// which can block on a stalled socket.
	u.raw.Close()
	closedErr := fmt.Errorf("%w (%s)", errUpstreamClosed, reason)
	for _, p := range pending {
		u.fail(p, now, closedErr)
	}
}

// writeCloseReason classifies a failed write.
func writeCloseReason(err error) upstreamCloseReason {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return upstreamCloseWriteStall
	}
	return upstreamClosePool
}

// send writes what fill appends, under wmu, within WriteTimeout (or the handshake's
// deadline, when sooner). The caller closes the upstream on an error.
func (u *upstream) send(fill func(dst []byte) []byte) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	u.wbuf = fill(u.wbuf[:0])
	deadline := time.Now().Add(u.cfg.writeTimeout())
	if !u.hsDeadline.IsZero() && u.hsDeadline.Before(deadline) {
		deadline = u.hsDeadline
	}
	u.conn.SetWriteDeadline(deadline)
	_, err := u.conn.Write(u.wbuf)
	if cap(u.wbuf) > upstreamMaxWriteBuffer {
		u.wbuf = nil
	}
	return err
}

// parseUpstreamID parses an answer's id, one of the proxy's numbers (some pools
// echo it as a string).
func parseUpstreamID(b []byte) (uint64, bool) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// upstreamCountingConn counts the bytes that cross a connection (TLS records
// included), one atomic add per read or write.
type upstreamCountingConn struct {
	net.Conn
	in, out *atomic.Uint64
}

func (c *upstreamCountingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(uint64(n))
	return n, err
}

func (c *upstreamCountingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(uint64(n))
	return n, err
}
