package proxy

import (
	"bytes"
	"io"
	"sync"

	"github.com/hashrelay/hashrelay/stratum"
)

// readBufSize is a connection's resting read buffer. Every request a miner sends
// (subscribe, authorize, configure, submit) fits; a longer line grows the buffer up to
// the line limit, and the buffer returns to this size once that line is consumed.
const readBufSize = 512

// homeBuffers holds the resting buffers of connections parked between reads (park).
var homeBuffers = sync.Pool{New: func() any { return new([readBufSize]byte) }}

// lineReader splits a connection's byte stream into lines in a buffer that grows for a
// long line and shrinks back after it. bufio.Reader has a fixed size: sized for the line
// limit it would cost every idle miner MaxLineSize bytes; sized small it could not hold
// a long line. Not safe for concurrent use: the reader goroutine owns it.
//
// Unread bytes are buf[r:w]; buf[r:scan] is known to hold no '\n', so a line arriving in
// many reads is scanned once.
type lineReader struct {
	buf        []byte
	r, w, scan int
	max        int
	home       *[readBufSize]byte // the resting buffer, kept while buf is grown; nil while parked
	err        error              // a read error held back until the buffer is drained
	released   bool               // fill reports io.EOF
}

// newLineReader returns a reader holding no buffer: the first fill takes one.
func newLineReader(maxLine int) lineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	return lineReader{max: maxLine}
}

// park gives the resting buffer back to the pool when it holds nothing, so that a
// connection waiting for its next line holds no buffer; the next fill takes one.
// A grown buffer (a long line in progress) or unread bytes are kept.
func (l *lineReader) park() {
	if l.home == nil || l.r != l.w || len(l.buf) != readBufSize {
		return
	}
	homeBuffers.Put(l.home)
	l.home, l.buf = nil, nil
	l.r, l.w, l.scan = 0, 0, 0
}

// idle reports whether the reader holds no unread bytes.
func (l *lineReader) idle() bool { return l.r == l.w }

// next returns the next non-blank line, without its "\n" or "\r\n", if a whole one is
// buffered, or nil. The line stays valid until the next call of fill. A line longer than
// the limit is stratum.ErrLineTooLong; the stream is out of step after it.
func (l *lineReader) next() ([]byte, error) {
	for {
		i := bytes.IndexByte(l.buf[l.scan:l.w], '\n')
		if i < 0 {
			l.scan = l.w
			// max bytes and a "\r" may still be one line waiting for its "\n".
			if l.w-l.r > l.max+1 {
				return nil, stratum.ErrLineTooLong
			}
			return nil, nil
		}
		end := l.scan + i
		line := l.buf[l.r:end]
		l.r, l.scan = end+1, end+1
		if l.r == l.w {
			l.r, l.w, l.scan = 0, 0, 0
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > l.max {
			return nil, stratum.ErrLineTooLong
		}
		if len(bytes.TrimSpace(line)) > 0 {
			return line, nil
		}
	}
}

// buffered is the number of bytes read but not yet returned as lines.
func (l *lineReader) buffered() int { return l.w - l.r }

// fill makes room and reads once from src. It returns an error only with no bytes
// read: an error arriving with data is returned by the next fill.
func (l *lineReader) fill(src io.Reader) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.released {
		return 0, io.EOF
	}
	if l.home == nil {
		l.home = homeBuffers.Get().(*[readBufSize]byte)
		l.buf = l.home[:]
	}
	pending := l.w - l.r
	switch {
	case len(l.buf) > readBufSize && pending <= readBufSize/2:
		// The long line is gone: go back to the resting buffer.
		l.moveTo(l.home[:])
	case l.r > 0:
		// Only part of one line is left (next found no "\n"): copying it costs less
		// than reading into a small tail.
		l.moveTo(l.buf)
	case l.w == len(l.buf):
		// One partial line fills the buffer: grow, doubling, up to the line and its "\r\n".
		n := min(2*len(l.buf), l.max+2)
		if n <= len(l.buf) {
			return 0, stratum.ErrLineTooLong // unreachable: next reports it first
		}
		l.moveTo(make([]byte, n))
	}
	n, err := src.Read(l.buf[l.w:])
	l.w += n
	if n > 0 && err != nil {
		l.err, err = err, nil
	}
	return n, err
}

// moveTo moves the unread bytes to the start of dst and makes dst the buffer.
func (l *lineReader) moveTo(dst []byte) {
	n := copy(dst, l.buf[l.r:l.w])
	l.scan -= l.r
	l.r, l.w = 0, n
	l.buf = dst
}

// firstNonSpace returns the first buffered byte that is not JSON whitespace.
func (l *lineReader) firstNonSpace() (byte, bool) {
	for _, b := range l.buf[l.r:l.w] {
		switch b {
		case ' ', '\t', '\r', '\n':
		default:
			return b, true
		}
	}
	return 0, false
}

// release drops the buffers, the resting one back to the pool; fill then reports
// io.EOF. No line it returned may be used after.
func (l *lineReader) release() {
	if l.home != nil {
		homeBuffers.Put(l.home)
	}
	l.buf, l.home = nil, nil
	l.r, l.w, l.scan = 0, 0, 0
	l.released = true
}
