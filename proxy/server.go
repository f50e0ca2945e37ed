package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/metrics"
)

// Server is a running HashRelay: the miner listener, the slots and their upstreams,
// and the HTTP status endpoints.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	now      func() time.Time
	metrics  *metrics.Metrics
	stats    *stats
	health   *poolHealth
	accounts *accounts
	allow    map[string]bool

	ln      *listener
	fl      *flusher
	httpSrv *http.Server
	httpLn  net.Listener

	ctx    context.Context // ends when the server stops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	slots    []*slot
	sessions map[*session]struct{}
	nextID   atomic.Uint64
	draining atomic.Bool
	started  atomic.Bool

	scratch sync.Pool // []*session for broadcasts

	// tlsOverride, for tests, replaces the upstream TLS configuration.
	tlsOverride *tls.Config
}

// New validates cfg and builds a Server; Start runs it.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pools := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		pools[i] = u.String()
	}
	m := metrics.New()
	s := &Server{
		cfg:      cfg,
		log:      log,
		now:      time.Now,
		metrics:  m,
		stats:    newStats(m, pools),
		health:   newPoolHealth(len(cfg.Upstreams), cfg.backoffMin(), cfg.backoffMax()),
		accounts: newAccounts(time.Now),
		sessions: make(map[*session]struct{}),
	}
	if len(cfg.AllowWorkers) > 0 {
		s.allow = make(map[string]bool, len(cfg.AllowWorkers))
		for _, w := range cfg.AllowWorkers {
			s.allow[w] = true
		}
	}
	return s, nil
}

// Start listens for miners and HTTP and connects the first slot to its pool.
func (s *Server) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("hashrelay: server already started")
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	nl, err := net.Listen("tcp", s.cfg.listen())
	if err != nil {
		return err
	}
	s.fl = newFlusher(0)
	s.ln = newListener(nl, listenerConfigOf(&s.cfg), s.fl, s.onConn)
	if addr := s.cfg.httpAddr(); addr != "off" {
		hl, err := net.Listen("tcp", addr)
		if err != nil {
			nl.Close()
			return err
		}
		s.httpLn = hl
		s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
		s.goRun(func() { _ = s.httpSrv.Serve(hl) })
	}
	s.addSlot()
	s.ln.start()
	s.log.Info().Str("stratum", nl.Addr().String()).Str("http", s.HTTPAddr()).Int("pools", len(s.cfg.Upstreams)).Msg("hashrelay started")
	return nil
}

// goRun runs f on a goroutine the server waits for at shutdown.
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

// addSlot starts a new slot and returns it.
func (s *Server) addSlot() *slot {
	s.mu.Lock()
	sl := newSlot(s, len(s.slots))
	s.slots = append(s.slots, sl)
	s.mu.Unlock()
	s.goRun(func() { sl.run(s.ctx) })
	s.goRun(func() { sl.submitLoop(s.ctx) })
	return sl
}

// join places a subscribing miner in the first slot with room, opening a new slot
// (and upstream session) when all are full.
func (s *Server) join(ctx context.Context, m *session) (*slot, []byte, int, uint32, *relayJob, error) {
	for tries := 0; tries < 3; tries++ {
		var sl *slot
		s.mu.Lock()
		for _, c := range s.slots {
			if !c.full() {
				sl = c
				break
			}
		}
		s.mu.Unlock()
		if sl == nil {
			sl = s.addSlot()
		}
		prefix, en2, mask, cur, err := sl.join(ctx, m)
		if errors.Is(err, errSlotFull) {
			continue
		}
		return sl, prefix, en2, mask, cur, err
	}
	return nil, nil, 0, 0, nil, errSlotFull
}

// onConn runs a new miner connection on its own (reader) goroutine.
func (s *Server) onConn(c *conn) {
	id := s.nextID.Add(1)
	m := newSession(s, c, id, c.remoteAddr())
	s.mu.Lock()
	s.sessions[m] = struct{}{}
	s.mu.Unlock()
	s.metrics.Connections.Inc()
	s.metrics.MinersConnected.Inc()
	m.serve(s.ctx)
	s.mu.Lock()
	delete(s.sessions, m)
	s.mu.Unlock()
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

// Shutdown stops accepting miners, optionally sends them client.reconnect spread over
// ReconnectJitter, lets queued shares reach their pools, then closes everything. It
// returns when all goroutines have stopped or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.started.Load() || !s.draining.CompareAndSwap(false, true) {
		return nil
	}
	s.ln.close()
	if host, port, ok := splitReconnect(s.cfg.ReconnectOnShutdown); ok {
		s.reconnectAll(ctx, host, port)
	}
	s.flushShares(ctx)
	s.mu.Lock()
	for m := range s.sessions {
		m.c.close(CloseShutdown)
	}
	s.mu.Unlock()
	if s.httpSrv != nil {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = s.httpSrv.Shutdown(sctx)
		cancel()
	}
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.ln.wait()
		s.fl.stop()
		close(done)
	}()
	select {
	case <-done:
		s.log.Info().Msg("hashrelay stopped")
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushShares waits until every slot's queue is empty and its forwarded shares have
// been answered, or ctx ends.
func (s *Server) flushShares(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		busy := false
		for _, sl := range s.slots {
			if len(sl.shares) > 0 || len(sl.blocks) > 0 || sl.pendingSubmits() > 0 {
				busy = true
			}
		}
		s.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reconnectAll sends every miner client.reconnect, spread over ReconnectJitter.
func (s *Server) reconnectAll(ctx context.Context, host string, port int) {
	s.mu.Lock()
	miners := make([]*session, 0, len(s.sessions))
	for m := range s.sessions {
		miners = append(miners, m)
	}
	s.mu.Unlock()
	jitter := s.cfg.ReconnectJitter
	for i, m := range miners {
		if jitter > 0 && len(miners) > 1 {
			at := time.Duration(int64(jitter) * int64(i) / int64(len(miners)))
			t := time.NewTimer(at)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		m.sendReconnect(host, port, 0)
	}
}

// splitReconnect parses "host:port" for client.reconnect.
func splitReconnect(addr string) (string, int, bool) {
	if addr == "" {
		return "", 0, false
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	port := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return "", 0, false
		}
		port = port*10 + int(c-'0')
	}
	return strings.TrimSpace(host), port, port > 0 && port < 65536
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
