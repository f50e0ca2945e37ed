package stratumtest

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// jobSource makes the pool's jobs. It is called with Pool.mu held.
type jobSource interface {
	// next returns a new job; clean means a new block (every earlier job void).
	next(clean bool) *stratum.Job
}

// fixedJobs serves the caller's jobs in turn, ids kept, Clean set per send.
type fixedJobs struct {
	jobs []*stratum.Job
	i    int
}

var errNilJob = errors.New("stratumtest: nil job")

func newFixedJobs(jobs []*stratum.Job) (*fixedJobs, error) {
	f := &fixedJobs{jobs: make([]*stratum.Job, len(jobs))}
	for i, j := range jobs {
		if j == nil {
			return nil, errNilJob
		}
		v, err := stratum.NewJob(*j) // validates and fills NetworkTarget
		if err != nil {
			return nil, err
		}
		f.jobs[i] = v
	}
	return f, nil
}

func (f *fixedJobs) next(clean bool) *stratum.Job {
	j := *f.jobs[f.i%len(f.jobs)]
	f.i++
	j.Clean = clean
	return &j
}

// Synthetic coinbase layout (non-witness serialization), about 170 bytes:
//
//	coinb1: version(4) | 1 input | null outpoint (32 zero bytes, ffffffff) |
//	        scriptSig length | BIP 34 height push (03 + 3 bytes LE) | push(en1+en2 size)
//	        -> extranonce1 || extranonce2 go here
//	coinb2: push of the pool tag, a 4-byte job counter and the job's 8-byte stamp
//	        (see JobStamp) | sequence ffffffff |
//	        2 outputs: 3.125 BTC to a P2WPKH script, and the witness commitment
//	        (OP_RETURN aa21a9ed + 32 bytes) | locktime 0
const (
	coinbaseTag     = "/hashrelay-stratumtest/"
	coinbaseReward  = 312_500_000 // satoshis
	syntheticBlockV = 0x20000000
	firstHeight     = 880_000
)

// syntheticJobs makes jobs with a random prevhash per block, a realistic coinbase
// and a merkle branch over random txids.
type syntheticJobs struct {
	rng     *rand.Rand
	nbits   uint32
	txs     int
	enSize  int // extranonce1 + extranonce2 size, pushed in the scriptSig
	seq     uint64
	height  uint32
	prev    stratum.Hash
	payout  [20]byte
	lastNow uint32
	target  stratum.Target // from nbits
}

func newSyntheticJobs(rng *rand.Rand, nbits uint32, txs, enSize int) (*syntheticJobs, error) {
	target, err := stratum.TargetFromBits(nbits)
	if err != nil {
		return nil, err
	}
	if txs == 0 {
		txs = DefaultTransactions
	}
	g := &syntheticJobs{rng: rng, nbits: nbits, txs: min(max(txs, 0), MaxTransactions), enSize: enSize, height: firstHeight, target: target}
	g.fill(g.payout[:])
	return g, nil
}

func (g *syntheticJobs) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], g.rng.Uint64())
		copy(b[i:], w[:])
	}
}

func (g *syntheticJobs) next(clean bool) *stratum.Job {
	g.seq++
	if clean || g.seq == 1 {
		g.height++
		g.fill(g.prev[:])
	}
	now := uint32(time.Now().Unix())
	if now < g.lastNow {
		now = g.lastNow // ntime never goes backwards between jobs
	}
	g.lastNow = now

	txids := make([]stratum.Hash, g.txs)
	for i := range txids {
		g.fill(txids[i][:])
	}
	// Built directly rather than by stratum.NewJob: the sizes are fixed well
	// inside its limits and the network target was computed once from nbits.
	return &stratum.Job{
		ID:            formatJobID(g.seq),
		PrevHash:      g.prev,
		Coinb1:        g.coinb1(),
		Coinb2:        g.coinb2(),
		Branch:        stratum.MerkleBranch(txids),
		Version:       syntheticBlockV,
		NBits:         g.nbits,
		NTime:         now,
		Clean:         clean || g.seq == 1,
		NetworkTarget: g.target,
	}
}

func (g *syntheticJobs) coinb1() []byte {
	b := make([]byte, 0, 64)
	b = binary.LittleEndian.AppendUint32(b, 1) // tx version
	b = append(b, 1)                           // one input
	b = append(b, make([]byte, 32)...)         // null outpoint hash
	b = append(b, 0xff, 0xff, 0xff, 0xff)      // outpoint index
	scriptLen := 4 + 1 + g.enSize + 1 + len(coinbaseTag) + 4 + stampSize
	b = append(b, byte(scriptLen))
	b = append(b, 3, byte(g.height), byte(g.height>>8), byte(g.height>>16)) // BIP 34
	return append(b, byte(g.enSize))                                        // push of the extranonces
}

func (g *syntheticJobs) coinb2() []byte {
	b := make([]byte, 0, 128)
	b = append(b, byte(len(coinbaseTag)+4+stampSize))
	b = append(b, coinbaseTag...)
	b = binary.LittleEndian.AppendUint32(b, uint32(g.seq))
	b = appendStamp(b, time.Now())
	b = append(b, 0xff, 0xff, 0xff, 0xff) // sequence
	b = append(b, 2)                      // two outputs
	b = binary.LittleEndian.AppendUint64(b, coinbaseReward)
	b = append(b, 22, 0x00, 0x14) // P2WPKH: OP_0 push20
	b = append(b, g.payout[:]...)
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = append(b, 38, 0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed) // OP_RETURN witness commitment
	var commitment [32]byte
	g.fill(commitment[:])
	b = append(b, commitment[:]...)
	return binary.LittleEndian.AppendUint32(b, 0) // locktime
}
