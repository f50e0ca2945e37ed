package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/metrics"
)

// Server is a running HashRelay: the miner listener, the slots and their upstreams,
// and the HTTP status endpoints.
//
// Goroutines. Every goroutine the server starts is counted by wg (slots, HTTP) or by
// the listener (accept loop, one reader per miner); neither starts one once Shutdown
// has begun (stopping, ln.close). Lock order: mu, then a slot's mu.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	now      func() time.Time
	metrics  *metrics.Metrics
	stats    *stats
	health   *poolHealth
	accounts *accounts
	allow    map[string]bool
	curtail  *curtailer // flexible load (curtail.go, curtail_server.go)

	ln      *listener
	fl      *flusher
	hp      *handlerPool // runs the miners' line handling (handlers.go)
	httpSrv *http.Server
	httpLn  net.Listener

	// ctx is the slots' context: it ends when the server stops, after the shares
	// have been flushed.
	ctx    context.Context
	cancel context.CancelFunc
	// minerCtx is the miners' context: it ends as soon as Shutdown begins, so that a
	// subscribe waiting for a slot gives up.
	minerCtx    context.Context
	cancelMiner context.CancelFunc
	wg          sync.WaitGroup

	mu           sync.Mutex
	slots        []*slot
	seats        map[*slot]int // miners subscribed to, or joining, each slot
	sessions     map[*session]struct{}
	stopping     bool // Shutdown has begun: no slot or goroutine starts
	minersClosed bool // Shutdown closed the miners: a late one closes itself

	nextID   atomic.Uint64
	draining atomic.Bool // Shutdown has begun (readyz reads it)
	started  atomic.Bool // Start was called
	running  atomic.Bool // Start succeeded: there is something to shut down

	scratch sync.Pool // []*session for broadcasts

	// tlsOverride, for tests, replaces the upstream TLS configuration.
	tlsOverride *tls.Config

	startedAt time.Time // when Start ran, for uptime
	// openStore opens the account store in StateDir (openAccountStore; tests put
	// a fake in); store is the open one, nil without StateDir.
	openStore func(dir string) (accountStore, string, error)
	store     accountStore
	persist   persistStatus
}

// New validates cfg and builds a Server; Start runs it.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReconnectOnShutdown != "" {
		if _, _, ok := splitReconnect(cfg.ReconnectOnShutdown); !ok {
			return nil, fmt.Errorf("reconnect-on-shutdown: %q: want HOST:PORT", cfg.ReconnectOnShutdown)
		}
	}
	if cfg.ReconnectJitter >= cfg.shutdownTimeout() {
		return nil, fmt.Errorf("reconnect-jitter: %v is not below shutdown-timeout %v: the last miners would be cut off, not told", cfg.ReconnectJitter, cfg.shutdownTimeout())
	}
	pools := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		pools[i] = u.String()
	}
	m := metrics.New()
	s := &Server{
		cfg:       cfg,
		log:       log,
		now:       time.Now,
		metrics:   m,
		stats:     newStats(m, pools),
		health:    newPoolHealth(len(cfg.Upstreams), cfg.backoffMin(), cfg.backoffMax()),
		accounts:  newAccounts(time.Now),
		seats:     make(map[*slot]int),
		openStore: openAccountStore,
		sessions:  make(map[*session]struct{}),
	}
	s.accounts.policy = cfg.statePolicy()
	c, err := newCurtailer(cfg.Curtail, log, nil)
	if err != nil {
		return nil, err
	}
	s.curtail = c
	// The curtailed worker state, power history and energy metrics.
	s.wireEnergy()
	m.SetWorkerSource(s.workerSamples, cfg.MetricsPerWorker, cfg.MetricsMaxWorkers) // <= 0: metrics.DefaultMaxWorkers
	if len(cfg.AllowWorkers) > 0 {
		s.allow = make(map[string]bool, len(cfg.AllowWorkers))
		for _, w := range cfg.AllowWorkers {
			s.allow[w] = true
		}
	}
	return s, nil
}

