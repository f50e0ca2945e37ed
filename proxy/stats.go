package proxy

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashrelay/hashrelay/metrics"
	"github.com/hashrelay/hashrelay/stratum"
)

// lostReason says why an accepted, upstream-worthy share never reached a pool.
type lostReason uint8

const (
	lostQueueFull       lostReason = iota // the slot's submit queue was full (pool stalled)
	lostBufferFull                        // too many shares buffered during an outage
	lostUpstreamChanged                   // its job's pool session ended and was not resumed
	lostUnknownRelay                      // its job was no longer mapped to an upstream job
	lostShutdown                          // still queued when the proxy stopped
	lostReasonCount
)

var lostNames = [...]string{
	lostQueueFull:       "queue_full",
	lostBufferFull:      "buffer_full",
	lostUpstreamChanged: "upstream_changed",
	lostUnknownRelay:    "unknown_job",
	lostShutdown:        "shutdown",
}

func (r lostReason) String() string {
	if int(r) < len(lostNames) {
		return lostNames[r]
	}
	return "unknown"
}

// stats is the server's view of its counters: metrics for Prometheus and the per
// worker accounts for the API.
type stats struct {
	m     *metrics.Metrics
	pools []string
	// upstreams are the per-pool accounts for /api/v1/upstreams, by pool index.
	upstreams []poolAccount
	// inFlight counts shares forwarded and not yet answered (or failed): Shutdown
	// waits for it to reach zero.
	inFlight atomic.Int64
}

// upstreamResults are the result label's values of UpstreamShares.
var upstreamResults = [...]string{"accepted", "rejected", "error"}

// newStats returns the stats over m, with every label value known in advance
// created at zero, so each family is exported from the start and rate() sees its
// first increment.
func newStats(m *metrics.Metrics, pools []string) *stats {
	for v := stratum.Verdict(0); int(v) < stratum.VerdictCount; v++ {
		if v != stratum.VerdictNone {
			m.Shares.WithLabelValues(v.String())
		}
	}
	for r := CloseNone + 1; r < NumCloseReasons; r++ {
		m.ConnectionsClosed.WithLabelValues(r.String())
	}
	for r := lostReason(0); r < lostReasonCount; r++ {
		m.SharesLost.WithLabelValues(r.String())
	}
	for _, r := range upstreamResults {
		m.UpstreamShares.WithLabelValues(r)
	}
	for r := upstreamCloseReason(0); r < numUpstreamCloseReasons; r++ {
		m.UpstreamDisconnects.WithLabelValues(r.String())
	}
	for _, p := range pools {
		m.UpstreamUp.WithLabelValues(p)
		m.UpstreamSubmit.WithLabelValues(p)
		m.UpstreamDifficulty.WithLabelValues(p)
	}
	return &stats{m: m, pools: pools, upstreams: make([]poolAccount, len(pools))}
}

// unanswered is how many forwarded shares await their pool's answer.
func (s *stats) unanswered() int64 { return s.inFlight.Load() }

func (s *stats) verdict(v stratum.Verdict) { s.m.Shares.WithLabelValues(v.String()).Inc() }

func (s *stats) closed(r CloseReason) {
	s.m.ConnectionsClosed.WithLabelValues(r.String()).Inc()
	s.m.MinersConnected.Dec()
}

func (s *stats) lost(r lostReason, w *worker) {
	s.m.SharesLost.WithLabelValues(r.String()).Inc()
	if w != nil {
		w.mu.Lock()
		w.lost[r]++
		w.mu.Unlock()
	}
}

// forwarded counts a share about to be submitted; upstreamResult must follow, once.
func (s *stats) forwarded(w *worker) {
	s.inFlight.Add(1)
	s.m.SharesForwarded.Inc()
	w.mu.Lock()
	w.forwarded++
	w.mu.Unlock()
}

// upstreamResult counts a pool's answer to a forwarded share, per worker and reason,
// and per pool (pool is its index, or -1 when unknown).
func (s *stats) upstreamResult(w *worker, r submitResult, diff float64, pool int) {
	defer s.inFlight.Add(-1) // after the counts, which Shutdown's callers read
	var pa *poolAccount
	if pool >= 0 && pool < len(s.upstreams) {
		pa = &s.upstreams[pool]
	}
	now := w.now()
	switch {
	case r.Err != nil:
		s.m.UpstreamShares.WithLabelValues("error").Inc()
		w.addUpstreamResult(now, false, false, "no answer: "+r.Err.Error())
	case r.Accepted:
		s.m.UpstreamShares.WithLabelValues("accepted").Inc()
		s.m.AcceptedWork.Add(diff)
		w.addUpstreamResult(now, true, true, "")
		if pa != nil {
			pa.answer(now, r.Latency, true, "")
			s.m.UpstreamSubmit.WithLabelValues(s.pools[pool]).Observe(r.Latency.Seconds())
		}
	default:
		reason := r.Reject.Reason
		s.m.UpstreamShares.WithLabelValues("rejected").Inc()
		s.m.UpstreamRejects.WithLabelValues(normalizeReject(r.Reject.Code, reason)).Inc()
		if reason == "" {
			reason = "rejected"
		}
		w.addUpstreamResult(now, false, true, reason)
		if pa != nil {
			pa.answer(now, r.Latency, false, reason)
			s.m.UpstreamSubmit.WithLabelValues(s.pools[pool]).Observe(r.Latency.Seconds())
		}
	}
}

// normalizeReject maps a pool's free-text reason to a bounded label.
func normalizeReject(code int, reason string) string {
	r := strings.ToLower(reason)
	switch {
	case code == 23 || strings.Contains(r, "low diff") || strings.Contains(r, "above target") || strings.Contains(r, "too low"):
		return "low_difficulty"
	case code == 21 || strings.Contains(r, "stale") || strings.Contains(r, "job not found") || strings.Contains(r, "invalid jobid"):
		return "stale"
	case code == 22 || strings.Contains(r, "duplicate"):
		return "duplicate"
	case strings.Contains(r, "ntime") || strings.Contains(r, "time"):
		return "ntime"
	case code == 24 || strings.Contains(r, "unauthor") || strings.Contains(r, "worker"):
		return "unauthorized"
	case strings.Contains(r, "version"):
		return "version"
	}
	return "other"
}

func (s *stats) observeFanout(miners int, d time.Duration) {
	if miners > 0 {
		s.m.JobFanout.Observe(d.Seconds())
	}
}

func (s *stats) upstreamUp(pool int) {
	s.m.UpstreamUp.WithLabelValues(s.pools[pool]).Inc()
}

// upstreamDown counts a closed upstream connection; attached says it was a slot's
// active one (as opposed to a probe).
func (s *stats) upstreamDown(pool int, attached bool, r upstreamCloseReason) {
	s.m.UpstreamDisconnects.WithLabelValues(r.String()).Inc()
	if attached {
		s.m.UpstreamUp.WithLabelValues(s.pools[pool]).Dec()
	}
}
