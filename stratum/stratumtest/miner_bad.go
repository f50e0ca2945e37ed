package stratumtest

import (
	"bytes"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// LongLineSize is the length of the line Misbehaviour.LongLine sends, newline
// excluded: well over any server's line limit (stratum.DefaultMaxLineSize).
const LongLineSize = 128 << 10

const (
	// maxMissSearch bounds the nonces tried for one that misses the share target.
	maxMissSearch = 256
	// badNTimeBeyond is how far past the allowed window a ShareBadNTime's ntime is.
	badNTimeBeyond = 600
)

// malformedLine is what Misbehaviour.Malformed sends: not JSON at all.
var malformedLine = []byte("mining.submit? this is not JSON\n")

// longLine is what Misbehaviour.LongLine sends, made once on first use: a
// JSON-looking submit whose string never ends within LongLineSize bytes, then a
// newline.
var longLine = sync.OnceValue(func() []byte {
	b := make([]byte, 0, LongLineSize+1)
	b = append(b, `{"id":0,"method":"mining.submit","params":["`...)
	b = append(b, bytes.Repeat([]byte{'a'}, LongLineSize-len(b))...)
	return append(b, '\n')
})

// Misbehaviour is a mix of deliberate faults for a Miner. The fractions are per
// share found (0..1), drawn independently in the order of the fields Disconnect,
// Malformed, LongLine, BadNonce, StaleJob, Duplicate, BadNTime: at most one
// applies to a share, and a share that gets none is sent honestly. The zero value
// misbehaves in no way.
type Misbehaviour struct {
	// BadNonce submits a nonce whose hash misses the share target (the first of
	// the 256 nonces after the share's that misses; when none does, at a
	// difficulty so low every hash meets it, the share goes honestly and counts
	// in MinerStats.BadSkipped). Pools answer 23.
	BadNonce float64
	// StaleJob submits on a job id voided by a later clean job on this
	// connection (before any such job, on "deadbeef", an id never sent). Pools
	// answer 21.
	StaleJob float64
	// Duplicate resubmits the connection's previous honest share exactly (job,
	// extranonce2, ntime, nonce, version bits) with a new request id. Without
	// one on the current job, the share goes honestly and counts in BadSkipped.
	// Pools answer 22.
	Duplicate float64
	// BadNTime submits an ntime beyond the allowed window: the job's ntime +
	// stratum.MaxNTimeRoll + 600. Pools answer 20.
	BadNTime float64
	// Malformed writes a line that is not JSON instead of the share, then goes
	// on; the server may answer with an error or close the connection.
	Malformed float64
	// LongLine writes LongLineSize bytes of a JSON-looking string without a
	// newline instead of the share, then the newline; the server should close.
	LongLine float64
	// Disconnect resets the connection (TCP RST: SetLinger(0) then Close)
	// instead of submitting; the miner redials after its reconnect delay.
	Disconnect float64
	// Churn, when above zero, gives each connection an exponentially distributed
	// lifetime with this mean, after which the miner closes it cleanly (once the
	// answers in flight arrived, waiting at most a second) and redials at once.
	Churn time.Duration
}

// fault is what a share found turns into.
type fault uint8

const (
	faultNone fault = iota
	faultDisconnect
	faultMalformed
	faultLongLine
	faultBadNonce
	faultStale
	faultDuplicate
	faultBadNTime
)

// perShare reports whether any per-share fault is configured.
func (b *Misbehaviour) perShare() bool {
	return b.Disconnect > 0 || b.Malformed > 0 || b.LongLine > 0 ||
		b.BadNonce > 0 || b.StaleJob > 0 || b.Duplicate > 0 || b.BadNTime > 0
}

// draw picks the fault for one share found.
func (b *Misbehaviour) draw() fault {
	switch {
	case hit(b.Disconnect):
		return faultDisconnect
	case hit(b.Malformed):
		return faultMalformed
	case hit(b.LongLine):
		return faultLongLine
	case hit(b.BadNonce):
		return faultBadNonce
	case hit(b.StaleJob):
		return faultStale
	case hit(b.Duplicate):
		return faultDuplicate
	case hit(b.BadNTime):
		return faultBadNTime
	}
	return faultNone
}

// hit draws true with probability p.
func hit(p float64) bool {
	return p > 0 && (p >= 1 || rand.Float64() < p)
}

// expDuration draws an exponentially distributed duration with the given mean.
func expDuration(mean time.Duration) time.Duration {
	return time.Duration(rand.ExpFloat64() * float64(mean))
}

// missNonce returns a nonce after nonce whose hash of hdr misses target, trying
// maxMissSearch of them; false when every one meets it. It leaves hdr's nonce
// changed (the hasher sets it before each hash).
func missNonce(hdr *stratum.Header, target *stratum.Target, nonce uint32) (uint32, bool) {
	for k := uint32(1); k <= maxMissSearch; k++ {
		hdr.SetNonce(nonce + k)
		hash := hdr.Hash()
		if !target.MetBy(&hash) {
			return nonce + k, true
		}
	}
	return 0, false
}

// badNTime returns an ntime outside the window a pool accepts for a job with
// jobNTime: past its end, or (where that would overflow) just before its start.
func badNTime(jobNTime uint32) uint32 {
	if t := uint64(jobNTime) + stratum.MaxNTimeRoll + badNTimeBeyond; t <= math.MaxUint32 {
		return uint32(t)
	}
	return jobNTime - 1
}

// abort resets the connection: SetLinger(0) makes Close send a TCP RST.
func (c *minerConn) abort() {
	c.selfClosed.Store(true)
	if tc, ok := c.raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.raw.Close()
}
