//go:build unix

package proxy

import "syscall"

// rawConnOf returns nc's raw connection for waitReadable, or nil when nc has none
// (a net.Pipe in tests): such a connection keeps its read buffer while idle.
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
