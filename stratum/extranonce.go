package stratum

import (
	"encoding/binary"
	"errors"
)

// MinMinerExtranonce2Size is the extranonce2 a proxy leaves each miner when the pool
// allows: 4 bytes is 2^32 coinbases per job, more than any ASIC exhausts.
const MinMinerExtranonce2Size = 4

// MaxPrefixSize bounds the per-miner prefix a proxy cuts from the pool's extranonce2.
const MaxPrefixSize = 8

// ErrExtranonceSpace reports an upstream extranonce2 too small to divide.
var ErrExtranonceSpace = errors.New("stratum: upstream extranonce2 leaves no room for a miner prefix")

// Layout is how a proxy divides one upstream session's extranonce2 space among miners:
//
//	upstream extranonce2 = prefix (PrefixSize bytes, one per miner) || miner extranonce2
//
// The coinbase bytes hashed are coinb1 || upstream extranonce1 || prefix || miner
// extranonce2 || coinb2 whichever way the proxy hands them out: as a split
// (miner extranonce1 = upstream extranonce1 || prefix) or folded (coinb1' = coinb1 ||
// upstream extranonce1, miner extranonce1 = prefix), which lets the upstream change
// with a new job instead of a reconnect.
type Layout struct {
	// Extranonce1 is the upstream session's extranonce1.
	Extranonce1 []byte
	// Extranonce2Size is the upstream session's extranonce2 size.
	Extranonce2Size int
	// PrefixSize is the per-miner prefix size.
	PrefixSize int
}

// NewLayout chooses the prefix size for an upstream session: as many bytes as leave
// each miner MinMinerExtranonce2Size, at most wantPrefix and MaxPrefixSize, and at
// least 1 while a miner keeps at least 1 byte. It fails when the upstream extranonce2
// is under 2 bytes.
func NewLayout(extranonce1 []byte, extranonce2Size, wantPrefix int) (Layout, error) {
	l := Layout{Extranonce1: extranonce1, Extranonce2Size: extranonce2Size}
	if extranonce2Size < 2 || extranonce2Size > MaxExtranonce2Size || len(extranonce1) > MaxExtranonce1Size {
		return l, ErrExtranonceSpace
	}
	p := min(wantPrefix, MaxPrefixSize, extranonce2Size-MinMinerExtranonce2Size)
	l.PrefixSize = max(p, 1)
	return l, nil
}

// MinerExtranonce2Size is the extranonce2 size each miner gets.
func (l Layout) MinerExtranonce2Size() int { return l.Extranonce2Size - l.PrefixSize }

// Prefixes is how many distinct miner prefixes the layout holds.
func (l Layout) Prefixes() uint64 {
	if l.PrefixSize >= 8 {
		return 1<<64 - 1
	}
	return 1 << (8 * uint(l.PrefixSize))
}

// AppendPrefix appends prefix number n as PrefixSize big-endian bytes.
func (l Layout) AppendPrefix(dst []byte, n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return append(dst, b[8-l.PrefixSize:]...)
}

// AppendSplitExtranonce1 appends a miner's extranonce1 in the split form: upstream
// extranonce1 || prefix.
func (l Layout) AppendSplitExtranonce1(dst []byte, prefix []byte) []byte {
	return append(append(dst, l.Extranonce1...), prefix...)
}

// FoldJob returns the job a miner gets in the folded form: coinb1 extended by the
// upstream extranonce1, everything else shared with j. The miner's extranonce1 is
// then its prefix alone.
func (l Layout) FoldJob(j *Job) *Job {
	f := *j
	f.Coinb1 = append(append(make([]byte, 0, len(j.Coinb1)+len(l.Extranonce1)), j.Coinb1...), l.Extranonce1...)
	return &f
}

// AppendUpstreamExtranonce2 appends, as hex text, the extranonce2 the pool must see:
// prefix || the miner's extranonce2 (minerHex, hex text as the miner sent it).
func (l Layout) AppendUpstreamExtranonce2(dst, prefix, minerHex []byte) []byte {
	return append(appendHex(dst, prefix), minerHex...)
}

// SplitUpstreamExtranonce2 divides an upstream extranonce2 (raw bytes) into the miner
// prefix and the miner's own extranonce2.
func (l Layout) SplitUpstreamExtranonce2(en2 []byte) (prefix, miner []byte, err error) {
	if len(en2) != l.Extranonce2Size {
		return nil, nil, ErrExtranonceSpace
	}
	return en2[:l.PrefixSize], en2[l.PrefixSize:], nil
}
