package stratumtest

import (
	"errors"
	"net"
	"time"
)

// maxErrorKeys bounds the distinct messages MinerStats.Errors counts; further
// ones count under errorKeyOther.
const (
	maxErrorKeys  = 32
	errorKeyOther = "other"
)

// MinerStats is a snapshot of what a Miner did.
type MinerStats struct {
	Connects    uint64 // connections established
	Reconnects  uint64 // client.reconnect followed
	Disconnects uint64 // connections ended
	// JobsReceived counts mining.notify; CleanJobs those with clean_jobs=true.
	JobsReceived, CleanJobs uint64
	Hashes                  uint64
	// SharesFound counts hashes that met the share target; SharesSkipped those not
	// submitted (MaxSharesPerSecond, or too many awaiting an answer).
	SharesFound, SharesSkipped uint64
	Submitted                  uint64 // mining.submit sent
	Accepted                   uint64 // answered true
	Rejected                   uint64 // answered anything else
	// Unanswered counts submits whose connection ended before an answer.
	Unanswered uint64
	// RejectReasons and RejectCodes count rejections by the reason text and the code
	// (0 when the pool gave none, as in ckpool's form).
	RejectReasons map[string]uint64
	RejectCodes   map[int]uint64
	// LastError is the last error that ended a connection.
	LastError string
	// Addr is the server of the current (or last) connection.
	Addr string
	// SessionID is the session id from the last subscribe result.
	SessionID string
	// Extranonce1 and Extranonce2Size are those of the current work.
	Extranonce1     []byte
	Extranonce2Size int
	// Difficulty is the difficulty of the current work; a set_difficulty waiting
	// for the next notify is not in it yet.
	Difficulty float64
	// VersionRolling reports that the pool granted version rolling; VersionMask is
	// the mask rolled inside.
	VersionRolling bool
	VersionMask    uint32
	// JobID is the job being mined.
	JobID string
	// ExtranonceSubscribed reports the pool answered true to extranonce.subscribe.
	ExtranonceSubscribed bool
	// ExtranonceChanges counts set_extranonce applied (at the next notify);
	// ExtranonceIgnored those ignored for want of ExtranonceSubscribe.
	ExtranonceChanges, ExtranonceIgnored uint64
	// VersionMaskChanges counts set_version_mask applied.
	VersionMaskChanges uint64
	// LastMessage is the last client.show_message text.
	LastMessage string
	// Latencies holds recent answer latencies of submits, oldest first.
	Latencies []time.Duration

	// BytesIn and BytesOut count the bytes read from and written to the server,
	// over all connections.
	BytesIn, BytesOut uint64
	// BadSent counts the deliberately bad shares submitted (Misbehaviour), by
	// kind; BadRejected and BadAccepted count their answers. A bad share accepted
	// is a server bug. Index ShareGood is unused. Accepted and Rejected count
	// every answered submit, bad ones included.
	BadSent, BadRejected, BadAccepted [NumShareKinds]uint64
	// BadSkipped counts bad shares that could not be made (no missing nonce near
	// a share at a very low difficulty, no earlier share on the job to
	// duplicate) and were sent honestly.
	BadSkipped uint64
	// MalformedSent and LongLinesSent count the non-JSON and over-long lines sent
	// in place of shares.
	MalformedSent, LongLinesSent uint64
	// AbruptCloses counts connections reset by Misbehaviour.Disconnect;
	// ChurnCloses those closed by Misbehaviour.Churn.
	AbruptCloses, ChurnCloses uint64
	// DialFailures counts dials that failed.
	DialFailures uint64
	// Errors counts the errors that ended connections or dials (the values of
	// LastError), by message without addresses ("read: connection reset by
	// peer", "dial: connection refused", "EOF"): at most 32 distinct, further
	// ones under "other". Connections the miner closed on purpose count nothing.
	Errors map[string]uint64
}

// Stats returns a snapshot of the miner's counters.
func (m *Miner) Stats() MinerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Hashes = m.hashes.Load()
	st.RejectReasons = make(map[string]uint64, len(m.st.RejectReasons))
	for k, v := range m.st.RejectReasons {
		st.RejectReasons[k] = v
	}
	st.RejectCodes = make(map[int]uint64, len(m.st.RejectCodes))
	for k, v := range m.st.RejectCodes {
		st.RejectCodes[k] = v
	}
	st.Errors = make(map[string]uint64, len(m.st.Errors))
	for k, v := range m.st.Errors {
		st.Errors[k] = v
	}
	st.BytesIn, st.BytesOut = m.bytesIn.Load(), m.bytesOut.Load()
	st.Extranonce1 = append([]byte(nil), m.st.Extranonce1...)
	st.Latencies = make([]time.Duration, 0, len(m.latencies))
	st.Latencies = append(st.Latencies, m.latencies[m.latNext:]...)
	st.Latencies = append(st.Latencies, m.latencies[:m.latNext]...)
	return st
}

// update changes the stats under m.mu.
func (m *Miner) update(f func(s *MinerStats)) {
	m.mu.Lock()
	f(&m.st)
	m.mu.Unlock()
}

// recordLatency keeps one answer latency. m.mu must be held.
func (m *Miner) recordLatencyLocked(d time.Duration) {
	if len(m.latencies) < maxLatencySamples {
		m.latencies = append(m.latencies, d)
		return
	}
	m.latencies[m.latNext] = d
	m.latNext = (m.latNext + 1) % maxLatencySamples
}

// recordError records an error that ended a connection or a dial.
func (m *Miner) recordError(err error) {
	msg, key := err.Error(), errorKey(err)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.LastError = msg
	if _, seen := m.st.Errors[key]; !seen && len(m.st.Errors) >= maxErrorKeys {
		key = errorKeyOther
	}
	m.st.Errors[key]++
}

// errorKey returns err's message without the addresses a *net.OpError carries,
// so errors of one kind on different connections count as one: the operation
// and the innermost cause, as "read: connection reset by peer".
func errorKey(err error) string {
	var op *net.OpError
	if !errors.As(err, &op) || op.Err == nil {
		return err.Error()
	}
	cause := op.Err
	for {
		u := errors.Unwrap(cause)
		if u == nil {
			break
		}
		cause = u
	}
	return op.Op + ": " + cause.Error()
}
