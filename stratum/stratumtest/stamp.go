package stratumtest

import (
	"bytes"
	"encoding/binary"
	"time"
)

// stampSize is the size of a job stamp: Unix nanoseconds, little-endian.
const stampSize = 8

// appendStamp appends t as a job stamp.
func appendStamp(b []byte, t time.Time) []byte {
	return binary.LittleEndian.AppendUint64(b, uint64(t.UnixNano()))
}

// JobStamp returns when the pool made a job, read from the stamp its synthetic
// jobs carry in the coinbase (after the pool tag and the job counter in coinb2),
// and false for a job without one (the caller's jobs, or another pool's). A pool
// stamps a job as it makes it, just before sending it, so a miner on the same host
// measures job latency as its receipt time minus the stamp. The stamp survives a
// proxy, which passes coinb2 through.
func JobStamp(coinb2 []byte) (time.Time, bool) {
	i := bytes.Index(coinb2, []byte(coinbaseTag))
	if i < 1 || int(coinb2[i-1]) != len(coinbaseTag)+4+stampSize {
		return time.Time{}, false
	}
	at := i + len(coinbaseTag) + 4
	if at+stampSize > len(coinb2) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.LittleEndian.Uint64(coinb2[at:]))), true
}
