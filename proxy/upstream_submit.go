package proxy

import (
	"strconv"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// submitResult is the pool's answer to one forwarded share.
type submitResult struct {
	// Accepted is set when the result was exactly true.
	Accepted bool
	// Reject is why the pool refused, in any of the forms pools use.
	Reject upstreamReject
	// Err is set when the pool never answered: errUpstreamSubmitTimeout, or
	// errUpstreamClosed with the close reason.
	Err error
	// Latency is from the submit to the answer (0 with Err).
	Latency time.Duration
}

// upstreamReject is a pool's refusal as a submit's answer carries it:
// stratum.Reject with the reason copied out of the decoder.
type upstreamReject struct {
	Code   int    // 0 when the pool gave none
	Reason string // "" when the pool gave none
}

// upstreamRequest is a request awaiting the pool's answer: a submit or a worker's
// authorize.
type upstreamRequest struct {
	sent      time.Time
	submit    func(submitResult)
	authorize func(ok bool, reason string)
}

// submit forwards a share under worker (which replaces s.Worker) with the proxy's
// own next id, and calls done exactly once: with the pool's answer (matched by id,
// in any order) on the reader goroutine, or with an Err on whichever goroutine
// fails it (the health goroutine on a timeout, the closer on a close, or this one,
// before submit returns, when the upstream is already closed). done must not
// block. s and worker are not kept. A write stalled past WriteTimeout closes the
// upstream.
func (u *upstream) submit(worker []byte, s *stratum.Submit, done func(r submitResult)) {
	id := u.nextID.Add(1)
	if !u.track(id, upstreamRequest{submit: done}) {
		done(submitResult{Err: errUpstreamClosed})
		return
	}
	u.sent.Add(1)
	sub := *s
	sub.Worker = worker
	if err := u.send(func(dst []byte) []byte { return stratum.AppendSubmit(dst, id, &sub) }); err != nil {
		u.closeWith(writeCloseReason(err), err)
	}
}

// authorizeWorker authorizes a miner's worker name on this connection (identity
// mode worker), and calls done exactly once, as submit does; reason is the pool's
// when it refused, or why it never answered.
func (u *upstream) authorizeWorker(name, password string, done func(ok bool, reason string)) {
	id := u.nextID.Add(1)
	if !u.track(id, upstreamRequest{authorize: done}) {
		done(false, errUpstreamClosed.Error())
		return
	}
	if err := u.send(func(dst []byte) []byte { return stratum.AppendAuthorize(dst, id, name, password) }); err != nil {
		u.closeWith(writeCloseReason(err), err)
	}
}

// track records a pending request before it is written (its answer may come back
// before the write returns). It returns false when the upstream is closed.
func (u *upstream) track(id uint64, r upstreamRequest) bool {
	r.sent = time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pending == nil {
		return false
	}
	u.pending[id] = r
	return true
}

// answer completes a pending request with the pool's answer m. Reader goroutine.
func (u *upstream) answer(p upstreamRequest, m *stratum.Message) {
	if p.authorize != nil {
		if m.Accepted() {
			p.authorize(true, "")
		} else {
			p.authorize(false, rejectText(m.Reject()))
		}
		return
	}
	r := submitResult{Latency: time.Since(p.sent)}
	if m.Accepted() {
		r.Accepted = true
		u.accepted.Add(1)
	} else {
		rj := m.Reject()
		r.Reject = upstreamReject{Code: rj.Code, Reason: string(rj.Reason)}
		u.rejected.Add(1)
		u.countReject(r.Reject.Reason)
	}
	p.submit(r)
}

// fail completes a pending request the pool will never answer: a timeout when it
// has waited SubmitTimeout, else closedErr.
func (u *upstream) fail(p upstreamRequest, now time.Time, closedErr error) {
	err := closedErr
	if now.Sub(p.sent) >= u.cfg.submitTimeout() {
		err = errUpstreamSubmitTimeout
	}
	if p.authorize != nil {
		p.authorize(false, err.Error())
		return
	}
	if err == errUpstreamSubmitTimeout {
		u.timeouts.Add(1)
	} else {
		u.lost.Add(1)
	}
	p.submit(submitResult{Err: err})
}

// pendingCount returns how many submits and worker authorizes await an answer.
func (u *upstream) pendingCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.pending)
}

// oldestPending returns how long the oldest pending request has waited.
func (u *upstream) oldestPending() time.Duration {
	now := time.Now()
	var oldest time.Duration
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range u.pending {
		oldest = max(oldest, now.Sub(p.sent))
	}
	return oldest
}

// rejectText is a rejection as one string: "reason" or "[code] reason".
func rejectText(r stratum.Reject) string {
	switch {
	case r.Code != 0 && len(r.Reason) > 0:
		return "[" + strconv.Itoa(r.Code) + "] " + string(r.Reason)
	case r.Code != 0:
		return "[" + strconv.Itoa(r.Code) + "]"
	case len(r.Reason) > 0:
		return string(r.Reason)
	}
	return "no reason given"
}

// countReject counts a rejection by its reason, bounded to
// upstreamMaxRejectReasons distinct reasons.
func (u *upstream) countReject(reason string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.rejects == nil {
		u.rejects = make(map[string]uint64)
	}
	if _, ok := u.rejects[reason]; !ok && len(u.rejects) >= upstreamMaxRejectReasons {
		reason = "other"
	}
	u.rejects[reason]++
}

// upstreamStats is a snapshot of an upstream's counters. SubmitsSent equals
// Accepted + Rejected + Timeouts + Lost + those still pending.
type upstreamStats struct {
	SubmitsSent uint64 // submits written (or attempted)
	Accepted    uint64 // answered true
	Rejected    uint64 // answered otherwise
	Timeouts    uint64 // unanswered past SubmitTimeout
	Lost        uint64 // unanswered when the connection closed
	BytesIn     uint64 // bytes read from the socket (TLS records included)
	BytesOut    uint64 // bytes written to the socket
	// RejectReasons counts rejections by the pool's reason ("" when it gave none).
	RejectReasons map[string]uint64
}

// snapshot returns the counters. Safe from any goroutine.
func (u *upstream) snapshot() upstreamStats {
	s := upstreamStats{
		SubmitsSent: u.sent.Load(),
		Accepted:    u.accepted.Load(),
		Rejected:    u.rejected.Load(),
		Timeouts:    u.timeouts.Load(),
		Lost:        u.lost.Load(),
		BytesIn:     u.bytesIn.Load(),
		BytesOut:    u.bytesOut.Load(),
	}
	u.mu.Lock()
	if len(u.rejects) > 0 {
		s.RejectReasons = make(map[string]uint64, len(u.rejects))
		for k, v := range u.rejects {
			s.RejectReasons[k] = v
		}
	}
	u.mu.Unlock()
	return s
}
