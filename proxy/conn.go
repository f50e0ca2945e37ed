package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// connLimits bound one miner connection. A zero field means no limit, except
// MaxLineSize, whose zero means DefaultMaxLineSize.
type connLimits struct {
	MaxLineSize     int
	ReadIdleTimeout time.Duration
	WriteTimeout    time.Duration
	MaxPendingBytes int
}

// connLimitsOf applies Config's defaults.
func connLimitsOf(cfg *Config) connLimits {
	return connLimits{
		MaxLineSize:     cfg.maxLineSize(),
		ReadIdleTimeout: cfg.readIdleTimeout(),
		WriteTimeout:    cfg.writeTimeout(),
		MaxPendingBytes: cfg.maxPendingBytes(),
	}
}

// Outbound buffers live in a pool while a connection has nothing to send: an idle miner
// holds none. outBufSize fits a mining.notify with a full merkle branch and a
// set_difficulty; a buffer that grew past maxPooledOutBuf is left to the GC.
const (
	outBufSize      = 2 << 10
	maxPooledOutBuf = 64 << 10
)

var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, outBufSize); return &b }}

func getOutBuf() *[]byte { return outBufs.Get().(*[]byte) }

func putOutBuf(p *[]byte) {
	if cap(*p) > maxPooledOutBuf {
		return
	}
	*p = (*p)[:0]
	outBufs.Put(p)
}

// errNotJSON is the sniffing verdict: the first byte is not '{'.
var errNotJSON = errors.New("proxy: first byte is not '{'")

// conn is one accepted miner connection. It knows nothing of Stratum methods: it
// moves lines in and bytes out, enforces connLimits and records why it closed.
//
// Reading: one goroutine, the reader, runs readLoop and owns everything below
// "reader only". Writing: any goroutine may send (append to the outbound buffer
// under mu, never touching the socket) and flush (queue c on the shared flusher, which
// writes with a deadline). Nothing here blocks on the socket while holding mu.
type conn struct {
	nc  net.Conn
	id  uint64
	lim connLimits
	fl  *flusher
	ln  *listener    // nil when not accepted by a listener
	hp  *handlerPool // runs handle on a pooled stack; nil: on the reader (see handlers.go)
	// ip is the miner's address, the per-address limit's key: the socket's peer, or
	// the source in its PROXY header. Zero without that limit or PROXY protocol.
	// Written before the session starts (by the reader once a header is read).
	ip netip.Addr
	// ipHeld: c holds a per-address slot for ip on ln. ln.mu.
	ipHeld bool
	// from is the miner's address from a PROXY header; zero: the socket's peer.
	// Written by the reader before the session starts.
	from netip.AddrPort

	closed atomic.Bool
	why    atomic.Uint32 // CloseReason, set once, just after closed

	// Reader only.
	lr       lineReader
	raw      syscall.RawConn    // for waitReadable; nil: the read buffer stays while idle
	readable func(uintptr) bool // waitReadable's callback, made once
	peek     [1]byte            // waitReadable's peek, never read
	sniffed  bool
	bytesIn  uint64 // bytes read
	readAt   int64  // when the last read returned bytes, Unix nanoseconds (with onReply)
	linesIn  uint64 // lines handed to the handler

	bytesOut atomic.Uint64 // bytes written, by flushers

	// writeNonBlocking's state: the writer's alone (the goroutine holding queued).
	writable func(uintptr) bool
	wb       []byte
	wn       int
	werr     error

	// onReply, set before the reader starts, is told how long the replies of a burst
	// of requests took: from the read that brought the requests to the write that
	// carried their replies. replyFrom holds that read's time (Unix nanoseconds)
	// until such a write; 0 when no reply is due.
	onReply   func(time.Duration)
	replyFrom atomic.Int64

	mu sync.Mutex
	// out is what producers appended and no flusher has taken yet; nil when empty.
	out *[]byte
	// wbuf[woff:] is what a flusher took and has not written yet (a stalled write
	// resumes there); wstart is when its first write began. nil when nothing is in flight.
	wbuf    *[]byte
	woff    int
	wstart  time.Time
	queued  bool // c is on the flusher's queue or being written: flush must not queue it again
	writing bool // a flusher is in nc.Write with wbuf: close must leave wbuf to it
}

// newConn wraps an accepted connection. The caller starts the reader (readLoop).
func newConn(nc net.Conn, id uint64, lim connLimits, fl *flusher) *conn {
	if lim.MaxLineSize <= 0 {
		lim.MaxLineSize = DefaultMaxLineSize
	}
	return &conn{nc: nc, id: id, lim: lim, fl: fl, lr: newLineReader(lim.MaxLineSize), raw: rawConnOf(nc)}
}

