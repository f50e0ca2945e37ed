package stratum

// Verdict is the outcome of checking one share. The zero value, VerdictNone, means
// not checked; only VerdictAccepted means the hash met the share target.
type Verdict uint8

// The verdicts, in the order a check reaches them.
const (
	VerdictNone Verdict = iota
	VerdictMalformed
	VerdictUnknownJob
	VerdictExtranonce2Size
	VerdictNTimeOutOfRange
	VerdictVersionBits
	VerdictLowDifficulty
	VerdictDuplicate
	VerdictAccepted
	verdictCount
)

// VerdictCount is the number of verdicts, for arrays indexed by Verdict.
const VerdictCount = int(verdictCount)

var verdictNames = [...]string{
	VerdictNone:            "none",
	VerdictMalformed:       "malformed",
	VerdictUnknownJob:      "unknown_job",
	VerdictExtranonce2Size: "extranonce2_size",
	VerdictNTimeOutOfRange: "ntime_out_of_range",
	VerdictVersionBits:     "version_bits",
	VerdictLowDifficulty:   "low_difficulty",
	VerdictDuplicate:       "duplicate",
	VerdictAccepted:        "accepted",
}

// String returns a short snake_case name, usable as a metric label.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "invalid"
}

// Err returns the wire error a miner gets for a rejected share, or nil for an
// accepted one.
func (v Verdict) Err() *Error {
	switch v {
	case VerdictAccepted:
		return nil
	case VerdictUnknownJob:
		return ErrJobNotFound
	case VerdictExtranonce2Size:
		return ErrExtranonce2Size
	case VerdictNTimeOutOfRange:
		return ErrNTimeOutOfRange
	case VerdictVersionBits:
		return ErrInvalidVersionBits
	case VerdictLowDifficulty:
		return ErrLowDifficulty
	case VerdictDuplicate:
		return ErrDuplicateShare
	case VerdictMalformed:
		return ErrMalformedShare
	}
	return ErrOther
}
