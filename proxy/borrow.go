package proxy

import (
	"sync"

	"github.com/hashrelay/hashrelay/stratum"
)

// A session borrows the state it needs to handle one line, and gives it back after:
// a decoder keeps the parse tree of the last line it read (about a kilobyte after a
// mining.configure) and the reply scratch the longest reply it wrote (a subscribe
// result). Lent per line, a few of each serve every miner, instead of every idle
// connection holding its last line and its handshake reply for as long as it stays.
var (
	decoders     = sync.Pool{New: func() any { return new(stratum.Decoder) }}
	replyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}
)

// maxReplyBuffer is the largest reply scratch put back; a longer one (a reply to a
// very long line) is left to the garbage collector.
const maxReplyBuffer = 4 << 10

// getDecoder returns a decoder; give it back with putDecoder once the message it
// decoded is no longer used.
func getDecoder() *stratum.Decoder { return decoders.Get().(*stratum.Decoder) }

func putDecoder(d *stratum.Decoder) { decoders.Put(d) }

// getReplyBuffer returns a reply scratch: *p, empty.
func getReplyBuffer() (p *[]byte) {
	p = replyBuffers.Get().(*[]byte)
	*p = (*p)[:0]
	return p
}

// putReplyBuffer gives p back holding b, the scratch as it grew; neither may be used
// after.
func putReplyBuffer(p *[]byte, b []byte) {
	if cap(b) > maxReplyBuffer {
		return
	}
	*p = b[:0]
	replyBuffers.Put(p)
}