// Start listens for miners and HTTP and connects the first slot to its pool. The
// server runs until Shutdown; ctx is not kept.
func (s *Server) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("hashrelay: server already started")
	}
	s.startedAt = s.accounts.now()
	if err := s.loadAccounts(); err != nil {
		return err
	}
	nl, err := net.Listen("tcp", s.cfg.listen())
	if err != nil {
		s.closeStore()
		return err
	}
	if addr := s.cfg.httpAddr(); addr != "off" {
		hl, err := net.Listen("tcp", addr)
		if err != nil {
			nl.Close()
			s.closeStore()
			return err
		}
		s.httpLn = hl
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.minerCtx, s.cancelMiner = context.WithCancel(context.Background())
	s.fl = newFlusher(0)
	s.ln = newListener(nl, listenerConfigOf(&s.cfg), s.fl, s.onConn)
	s.hp = newHandlerPool()
	s.ln.hp = s.hp
	s.ln.onReply = func(d time.Duration) { s.metrics.MinerReply.Observe(d.Seconds()) }
	s.ln.onRefuse = func(r CloseReason) {
		s.metrics.ConnectionsClosed.WithLabelValues(r.String()).Inc()
	}
	// Accept errors come in bursts (every accept fails while the process is out of
	// file descriptors): counted each, logged at most once per acceptErrorLogEvery.
	var lastLogged atomic.Int64
	s.ln.onAcceptError = func(err error) {
		s.metrics.AcceptErrors.Inc()
		now := time.Now().UnixNano()
		if last := lastLogged.Load(); now-last >= int64(acceptErrorLogEvery) && lastLogged.CompareAndSwap(last, now) {
			s.log.Warn().Err(err).Msg("accept failed; backing off (open-files limit?)")
		}
	}
	if s.httpLn != nil {
		s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		s.goRun(func() { _ = s.httpSrv.Serve(s.httpLn) })
	}
	s.goRun(func() { s.sampleHistory(s.ctx) })
	s.goRun(func() { s.curtailLoop(s.ctx) })
	if s.store != nil {
		s.goRun(func() { s.saveAccountsLoop(s.ctx) })
	}
	s.mu.Lock()
	s.addSlotLocked()
	s.mu.Unlock()
	s.ln.start()
	s.running.Store(true)
	s.log.Info().Str("stratum", nl.Addr().String()).Str("http", s.HTTPAddr()).Int("pools", len(s.cfg.Upstreams)).Msg("hashrelay started")
	return nil
}

// goRun runs f on a goroutine the server waits for at shutdown. Call it before
// Shutdown begins, or with mu held and stopping checked.
func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Addr is the miner listener's address.
func (s *Server) Addr() net.Addr { return s.ln.addr() }

// HTTPAddr is the HTTP listener's address, or "" when disabled.
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// addSlotLocked starts a new slot and returns it, or nil once Shutdown has begun.
// mu must be held.
func (s *Server) addSlotLocked() *slot {
	if s.stopping {
		return nil
	}
	sl := newSlot(s, len(s.slots))
	s.slots = append(s.slots, sl)
	s.goRun(func() { sl.run(s.ctx) })
	s.goRun(func() { sl.submitLoop(s.ctx) })
	if s.cfg.FakeJobs {
		s.goRun(func() { sl.fakeLoop(s.ctx) })
	}
	return sl
}

// slotCapacity is how many miners sl may hold now (its prefix size is fixed by its
// first upstream). Takes sl.mu: call it with s.mu held or not, never sl.mu.
func slotCapacity(sl *slot) int {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.capacity()
}

// errServerClosed answers a subscribe that arrives once Shutdown has begun.
var errServerClosed = errors.New("proxy is shutting down")

// join places a subscribing miner in the first slot with a free seat, opening a new
// slot (and upstream session) when all are taken. The seat is taken under mu before
// the miner waits for the slot's first job, so a thousand miners subscribing at once
// fill the slots in order instead of all queueing on the first one; it is given back
// when the join fails or the miner leaves (onConn).
func (s *Server) join(ctx context.Context, m *session) (*slot, []byte, int, uint32, *relayJob, error) {
	for tries := 0; tries < 3; tries++ {
		s.mu.Lock()
		var sl *slot
		for _, c := range s.slots {
			if s.seats[c] < slotCapacity(c) {
				sl = c
				break
			}
		}
		if sl == nil {
			if sl = s.addSlotLocked(); sl == nil {
				s.mu.Unlock()
				return nil, nil, 0, 0, nil, errServerClosed
			}
		}
		s.seats[sl]++
		s.mu.Unlock()
		prefix, en2, mask, cur, err := sl.join(ctx, m)
		if err != nil {
			s.leaveSeat(sl)
		}
		if errors.Is(err, errSlotFull) {
			continue // its prefix size shrank under us: try the next slot
		}
		if ctx.Err() != nil && s.draining.Load() {
			err = errServerClosed
		}
		return sl, prefix, en2, mask, cur, err
	}
	return nil, nil, 0, 0, nil, errSlotFull
}

// leaveSeat gives back a seat taken by join.
func (s *Server) leaveSeat(sl *slot) {
	s.mu.Lock()
	s.seats[sl]--
	s.mu.Unlock()
}

