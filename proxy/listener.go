package proxy

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Accept errors (EMFILE, ENFILE, ECONNABORTED) back off between these bounds.
const (
	acceptBackoffMin = 10 * time.Millisecond
	acceptBackoffMax = 1 * time.Second
	// acceptErrorLogEvery spaces the log lines of a burst of accept errors; each
	// is still counted.
	acceptErrorLogEvery = 10 * time.Second
)

// listenerConfig bounds what a listener accepts. Zero means no limit.
type listenerConfig struct {
	MaxConnections      int
	MaxConnectionsPerIP int
	Conn                connLimits
	// ProxyFrom are the networks whose connections must start with a PROXY header
	// (proxyproto.go), sent within ProxyHeaderTimeout. Empty: no PROXY protocol.
	ProxyFrom          []netip.Prefix
	ProxyHeaderTimeout time.Duration
}

// listenerConfigOf applies Config's defaults.
func listenerConfigOf(cfg *Config) listenerConfig {
	return listenerConfig{
		MaxConnections:      cfg.maxConnections(),
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
		Conn:                connLimitsOf(cfg),
		ProxyFrom:           cfg.ProxyProtocolFrom,
		ProxyHeaderTimeout:  cfg.proxyHeaderTimeout(),
	}
}

// listener accepts miner connections within the limits and runs onConn for each on a
// goroutine of its own, which becomes the connection's reader. A connection over a
// limit is closed at once, with no goroutine and no conn, and counted.
//
// Shutdown: close stops accepting; the caller then closes its connections and calls
// wait, which returns when every goroutine the listener started has returned.
type listener struct {
	// onRefuse, set before start, is told of each connection closed before it
	// reached onConn: refused at accept, or closed over its PROXY header.
	onRefuse func(CloseReason)
	// onReply, set before start, becomes each connection's onReply.
	onReply func(time.Duration)
	// onAcceptError, set before start, is told of each failed accept (out of file
	// descriptors, say) before the listener backs off and retries.
	onAcceptError func(error)
	nl            net.Listener
	cfg           listenerConfig
	fl            *flusher
	hp            *handlerPool // set before start; nil handles lines on the readers
	onConn        func(c *conn)
	done          chan struct{} // closed by close

	mu       sync.Mutex
	shutdown bool               // mu: no goroutine may start
	active   int                // mu: connections accepted and not closed
	perIP    map[netip.Addr]int // mu: active per source address; nil without that limit
	headers  map[*conn]struct{} // mu: connections waiting for their PROXY header
	wg       sync.WaitGroup

	nextID   atomic.Uint64
	accepted atomic.Uint64
	refused  [NumCloseReasons]atomic.Uint64 // refused at accept, by reason
	closedBy [NumCloseReasons]atomic.Uint64 // accepted and closed, by reason
}

// newListener wraps nl; serve (or start) accepts. Connections write through fl.
func newListener(nl net.Listener, cfg listenerConfig, fl *flusher, onConn func(c *conn)) *listener {
	l := &listener{nl: nl, cfg: cfg, fl: fl, onConn: onConn, done: make(chan struct{}), headers: make(map[*conn]struct{})}
	if cfg.MaxConnectionsPerIP > 0 {
		l.perIP = make(map[netip.Addr]int)
	}
	return l
}

// start runs serve on a goroutine that wait waits for. It reports false once close
// has been called.
func (l *listener) start() bool { return l.goroutine(l.serve) }