// readLoop reads lines and hands each to handle, until handle returns false or the
// connection fails or closes; it returns the recorded CloseReason. Reader only.
//
// The line handed to handle is valid only until handle returns. A handle that returns
// false should close c with its own reason first; otherwise CloseProtocol is recorded.
//
// Before each read from the socket, that is when every buffered line has been
// handled, readLoop flushes: replies to pipelined requests leave in one write. The
// first byte that is not whitespace must be '{', or c closes with CloseNotJSON at once
// (a TLS ClientHello sent to the plain port would otherwise wait for a line forever).
func (c *conn) readLoop(handle func(line []byte) bool) CloseReason {
	for {
		line, err := c.readLine()
		if err != nil {
			c.close(readCloseReason(err))
			break
		}
		from := int64(0)
		if c.onReply != nil && c.replyFrom.CompareAndSwap(0, c.readAt) {
			from = c.readAt
		}
		ok := false
		if c.hp != nil {
			ok = c.hp.run(burst{c: c, line: line, handle: handle})
		} else {
			ok = c.handleBurst(line, handle)
		}
		if !ok {
			c.close(CloseProtocol)
			break
		}
		if from != 0 && c.pending() == 0 {
			c.replyFrom.CompareAndSwap(from, 0) // the burst wanted no reply
		}
	}
	c.lr.release()
	return c.reason()
}

// readLine returns the next line, reading as needed. Reader only.
func (c *conn) readLine() ([]byte, error) {
	for {
		line, err := c.lr.next()
		if line != nil || err != nil {
			return line, err
		}
		c.flushNow()
		if t := c.lim.ReadIdleTimeout; t > 0 {
			if err := c.nc.SetReadDeadline(time.Now().Add(t)); err != nil {
				return nil, err
			}
		}
		if c.raw != nil && c.lr.idle() {
			// Nothing buffered: wait for the next bytes without a buffer.
			c.lr.park()
			if err := c.waitReadable(); err != nil {
				return nil, err
			}
		}
		n, err := c.lr.fill(c.nc)
		c.bytesIn += uint64(n)
		if n > 0 && c.onReply != nil {
			c.readAt = time.Now().UnixNano()
		}
		if err != nil {
			return nil, err
		}
		if !c.sniffed {
			if b, ok := c.lr.firstNonSpace(); ok {
				c.sniffed = true
				if b != '{' {
					return nil, c.notJSON()
				}
			}
		}
	}
}

func readCloseReason(err error) CloseReason {
	switch {
	case errors.Is(err, io.EOF):
		return CloseClientClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return CloseReadIdle
	case errors.Is(err, stratum.ErrLineTooLong):
		return CloseLineTooLong
	case errors.Is(err, errNotJSON):
		return CloseNotJSON
	case errors.Is(err, errProxyHeaderUntrusted):
		return CloseProxyHeaderUntrusted
	}
	return CloseReadError
}

// buffered is the number of bytes read but not yet handed out as lines: while it is
// not zero more requests are waiting, and a reply may wait to leave with theirs.
// Reader only (handle runs there).
func (c *conn) buffered() int { return c.lr.buffered() }

// send appends b to the outbound buffer; b may be reused as soon as send returns. It
// does not write: flush does. It returns false, sending nothing, when c is closed or
// when pending bytes would pass MaxPendingBytes, which closes c as a slow consumer.
// Safe from any goroutine; never blocks on the socket.
func (c *conn) send(b []byte) bool {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return false
	}
	if m := c.lim.MaxPendingBytes; m > 0 && c.pendingLocked()+len(b) > m {
		c.mu.Unlock()
		c.close(CloseSlowConsumer)
		return false
	}
	if c.out == nil {
		c.out = getOutBuf()
	}
	*c.out = append(*c.out, b...)
	c.mu.Unlock()
	return true
}

// flush queues c on the flusher if it has bytes to send and is not queued already.
// Safe from any goroutine; never blocks on the socket.
func (c *conn) flush() {
	c.mu.Lock()
	if c.queued || c.out == nil || c.closed.Load() {
		c.mu.Unlock()
		return
	}
	c.queued = true
	c.mu.Unlock()
	c.fl.push(c)
}

// pending is the number of bytes appended and not yet written.
func (c *conn) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingLocked()
}

// pendingLocked: mu must be held.
func (c *conn) pendingLocked() int {
	n := 0
	if c.out != nil {
		n += len(*c.out)
	}
	if c.wbuf != nil {
		n += len(*c.wbuf) - c.woff
	}
	return n
}