// onConn runs a new miner connection on its own (reader) goroutine.
// Opening and closing the session run on a handler (handlers.go), so the reader's
// own stack stays small while the miner is idle.
func (s *Server) onConn(c *conn) {
	var m *session
	s.hp.call(func() { m = s.openSession(c) })
	m.serve(s.minerCtx)
	s.hp.call(func() { s.closeSession(m) })
}

// openSession registers a session for c.
func (s *Server) openSession(c *conn) *session {
	id := s.nextID.Add(1)
	m := newSession(s, c, id, c.remoteAddr())
	s.mu.Lock()
	s.sessions[m] = struct{}{}
	late, draining := s.minersClosed, s.stopping
	s.mu.Unlock()
	s.metrics.Connections.Inc()
	s.metrics.MinersConnected.Inc()
	switch {
	case late:
		// Accepted just before the listener closed, registered after Shutdown
		// closed the miners: serve reads nothing and counts the close.
		c.close(CloseShutdown)
	case draining:
		// Registered while Shutdown tells the miners to reconnect, perhaps after
		// it listed them: told at once (twice at worst), not left to be closed.
		if host, port, ok := splitReconnect(s.cfg.ReconnectOnShutdown); ok {
			m.sendReconnect(host, port, 0)
		}
	}
	return m
}

// closeSession unregisters m once its serve has returned.
func (s *Server) closeSession(m *session) {
	s.mu.Lock()
	delete(s.sessions, m)
	s.mu.Unlock()
	if m.slot != nil { // set by a successful subscribe only; reader-owned, and serve has returned
		s.leaveSeat(m.slot)
	}
}

// allowed reports whether a worker name may authorize.
func (s *Server) allowed(name string) bool {
	if s.allow == nil {
		return true
	}
	return s.allow[name] || s.allow[workerAccount(name)]
}

// minerScratch returns a slice for a broadcast's miner list.
func (s *Server) minerScratch(n int) []*session {
	if v, ok := s.scratch.Get().(*[]*session); ok && cap(*v) >= n {
		return (*v)[:0]
	}
	return make([]*session, 0, n)
}

func (s *Server) releaseMinerScratch(l []*session) {
	clear(l)
	l = l[:0]
	s.scratch.Put(&l)
}

