package proxy

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The flusher pool writes every miner's outbound bytes; no connection has a writer
// goroutine of its own (19,000 stacks would cost more than everything else an idle
// miner holds).
//
// Sizing. A write to a healthy miner is one non-blocking syscall into its socket
// buffer, a few microseconds: GOMAXPROCS flushers would keep up with any broadcast.
// The other goroutines are for miners that stall (the peer stopped reading, a rack's
// switch died), whose writes park their flusher. F = max(minFlushers,
// flushersPerProc·GOMAXPROCS) flushers, 16 on 4 cores: it takes F miners stalled at
// once to hold them all.
//
// Holding them for WriteTimeout (10 s) would stop every other miner's jobs for that
// long, and a rack of 40 dead miners whose socket buffers fill on the same
// mining.notify would do it. So a flusher gives one write at most writeSlice; a write
// not done by then keeps its place in its buffer and goes to the stalled queue, which
// flushers serve only when no other connection is waiting. However many miners stall,
// a healthy miner's bytes wait at most writeSlice more than they would anyway. A
// stalled miner is closed with CloseWriteTimeout once a buffer has been pending
// WriteTimeout since its first write, or sooner with CloseSlowConsumer once its pending
// bytes pass MaxPendingBytes. (Under a load that never empties the ready queue, a
// stalled miner waits for its turn and the pending limit closes it.)
const (
	minFlushers     = 4
	flushersPerProc = 4
	writeSlice      = 50 * time.Millisecond
)

// broadcastBacklog is how many connections may wait for a flusher before throttle
// makes a broadcaster wait. Appending is an order of magnitude faster than writing, so a
// fan-out to 19,000 miners that does not wait holds 19,000 outbound buffers at once
// (2 KiB each: 38 MB, resident until the GC and the scavenger return them). Waiting
// here costs the broadcast nothing: the last miner's bytes leave when the flushers
// have written them all either way.
const broadcastBacklog = 256

func defaultFlushers() int { return max(minFlushers, flushersPerProc*runtime.GOMAXPROCS(0)) }

// flusher is a fixed pool of goroutines writing the connections queued on it.
//
// The queues are unbounded by design and bounded in practice: a connection is queued
// at most once at a time (conn.queued), so they never hold more entries than there are
// connections, and a producer never blocks on them. A channel sized to MaxConnections
// would also never block, except in the instant when a closed connection still queued
// has been replaced by a new one; rings cost nothing until used and then stay at
// their largest size, with no allocation after warm-up.
type flusher struct {
	mu      sync.Mutex
	cond    sync.Cond    // a connection was queued, or stop
	space   sync.Cond    // ready fell below broadcastBacklog, or stop
	ready   connRing     // mu: connections with bytes to write
	stalled connRing     // mu: connections whose last write ran out of its slice
	stopped bool         // mu
	backlog atomic.Int64 // ready.n, for throttle's lock-free fast path
	wg      sync.WaitGroup
}

// newFlusher starts n flusher goroutines (defaultFlushers() when n <= 0).
func newFlusher(n int) *flusher {
	if n <= 0 {
		n = defaultFlushers()
	}
	f := &flusher{}
	f.cond.L = &f.mu
	f.space.L = &f.mu
	f.wg.Add(n)
	for range n {
		go f.flushLoop()
	}
	return f
}

// push queues c (c.queued was set by the caller). Never blocks on I/O.
func (f *flusher) push(c *conn) {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	f.ready.push(c)
	f.backlog.Store(int64(f.ready.n))
	f.mu.Unlock()
	f.cond.Signal()
}

// throttle waits while broadcastBacklog connections or more wait for a flusher. A
// broadcaster calls it between miners (holding no lock a reader or flusher may
// want); a reader never does.
func (f *flusher) throttle() {
	if f.backlog.Load() < broadcastBacklog {
		return
	}
	f.mu.Lock()
	for f.ready.n >= broadcastBacklog && !f.stopped {
		f.space.Wait()
	}
	f.mu.Unlock()
}

// flushLoop is one flusher goroutine.
func (f *flusher) flushLoop() {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		for f.ready.n == 0 && f.stalled.n == 0 && !f.stopped {
			f.cond.Wait()
		}
		c := f.ready.pop()
		if c != nil {
			f.backlog.Store(int64(f.ready.n))
			if f.ready.n == broadcastBacklog-1 {
				f.space.Broadcast()
			}
		} else {
			c = f.stalled.pop()
		}
		f.mu.Unlock()
		if c == nil {
			return // stopped and drained
		}
		more, stalled := c.writeOut()
		if !more {
			continue
		}
		f.mu.Lock()
		switch {
		case !stalled:
			// Back of the line: a busy miner does not hold a flusher.
			f.ready.push(c)
			f.backlog.Store(int64(f.ready.n))
		case !f.stopped:
			f.stalled.push(c)
		}
		// Stopping leaves a stalled connection to its close; its buffer goes with it.
		f.mu.Unlock()
	}
}

// stop makes the flushers finish the writes queued and return, and waits for them.
// Close the connections first for a quick stop: a closed connection's turn costs
// nothing, while an open one gets its write (up to writeSlice). Connections flushed
// after stop are not written.
func (f *flusher) stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.cond.Broadcast()
	f.space.Broadcast()
	f.wg.Wait()
}

// connRing is a FIFO of connections in a ring that grows by doubling and never
// shrinks.
type connRing struct {
	buf  []*conn
	head int
	n    int
}

func (q *connRing) push(c *conn) {
	if q.n == len(q.buf) {
		buf := make([]*conn, max(64, 2*len(q.buf)))
		k := copy(buf, q.buf[q.head:])
		copy(buf[k:], q.buf[:q.head])
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = c
	q.n++
}

func (q *connRing) pop() *conn {
	if q.n == 0 {
		return nil
	}
	c := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return c
}