// writeOut writes c's pending bytes, giving the socket at most writeSlice, and reports
// whether c has more to write and whether that is because the write stalled. Flusher
// goroutines only, one at a time per conn (c.queued is set).
//
// A write that has not finished within WriteTimeout of its start closes c with
// CloseWriteTimeout; a failed one with CloseWriteError.
func (c *conn) writeOut() (more, stalled bool) {
	now := time.Now()
	c.mu.Lock()
	if c.closed.Load() {
		c.queued = false
		c.mu.Unlock()
		return false, false
	}
	if c.wbuf == nil {
		if c.out == nil {
			c.queued = false
			c.mu.Unlock()
			return false, false
		}
		c.wbuf, c.out, c.woff, c.wstart = c.out, nil, 0, now
	}
	p, off, start := c.wbuf, c.woff, c.wstart
	c.writing = true
	c.mu.Unlock()

	deadline := now.Add(writeSlice)
	wt := c.lim.WriteTimeout
	if wt > 0 && start.Add(wt).Before(deadline) {
		deadline = start.Add(wt)
	}
	err := c.nc.SetWriteDeadline(deadline)
	n := 0
	if err == nil {
		n, err = c.nc.Write((*p)[off:])
		c.bytesOut.Add(uint64(n))
	}

	reason := CloseNone
	c.mu.Lock()
	c.writing = false
	switch {
	case err == nil:
		c.wbuf = nil
		putOutBuf(p)
		c.observeReply()
	case c.closed.Load():
		// close left wbuf to us; its reason stands.
		c.wbuf = nil
		putOutBuf(p)
	case errors.Is(err, os.ErrDeadlineExceeded) && (wt <= 0 || time.Since(start) < wt):
		// Stalled (the peer's window and our socket buffer are full): resume later,
		// after the connections that are not stalled.
		c.woff = off + n
		stalled = true
	default:
		c.wbuf = nil
		putOutBuf(p)
		reason = CloseWriteError
		if errors.Is(err, os.ErrDeadlineExceeded) {
			reason = CloseWriteTimeout
		}
	}
	more = reason == CloseNone && !c.closed.Load() && (c.wbuf != nil || c.out != nil)
	if !more {
		c.queued = false
	}
	c.mu.Unlock()
	if reason != CloseNone {
		c.close(reason)
	}
	return more, stalled
}

// observeReply reports, after a write, how long the replies it carried took (see
// onReply).
func (c *conn) observeReply() {
	if c.onReply != nil {
		if from := c.replyFrom.Swap(0); from != 0 {
			c.onReply(time.Duration(time.Now().UnixNano() - from))
		}
	}
}

// flushNow is flush for the reader and its handler, after a burst of requests:
// when no flusher holds c, it writes the pending bytes at once from the calling
// goroutine, without waiting for the socket, and hands only what the socket did not
// take to the flusher. Replies then leave from the goroutine that made them: a
// flusher woken for them would wait its turn behind every reader woken meanwhile,
// which under load is most of a reply's latency.
func (c *conn) flushNow() {
	if c.raw == nil {
		c.flush()
		return
	}
	c.mu.Lock()
	if c.queued || c.out == nil || c.closed.Load() {
		c.mu.Unlock()
		return // nothing to write, or a flusher has it
	}
	c.queued = true // c is ours to write, as a flusher's
	c.wbuf, c.out, c.woff = c.out, nil, 0
	p := c.wbuf
	c.writing = true
	c.mu.Unlock()

	n, err := c.writeNonBlocking(*p)
	c.bytesOut.Add(uint64(n))

	reason := CloseNone
	c.mu.Lock()
	c.writing = false
	switch {
	case c.closed.Load():
		c.wbuf = nil // close left it to us
		putOutBuf(p)
	case err != nil:
		c.wbuf = nil
		putOutBuf(p)
		reason = CloseWriteError
	case n == len(*p):
		c.wbuf = nil
		putOutBuf(p)
		c.observeReply()
	default:
		// The socket took part or none: the rest waits for a flusher, and
		// WriteTimeout runs from now.
		c.woff, c.wstart = n, time.Now()
	}
	more := reason == CloseNone && !c.closed.Load() && (c.wbuf != nil || c.out != nil)
	if !more {
		c.queued = false
	}
	c.mu.Unlock()
	if reason != CloseNone {
		c.close(reason)
	} else if more {
		c.fl.push(c)
	}
}

// close closes c once, recording reason (not CloseNone): the socket closes, which
// unblocks the reader and any write in progress, and the outbound buffers return to
// the pool. Later calls do nothing. Safe from any goroutine.
func (c *conn) close(reason CloseReason) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.why.Store(uint32(reason))
	c.nc.Close()
	c.mu.Lock()
	if c.out != nil {
		putOutBuf(c.out)
		c.out = nil
	}
	if c.wbuf != nil && !c.writing {
		putOutBuf(c.wbuf)
		c.wbuf = nil
	}
	c.mu.Unlock()
	if c.ln != nil {
		c.ln.connClosed(c, reason)
	}
}

// isClosed reports whether close has been called.
func (c *conn) isClosed() bool { return c.closed.Load() }

// remoteAddr is the miner's address, host:port (for logs and the status API): the
// source in its PROXY header, else the socket's peer.
func (c *conn) remoteAddr() string {
	if c.from.IsValid() {
		return c.from.String()
	}
	return c.nc.RemoteAddr().String()
}

// reason is the recorded CloseReason: CloseNone while c is open (and for the instant
// between another goroutine's close and its recording the reason).
func (c *conn) reason() CloseReason { return CloseReason(c.why.Load()) }
