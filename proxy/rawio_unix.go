//go:build unix

package proxy

import (
	"errors"
	"os"
	"syscall"
)

// rawConnOf returns nc's raw connection for waitReadable and writeNonBlocking, or
// nil when nc has none (a net.Pipe in tests): such a connection keeps its read buffer
// while idle and leaves every write to the flusher.
func rawConnOf(nc any) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// waitReadable blocks until the socket has bytes to read, a FIN or an error, or the
// read deadline passes, without a buffer to read into: an idle miner waits holding
// none (see lineReader.park). It peeks at one byte, so nothing is consumed; the Read
// that follows finds what woke it. Reader only.
func (c *conn) waitReadable() error {
	if c.readable == nil {
		c.readable = c.peekReadable // one method value per connection, not per wait
	}
	return c.raw.Read(c.readable)
}

// peekReadable is waitReadable's callback: false means "nothing yet, wait".
func (c *conn) peekReadable(fd uintptr) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), c.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err { // syscall returns Errno values as they are
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true // bytes, end of stream or an error: the Read that follows reports it
	}
}

// writeNonBlocking writes as much of b as the socket takes at once, never waiting:
// n is 0 when the socket buffer is full. err is a failed write's. The writer only
// (the goroutine holding c.queued).
func (c *conn) writeNonBlocking(b []byte) (n int, err error) {
	if c.writable == nil {
		c.writable = c.writeOnce // one method value per connection, not per write
	}
	c.wb = b
	rerr := c.raw.Write(c.writable)
	n, err = c.wn, c.werr
	c.wb, c.wn, c.werr = nil, 0, nil
	switch {
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		// A flusher's write deadline has passed: RawConn refuses before writing.
		// The flusher, which sets a new one, writes it all.
		return 0, nil
	case rerr != nil:
		return n, rerr
	}
	return n, err
}

// writeOnce is writeNonBlocking's callback: one write(2) of c.wb, whatever it
// returns (true: RawConn must not wait for writability).
func (c *conn) writeOnce(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), c.wb)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			n, err = 0, nil
		}
		if n < 0 {
			n = 0
		}
		c.wn, c.werr = n, err
		return true
	}
}
