package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// maxErrorKeys bounds the distinct error messages in the report (as each Miner
// bounds its own); the rest count under errorKeyOther.
const (
	maxErrorKeys  = 32
	errorKeyOther = "other"
)

// counts are the counters of a run, or of one process's part of it: what a
// worker sends in its report line and the parent sums.
type counts struct {
	Made         uint64 `json:"made"`
	Held         uint64 `json:"held"`
	Disconnects  uint64 `json:"disconnects"`
	Reconnects   uint64 `json:"reconnects"`
	DialFailures uint64 `json:"dial_failures"`
	AbruptCloses uint64 `json:"abrupt_closes"`
	ChurnCloses  uint64 `json:"churn_closes"`

	Found            uint64            `json:"found"`
	Submitted        uint64            `json:"submitted"`
	Accepted         uint64            `json:"accepted"`
	Rejected         uint64            `json:"rejected"`
	Unanswered       uint64            `json:"unanswered"`
	Skipped          uint64            `json:"skipped"`
	RejectedByReason map[string]uint64 `json:"rejected_by_reason"`

	BadSent       [stratumtest.NumShareKinds]uint64 `json:"bad_sent"`
	BadRejected   [stratumtest.NumShareKinds]uint64 `json:"bad_rejected"`
	BadAccepted   [stratumtest.NumShareKinds]uint64 `json:"bad_accepted"`
	BadSkipped    uint64                            `json:"bad_skipped"`
	MalformedSent uint64                            `json:"malformed_sent"`
	LongLinesSent uint64                            `json:"long_lines_sent"`

	Jobs      uint64 `json:"jobs"`
	CleanJobs uint64 `json:"clean_jobs"`
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`

	Errors map[string]uint64 `json:"errors"`
}

func newCounts() counts {
	return counts{RejectedByReason: map[string]uint64{}, Errors: map[string]uint64{}}
}

// addMiner adds a miner's final stats: everything but Held and Disconnects,
// which are taken at the end of the run, before the miners close.
func (c *counts) addMiner(st *stratumtest.MinerStats) {
	c.Made += st.Connects
	c.Reconnects += st.Reconnects
	c.DialFailures += st.DialFailures
	c.AbruptCloses += st.AbruptCloses
	c.ChurnCloses += st.ChurnCloses
	c.Found += st.SharesFound
	c.Submitted += st.Submitted
	c.Accepted += st.Accepted
	c.Rejected += st.Rejected
	c.Unanswered += st.Unanswered
	c.Skipped += st.SharesSkipped
	addMap(c.RejectedByReason, st.RejectReasons)
	for k := range c.BadSent {
		c.BadSent[k] += st.BadSent[k]
		c.BadRejected[k] += st.BadRejected[k]
		c.BadAccepted[k] += st.BadAccepted[k]
	}
	c.BadSkipped += st.BadSkipped
	c.MalformedSent += st.MalformedSent
	c.LongLinesSent += st.LongLinesSent
	c.Jobs += st.JobsReceived
	c.CleanJobs += st.CleanJobs
	c.BytesIn += st.BytesIn
	c.BytesOut += st.BytesOut
	addMap(c.Errors, st.Errors)
}

// add adds another process's counts.
func (c *counts) add(o *counts) {
	c.Made += o.Made
	c.Held += o.Held
	c.Disconnects += o.Disconnects
	c.Reconnects += o.Reconnects
	c.DialFailures += o.DialFailures
	c.AbruptCloses += o.AbruptCloses
	c.ChurnCloses += o.ChurnCloses
	c.Found += o.Found
	c.Submitted += o.Submitted
	c.Accepted += o.Accepted
	c.Rejected += o.Rejected
	c.Unanswered += o.Unanswered
	c.Skipped += o.Skipped
	addMap(c.RejectedByReason, o.RejectedByReason)
	for k := range c.BadSent {
		c.BadSent[k] += o.BadSent[k]
		c.BadRejected[k] += o.BadRejected[k]
		c.BadAccepted[k] += o.BadAccepted[k]
	}
	c.BadSkipped += o.BadSkipped
	c.MalformedSent += o.MalformedSent
	c.LongLinesSent += o.LongLinesSent
	c.Jobs += o.Jobs
	c.CleanJobs += o.CleanJobs
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	addMap(c.Errors, o.Errors)
}

func addMap(dst, src map[string]uint64) {
	for k, n := range src {
		dst[k] += n
	}
}

// part is one process's result: its counts, timing and histograms. A worker
// sends it as its report line ("type": "report"); the parent merges the parts.
type part struct {
	Type string `json:"type"`
	counts
	// RunSeconds is the time from the end of the ramp to the end of the run (0
	// when the run was stopped during the ramp).
	RunSeconds float64 `json:"run_seconds"`
	// AcceptedAfterRamp counts the shares accepted after the ramp ended.
	AcceptedAfterRamp uint64     `json:"accepted_after_ramp"`
	ReplyLatency      histExport `json:"reply_latency"`
	JobLatency        histExport `json:"job_latency"`
	CleanJobLatency   histExport `json:"clean_job_latency"`
}

// result is a whole run: the parts merged.
type result struct {
	counts
	runSeconds                        float64 // the longest part's
	acceptedAfterRamp                 uint64
	replyLatency, jobLat, cleanJobLat *hist
}

func newResult() *result {
	return &result{counts: newCounts(), replyLatency: newHist(), jobLat: newHist(), cleanJobLat: newHist()}
}

// merge adds a part.
func (r *result) merge(p *part) error {
	r.counts.add(&p.counts)
	r.runSeconds = max(r.runSeconds, p.RunSeconds)
	r.acceptedAfterRamp += p.AcceptedAfterRamp
	for _, m := range []struct {
		h    *hist
		e    histExport
		name string
	}{{r.replyLatency, p.ReplyLatency, "reply"}, {r.jobLat, p.JobLatency, "job"}, {r.cleanJobLat, p.CleanJobLatency, "clean job"}} {
		if err := m.h.merge(m.e); err != nil {
			return fmt.Errorf("%s latency: %w", m.name, err)
		}
	}
	return nil
}

// report is the final report, exactly as the contract (specs/minersim.md) has
// it: every field always present.
type report struct {
	URL             string               `json:"url"`
	Miners          int                  `json:"miners"`
	Procs           int                  `json:"procs"`
	RampSeconds     float64              `json:"ramp_seconds"`
	RunSeconds      float64              `json:"run_seconds"`
	Connections     connReport           `json:"connections"`
	Shares          shareReport          `json:"shares"`
	Bad             map[string]badReport `json:"bad"`
	MalformedSent   uint64               `json:"malformed_sent"`
	LongLinesSent   uint64               `json:"long_lines_sent"`
	Jobs            jobReport            `json:"jobs"`
	ReplyLatency    quantiles            `json:"reply_latency_ms"`
	JobLatency      quantiles            `json:"job_latency_ms"`
	CleanJobLatency quantiles            `json:"clean_job_latency_ms"`
	Bytes           bytesReport          `json:"bytes"`
	Errors          map[string]uint64    `json:"errors"`

	badSkipped uint64 // for the text report only: not in the contract
}

type connReport struct {
	Made         uint64 `json:"made"`
	Held         uint64 `json:"held"`
	Disconnects  uint64 `json:"disconnects"`
	Reconnects   uint64 `json:"reconnects"`
	DialFailures uint64 `json:"dial_failures"`
	AbruptCloses uint64 `json:"abrupt_closes"`
	ChurnCloses  uint64 `json:"churn_closes"`
}

type shareReport struct {
	Found             uint64            `json:"found"`
	Submitted         uint64            `json:"submitted"`
	Accepted          uint64            `json:"accepted"`
	Rejected          uint64            `json:"rejected"`
	Unanswered        uint64            `json:"unanswered"`
	Skipped           uint64            `json:"skipped"`
	RejectedByReason  map[string]uint64 `json:"rejected_by_reason"`
	AcceptedPerSecond float64           `json:"accepted_per_second"`
}

type badReport struct {
	Sent     uint64 `json:"sent"`
	Rejected uint64 `json:"rejected"`
	Accepted uint64 `json:"accepted"`
}

type jobReport struct {
	Received uint64 `json:"received"`
	Clean    uint64 `json:"clean"`
}

type bytesReport struct {
	In  uint64 `json:"in"`
	Out uint64 `json:"out"`
}

// newReport builds the report of a run.
func newReport(o *options, r *result) report {
	rep := report{
		URL:         o.url,
		Miners:      o.miners,
		Procs:       o.procs,
		RampSeconds: o.ramp.Seconds(),
		RunSeconds:  r.runSeconds,
		Connections: connReport{
			Made: r.Made, Held: r.Held, Disconnects: r.Disconnects, Reconnects: r.Reconnects,
			DialFailures: r.DialFailures, AbruptCloses: r.AbruptCloses, ChurnCloses: r.ChurnCloses,
		},
		Shares: shareReport{
			Found: r.Found, Submitted: r.Submitted, Accepted: r.Accepted, Rejected: r.Rejected,
			Unanswered: r.Unanswered, Skipped: r.Skipped, RejectedByReason: maps.Clone(r.RejectedByReason),
		},
		Bad:             map[string]badReport{},
		MalformedSent:   r.MalformedSent,
		LongLinesSent:   r.LongLinesSent,
		Jobs:            jobReport{Received: r.Jobs, Clean: r.CleanJobs},
		ReplyLatency:    r.replyLatency.quantiles(),
		JobLatency:      r.jobLat.quantiles(),
		CleanJobLatency: r.cleanJobLat.quantiles(),
		Bytes:           bytesReport{In: r.BytesIn, Out: r.BytesOut},
		Errors:          capErrors(r.Errors),
		badSkipped:      r.BadSkipped,
	}
	if rep.Shares.RejectedByReason == nil {
		rep.Shares.RejectedByReason = map[string]uint64{}
	}
	if r.runSeconds > 0 {
		rep.Shares.AcceptedPerSecond = float64(r.acceptedAfterRamp) / r.runSeconds
	}
	for k := stratumtest.ShareKind(1); k < stratumtest.NumShareKinds; k++ {
		rep.Bad[k.String()] = badReport{Sent: r.BadSent[k], Rejected: r.BadRejected[k], Accepted: r.BadAccepted[k]}
	}
	return rep
}

// capErrors keeps the maxErrorKeys most frequent messages and counts the rest
// (and any "other" already counted) under "other".
func capErrors(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if k == errorKeyOther {
			out[k] += n
		} else if n > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	for i, k := range keys {
		if i < maxErrorKeys {
			out[k] = m[k]
		} else {
			out[errorKeyOther] += m[k]
		}
	}
	return out
}

// writeJSON writes the report as one JSON object.
func writeJSON(w io.Writer, r report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText writes the report for people.
func writeText(w io.Writer, r report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "minersim: %d miners in %d process(es) on %s, ramp %s, ran %s after it\n",
		r.Miners, r.Procs, r.URL, secs(r.RampSeconds), secs(r.RunSeconds))
	c := r.Connections
	fmt.Fprintf(&b, "  connections: made %d, held %d at the end, disconnects %d, reconnects %d, dial failures %d",
		c.Made, c.Held, c.Disconnects, c.Reconnects, c.DialFailures)
	if c.AbruptCloses+c.ChurnCloses > 0 {
		fmt.Fprintf(&b, ", abrupt closes %d, churn closes %d", c.AbruptCloses, c.ChurnCloses)
	}
	b.WriteString("\n")
	s := r.Shares
	fmt.Fprintf(&b, "  shares: found %d, submitted %d, accepted %d (%.1f/s after the ramp), rejected %d, unanswered %d, skipped %d\n",
		s.Found, s.Submitted, s.Accepted, s.AcceptedPerSecond, s.Rejected, s.Unanswered, s.Skipped)
	if len(s.RejectedByReason) > 0 {
		fmt.Fprintf(&b, "  rejected by reason: %s\n", formatCounts(s.RejectedByReason))
	}
	var bugs []string
	for k := stratumtest.ShareKind(1); k < stratumtest.NumShareKinds; k++ {
		bad := r.Bad[k.String()]
		if bad.Sent == 0 && bad.Accepted == 0 {
			continue
		}
		fmt.Fprintf(&b, "  bad %s: sent %d, rejected %d, accepted %d\n", k, bad.Sent, bad.Rejected, bad.Accepted)
		if bad.Accepted > 0 {
			bugs = append(bugs, fmt.Sprintf("%d %s", bad.Accepted, k))
		}
	}
	if len(bugs) > 0 {
		fmt.Fprintf(&b, "  SERVER BUG: bad shares accepted: %s\n", strings.Join(bugs, ", "))
	}
	if r.badSkipped+r.MalformedSent+r.LongLinesSent > 0 {
		fmt.Fprintf(&b, "  malformed lines sent %d, long lines sent %d, bad shares sent honestly for want of a way to spoil them %d\n",
			r.MalformedSent, r.LongLinesSent, r.badSkipped)
	}
	fmt.Fprintf(&b, "  jobs: received %d, clean %d\n", r.Jobs.Received, r.Jobs.Clean)
	fmt.Fprintf(&b, "  reply latency:     %s\n", formatQuantiles(r.ReplyLatency))
	fmt.Fprintf(&b, "  job latency:       %s\n", formatQuantiles(r.JobLatency))
	fmt.Fprintf(&b, "  clean job latency: %s\n", formatQuantiles(r.CleanJobLatency))
	fmt.Fprintf(&b, "  bytes: in %d, out %d\n", r.Bytes.In, r.Bytes.Out)
	fmt.Fprintf(&b, "  errors: %s\n", formatCounts(r.Errors))
	_, err := io.WriteString(w, b.String())
	return err
}

// secs formats seconds as a duration rounded to the millisecond.
func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func formatQuantiles(q quantiles) string {
	if q.N == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms (n=%d)", q.P50, q.P90, q.P99, q.Max, q.N)
}

// formatCounts writes the non-zero counts as "name"=n, most frequent first
// ("none" if all are zero).
func formatCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%q=%d", k, m[k])
	}
	return strings.Join(keys, ", ")
}
