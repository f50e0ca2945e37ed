package stratum

import "errors"

// Limits on what a job may carry. A notify beyond them is refused, so per-connection
// scratch stays bounded.
const (
	// MaxCoinbaseSize bounds len(coinb1)+extranonces+len(coinb2), in bytes.
	MaxCoinbaseSize = 16 << 10
	// MaxBranchLen bounds the merkle branch (2^32 transactions need 32 levels).
	MaxBranchLen = 32
	// MaxExtranonce1Size bounds an extranonce1, in bytes.
	MaxExtranonce1Size = 32
	// MaxExtranonce2Size bounds an extranonce2, in bytes (firmware accepts 2..16).
	MaxExtranonce2Size = 16
	// MaxJobIDLen bounds a job id, in bytes.
	MaxJobIDLen = 64
	// MaxNTimeRoll is how far a share's ntime may run ahead of its job's ntime, in
	// seconds: the strictest common pool rule (ckpool), below consensus's two hours.
	MaxNTimeRoll = 7000
)

// Job is the work of one mining.notify, decoded once so each share check only hashes.
// A Job is immutable once built and may be shared between goroutines.
type Job struct {
	// ID is the job id exactly as the pool sent it (an opaque string).
	ID string
	// PrevHash is the previous block hash in header (internal) order, the Stratum
	// word swap already undone.
	PrevHash Hash
	// Coinb1 and Coinb2 are the raw coinbase bytes around the extranonces.
	Coinb1, Coinb2 []byte
	// Branch is the merkle branch, internal order.
	Branch []Hash
	// Version, NBits and NTime are the header fields as numbers.
	Version, NBits, NTime uint32
	// Clean reports clean_jobs: every earlier job is void.
	Clean bool
	// NetworkTarget is the block target from NBits.
	NetworkTarget Target
}

var errJobTooBig = errors.New("stratum: job exceeds MaxCoinbaseSize, MaxBranchLen or MaxJobIDLen")

// NewJob validates j and computes its network target. Coinb1, Coinb2 and Branch are
// kept, not copied.
func NewJob(j Job) (*Job, error) {
	if len(j.Coinb1)+len(j.Coinb2)+MaxExtranonce1Size+MaxExtranonce2Size > MaxCoinbaseSize ||
		len(j.Branch) > MaxBranchLen || len(j.ID) > MaxJobIDLen {
		return nil, errJobTooBig
	}
	t, err := TargetFromBits(j.NBits)
	if err != nil {
		return nil, err
	}
	j.NetworkTarget = t
	return &j, nil
}

// SwapWords reverses the bytes inside each 4-byte word of h. It converts between the
// prevhash as Stratum sends it and header order, in either direction.
func SwapWords(h Hash) Hash {
	var r Hash
	for w := 0; w < 32; w += 4 {
		r[w], r[w+1], r[w+2], r[w+3] = h[w+3], h[w+2], h[w+1], h[w]
	}
	return r
}
