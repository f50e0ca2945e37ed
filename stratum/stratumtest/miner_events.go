package stratumtest

import "time"

// ShareKind says whether a submit was an honest share or which deliberate fault
// (Misbehaviour) it carried.
type ShareKind uint8

// The share kinds.
const (
	ShareGood      ShareKind = iota // an honest share
	ShareBadNonce                   // a nonce whose hash misses the share target
	ShareStale                      // a job id voided by a later clean job
	ShareDuplicate                  // the previous share again
	ShareBadNTime                   // an ntime beyond the allowed window
	NumShareKinds                   // the number of kinds, for arrays indexed by ShareKind
)

var shareKindNames = [...]string{
	ShareGood:      "good",
	ShareBadNonce:  "bad_nonce",
	ShareStale:     "stale",
	ShareDuplicate: "duplicate",
	ShareBadNTime:  "bad_ntime",
}

// String returns a short snake_case name, usable as a metric label.
func (k ShareKind) String() string {
	if int(k) < len(shareKindNames) {
		return shareKindNames[k]
	}
	return "invalid"
}

// Reply is one answered submit, as passed to MinerConfig.OnReply.
type Reply struct {
	Kind     ShareKind
	Latency  time.Duration // from writing the submit to reading its answer
	Accepted bool
	// Code and Reason are the rejection's (see stratum.Reject): Code 0 when the
	// server gave none, both empty for an accepted share.
	Code   int
	Reason string
}

// JobEvent is one mining.notify as the miner received it, as passed to
// MinerConfig.OnJob.
type JobEvent struct {
	Received time.Time
	// Stamp is when the pool made the job (JobStamp of its coinb2); zero when the
	// job carries none. Received minus Stamp is the job's latency.
	Stamp time.Time
	Clean bool
	// First reports the first notify on this connection: its stamp says nothing
	// about fan-out latency (the pool made the job before the miner connected).
	First bool
}