// goroutine runs f on a new goroutine that wait waits for, unless shutdown has begun.
// Every goroutine the listener starts goes through here.
func (l *listener) goroutine(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutdown {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// serve is the accept loop: it returns after close. Run it on a goroutine of the
// caller's (counted by the caller's WaitGroup) or through start.
func (l *listener) serve() {
	var delay time.Duration
	for {
		nc, err := l.nl.Accept()
		if err != nil {
			if l.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			if l.onAcceptError != nil {
				l.onAcceptError(err)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		l.admit(nc)
	}
}

// admit applies the limits to a new connection and starts its reader. A connection
// from a ProxyFrom network (a balancer) takes no per-address slot here: its reader
// takes one under the miner's address once the PROXY header is read.
func (l *listener) admit(nc net.Conn) {
	var ip netip.Addr
	if l.perIP != nil || len(l.cfg.ProxyFrom) > 0 {
		ip = remoteIP(nc)
	}
	viaProxy := l.trusted(ip)
	holdIP := l.perIP != nil && !viaProxy
	l.mu.Lock()
	refuse := CloseNone
	switch {
	case l.shutdown:
		refuse = CloseShutdown
	case l.cfg.MaxConnections > 0 && l.active >= l.cfg.MaxConnections:
		refuse = CloseTooManyConnections
	case holdIP && l.perIP[ip] >= l.cfg.MaxConnectionsPerIP:
		refuse = CloseTooManyFromAddress
	default:
		l.active++
		if holdIP {
			l.perIP[ip]++
		}
	}
	l.mu.Unlock()
	if refuse != CloseNone {
		nc.Close()
		l.refused[refuse].Add(1)
		if l.onRefuse != nil {
			l.onRefuse(refuse)
		}
		return
	}
	l.accepted.Add(1)
	c := newConn(nc, l.nextID.Add(1), l.cfg.Conn, l.fl)
	// Before the reader starts; connClosed releases the slots taken above.
	c.ln, c.ip, c.ipHeld, c.hp, c.onReply = l, ip, holdIP, l.hp, l.onReply
	if !l.goroutine(func() { l.serveConn(c, viaProxy) }) {
		c.close(CloseShutdown)
	}
}

// serveConn is a connection's reader goroutine: it reads the PROXY header of a
// connection from a balancer (viaProxy), then onConn runs the session, normally
// until readLoop returns. If onConn returns with c still open, c is closed here with
// CloseShutdown during a shutdown and CloseProtocol otherwise.
func (l *listener) serveConn(c *conn, viaProxy bool) {
	if viaProxy {
		if reason := l.proxyHeader(c); reason != CloseNone {
			c.close(reason) // no one else closes c before onConn
			if l.onRefuse != nil {
				l.onRefuse(reason)
			}
			return
		}
	}
	l.onConn(c)
	if l.closing() {
		c.close(CloseShutdown)
	} else {
		c.close(CloseProtocol)
	}
}

// connClosed counts c's close and releases its slots. From conn.close, once per conn.
func (l *listener) connClosed(c *conn, reason CloseReason) {
	l.closedBy[reason].Add(1)
	l.mu.Lock()
	l.active--
	if c.ipHeld {
		c.ipHeld = false
		if n := l.perIP[c.ip] - 1; n > 0 {
			l.perIP[c.ip] = n
		} else {
			delete(l.perIP, c.ip)
		}
	}
	l.mu.Unlock()
}

func (l *listener) closing() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// close stops accepting and refuses new goroutines. Connections already accepted stay
// open: the caller closes them (CloseShutdown), then calls wait.
func (l *listener) close() error {
	l.mu.Lock()
	if l.shutdown {
		l.mu.Unlock()
		return nil
	}
	l.shutdown = true
	close(l.done)
	// End the wait of the connections reading their PROXY header, which are not
	// the caller's yet: a deadline of now wakes their readers, which close them
	// (CloseShutdown). Each set its own deadline before joining headers.
	for c := range l.headers {
		c.nc.SetReadDeadline(time.Now())
	}
	l.mu.Unlock()
	return l.nl.Close()
}

// wait waits for the accept loop and every connection goroutine to return.
func (l *listener) wait() { l.wg.Wait() }

// addr is the address the listener accepts on.
func (l *listener) addr() net.Addr { return l.nl.Addr() }

// activeConns is the number of connections accepted and not yet closed.
func (l *listener) activeConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

// remoteIP is the source address of nc (IPv4-mapped IPv6 unmapped), or the zero Addr.
func remoteIP(nc net.Conn) netip.Addr {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
