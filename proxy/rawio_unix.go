//go:build unix

package proxy

import (
	"errors"
	"io"
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

// readHeaderBytes reads a PROXY header into buf (maxProxyHeader bytes) and returns
// its length. It peeks until the whole header is in the socket buffer
// (proxyHeaderSize says how much is needed), then reads exactly the header's bytes:
// the Stratum bytes that arrived with it stay in the kernel for the line reader. The
// read deadline, set by the caller, bounds the wait. Reader only.
func (c *conn) readHeaderBytes(buf []byte) (int, error) {
	if c.raw == nil {
		return c.readHeaderBytesExact(buf)
	}
	have := 0
	for {
		need, err := proxyHeaderSize(buf[:have])
		if err != nil {
			return 0, headerReadError(have, err)
		}
		if need <= have {
			_, err := io.ReadFull(c.nc, buf[:need]) // the bytes just peeked at, again
			return need, err
		}
		if have, err = c.peekMore(buf, have); err != nil {
			return 0, headerReadError(have, err)
		}
	}
}

// peekMore waits until the socket holds more than have bytes (or ends, or the read
// deadline passes) and peeks at up to len(buf) of them, returning how many buf holds.
// The end of the stream is io.EOF, with have returned unchanged.
//
// While the socket holds only the have bytes already seen, the callback says "wait":
// the runtime's poller is edge-triggered (epoll EPOLLET, kqueue EV_CLEAR), so the wait
// ends at the next arrival, not at once. A peer that sends part of a header and then
// FIN waits out the deadline (its FIN may not wake us while bytes are unread); its
// verdict is the same, proxy_header_invalid.
func (c *conn) peekMore(buf []byte, have int) (int, error) {
	n, eof := have, false
	var perr error
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			m, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			case nil:
				switch {
				case m == 0:
					eof = true
				case m <= have:
					return false // nothing new yet
				default:
					n = m
				}
				return true
			}
			perr = err
			return true
		}
	})
	switch {
	case err != nil:
		return have, err
	case perr != nil:
		return have, perr
	case eof:
		return have, io.EOF
	}
	return n, nil
}
