package proxy

import (
	"runtime"
	"sync"
)

// Stacks. A goroutine's stack grows to fit its deepest call and shrinks, at a
// garbage collection, only while a quarter or less of it is in use. A reader that
// handled a single mining.configure (decoder, vardiff, slot join, logging) would keep
// a 4–8 KiB stack for as long as its miner stays connected, most of that time
// parked in a read: at 19,000 miners, over 100 MB that no one uses.
//
// So a connection's reader does only shallow work itself: it reads, flushes and
// waits. Each burst of lines it reads goes to a handler, a goroutine from a small
// pool whose stack grew once and serves every connection in turn; the reader waits
// for it, so a connection's lines are still handled one at a time, in order. A
// handler that blocks (a subscribe waiting for a pool) holds only itself: the next
// burst takes another handler, started when none is idle. At most maxIdleHandlers
// wait idle; the others exit when done.
//
// The cost is two goroutine switches per burst (about a microsecond), a burst being
// whatever one read returned: a share, or a pipelined handshake.

// idleHandlersPerProc sizes the idle pool: enough for every processor to hand off
// at once, a few times over.
const idleHandlersPerProc = 8

// handlerPool runs bursts of line handling on goroutines whose stacks are shared by
// every connection.
type handlerPool struct {
	idle chan *handler // parked handlers, at most cap(idle)
	wg   sync.WaitGroup

	mu      sync.Mutex
	stopped bool // mu: no handler may start
}

// handler is one pooled goroutine: it runs what arrives on in and answers on done.
type handler struct {
	in   chan burst
	done chan bool
}

// burst is one hand-off: line, then every complete line buffered after it, for
// handle; or, when call is set, call alone.
type burst struct {
	c      *conn
	line   []byte
	handle func(line []byte) bool
	call   func()
}

// exec runs b on the calling goroutine.
func (b *burst) exec() bool {
	if b.call != nil {
		b.call()
		return true
	}
	return b.c.handleBurst(b.line, b.handle)
}

func newHandlerPool() *handlerPool {
	return &handlerPool{idle: make(chan *handler, idleHandlersPerProc*runtime.GOMAXPROCS(0))}
}

// run hands b to a handler and waits for its verdict: false when handle returned
// false. After stop, it handles b on the caller's goroutine.
func (p *handlerPool) run(b burst) bool {
	h := p.get()
	if h == nil {
		return b.exec()
	}
	h.in <- b
	ok := <-h.done
	p.put(h)
	return ok
}

// call runs f on a handler and waits for it: for a reader's deep work outside its
// line handling (opening and closing a session). A nil pool runs f on the caller.
func (p *handlerPool) call(f func()) {
	if p == nil {
		f()
		return
	}
	p.run(burst{call: f})
}

// get returns an idle handler, or starts one; nil after stop.
func (p *handlerPool) get() *handler {
	select {
	case h := <-p.idle:
		return h
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	h := &handler{in: make(chan burst), done: make(chan bool)}
	p.wg.Add(1)
	go p.serve(h)
	return h
}

// put parks h, or ends it when enough are parked already.
func (p *handlerPool) put(h *handler) {
	select {
	case p.idle <- h:
	default:
		close(h.in)
	}
}

// serve is a handler's goroutine.
func (p *handlerPool) serve(h *handler) {
	defer p.wg.Done()
	for b := range h.in {
		h.done <- b.exec()
	}
}

// stop ends the idle handlers and waits for every handler to end; a nil pool has
// none. Call it once no reader runs: a handler still in use would be put back after the drain and never
// ended.
func (p *handlerPool) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	for {
		select {
		case h := <-p.idle:
			close(h.in)
		default:
			p.wg.Wait()
			return
		}
	}
}

// handleBurst hands line to handle, then each complete line already buffered, and
// reports false as soon as handle does. It never reads from the socket: a line
// still incomplete, or an error such as a line too long, is left for the reader's
// next readLine to find. Reader only (or its handler, while the reader waits).
func (c *conn) handleBurst(line []byte, handle func(line []byte) bool) bool {
	for {
		c.linesIn++
		if !handle(line) {
			return false
		}
		next, err := c.lr.next()
		if next == nil || err != nil {
			return true
		}
		line = next
	}
}