// Shutdown stops the server gracefully, within ShutdownTimeout and ctx:
//
//  1. /readyz turns 503 and the miner listener closes: a new dial is refused.
//  2. With ReconnectOnShutdown set, every miner is sent client.reconnect, spread
//     evenly over ReconnectJitter, and the message is let out of its buffer.
//  3. The miners still connected are closed, and their readers waited for: from
//     here no share can be accepted, so none can be accepted and then dropped.
//  4. The slots go on forwarding what is queued until every forwarded share has
//     been answered by its pool.
//  5. HTTP stops, the slots stop (closing their upstreams), and Shutdown waits for
//     every goroutine.
//
// When ShutdownTimeout runs out first, the remaining steps run at once and the
// shares not yet answered are counted lost (reason shutdown) or as upstream errors;
// that is logged, and Shutdown still returns nil once everything has stopped. It
// returns ctx.Err() when ctx ends before the goroutines have stopped (they finish in
// the background).
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.running.Load() || !s.draining.CompareAndSwap(false, true) {
		return nil
	}
	start := time.Now()
	gctx, cancel := context.WithTimeout(ctx, s.cfg.shutdownTimeout())
	defer cancel()

	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.cancelMiner()
	s.ln.close()
	if host, port, ok := splitReconnect(s.cfg.ReconnectOnShutdown); ok {
		told := s.reconnectAll(gctx, host, port)
		s.drainOutbound(gctx, told)
	}
	s.closeMiners()
	readers := make(chan struct{})
	go func() {
		s.ln.wait()
		close(readers)
	}()
	select {
	case <-readers:
	case <-gctx.Done():
	}
	if n := s.flushShares(gctx); n > 0 {
		s.log.Warn().Int("shares", n).Dur("after", time.Since(start)).Msg("shutdown timeout: shares still queued or unanswered")
	}

	if s.httpSrv != nil {
		hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if s.httpSrv.Shutdown(hctx) != nil {
			s.httpSrv.Close()
		}
		hcancel()
	}
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait() // slots (their upstreams closed) and HTTP
		s.closeUpstreams()
		<-readers
		s.saveAccounts() // every share settled: the last counts
		s.closeStore()
		s.hp.stop()
		s.fl.stop()
		close(done)
	}()
	select {
	case <-done:
		s.log.Info().Dur("took", time.Since(start)).Msg("hashrelay stopped")
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeMiners closes every miner connection (CloseShutdown); one registered later
// closes itself (onConn).
func (s *Server) closeMiners() {
	s.mu.Lock()
	s.minersClosed = true
	for m := range s.sessions {
		m.c.close(CloseShutdown)
	}
	s.mu.Unlock()
}

// flushShares waits until every slot's queues are empty and every forwarded share
// has been answered, or ctx ends; it returns how many shares were still waiting.
// Idle must be seen twice in a row: a share between a slot's queue and its
// upstream's pending map is in neither for an instant.
func (s *Server) flushShares(ctx context.Context) int {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	idle := 0
	for {
		n := s.sharesInFlight()
		if n == 0 {
			if idle++; idle == 2 {
				return 0
			}
		} else {
			idle = 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-tick.C:
		}
	}
}

// sharesInFlight counts the shares queued in slots, buffered for a resuming
// upstream session, or forwarded and not yet answered.
func (s *Server) sharesInFlight() int {
	s.mu.Lock()
	slots := append([]*slot(nil), s.slots...)
	s.mu.Unlock()
	n := int(s.stats.unanswered())
	for _, sl := range slots {
		sl.mu.Lock()
		n += len(sl.buffered)
		sl.mu.Unlock()
		n += len(sl.shares) + len(sl.blocks)
	}
	return n
}

// closeUpstreams closes every upstream connection the slots still hold (a slot
// closes its active one when it stops; one it left after a fail-back would close on
// a timer) and waits for their goroutines. Call it once the slots have stopped.
func (s *Server) closeUpstreams() {
	s.mu.Lock()
	slots := append([]*slot(nil), s.slots...)
	s.mu.Unlock()
	var ups []*upstream
	for _, sl := range slots {
		sl.mu.Lock()
		for u := range sl.states {
			ups = append(ups, u)
		}
		sl.mu.Unlock()
	}
	for _, u := range ups {
		u.close(upstreamCloseShutdown)
	}
	for _, u := range ups {
		<-u.done()
	}
}

// reconnectAll sends every miner client.reconnect, spread evenly over
// ReconnectJitter (in no particular order), and returns the miners told.
func (s *Server) reconnectAll(ctx context.Context, host string, port int) []*session {
	s.mu.Lock()
	miners := make([]*session, 0, len(s.sessions))
	for m := range s.sessions {
		miners = append(miners, m)
	}
	s.mu.Unlock()
	jitter := s.cfg.ReconnectJitter
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i, m := range miners {
		if jitter > 0 && len(miners) > 1 {
			at := time.Duration(int64(jitter) * int64(i) / int64(len(miners)))
			if d := at - time.Since(start); d > 0 {
				t.Reset(d)
				select {
				case <-ctx.Done():
					return miners[:i]
				case <-t.C:
				}
			}
		}
		m.sendReconnect(host, port, 0)
	}
	s.log.Info().Int("miners", len(miners)).Str("to", net.JoinHostPort(host, strconv.Itoa(port))).Dur("over", jitter).Msg("miners sent client.reconnect")
	return miners
}

// drainOutbound waits until every miner's outbound buffer has been written (so the
// client.reconnect just sent has left), the miner has gone, or ctx ends.
func (s *Server) drainOutbound(ctx context.Context, miners []*session) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(miners) > 0 {
		open := miners[:0]
		for _, m := range miners {
			if !m.c.isClosed() && m.c.pending() > 0 {
				open = append(open, m)
			}
		}
		miners = open
		if len(miners) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// splitReconnect parses "host:port" for client.reconnect.
func splitReconnect(addr string) (string, int, bool) {
	if addr == "" {
		return "", 0, false
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "", 0, false
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, false
	}
	return strings.TrimSpace(host), port, true
}

// upstreamConfig is the connection configuration for pool i.
func (s *Server) upstreamConfig(i int) upstreamConfig {
	return upstreamConfig{
		Pool:          s.cfg.Upstreams[i],
		Agent:         "hashrelay/" + s.cfg.Version,
		VersionMask:   s.cfg.versionMask(),
		DialTimeout:   s.cfg.dialTimeout(),
		JobTimeout:    s.cfg.jobTimeout(),
		SubmitTimeout: s.cfg.submitTimeout(),
		WriteTimeout:  s.cfg.writeTimeout(),
		tls:           s.tlsOverride,
		Log:           s.log.With().Str("pool", s.cfg.Upstreams[i].String()).Logger(),
	}
}

// sleepCtx sleeps for d or until ctx ends, reporting whether it slept the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
