package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// report is the pool's stats as GET /stats and -json show them: counts keyed by
// stratum.Verdict and stratumtest.CloseReason names.
type report struct {
	UptimeSeconds     float64                 `json:"uptime_seconds"`
	Connections       uint64                  `json:"connections"`
	Sessions          int                     `json:"sessions"`
	Subscribes        uint64                  `json:"subscribes"`
	Resumes           uint64                  `json:"resumes"`
	Authorizes        uint64                  `json:"authorizes"`
	AuthorizeFailures uint64                  `json:"authorize_failures"`
	Jobs              uint64                  `json:"jobs"`
	SubmitsTotal      uint64                  `json:"submits_total"`
	Accepted          uint64                  `json:"accepted"`
	Rejected          uint64                  `json:"rejected"` // injected rejects included
	Verdicts          map[string]uint64       `json:"verdicts"`
	InjectedRejects   uint64                  `json:"injected_rejects"`
	Refused           uint64                  `json:"refused"`
	BlockCandidates   uint64                  `json:"block_candidates"`
	Workers           map[string]workerReport `json:"workers"`
	Closes            map[string]uint64       `json:"closes"`
	UnknownMethods    uint64                  `json:"unknown_methods"`
	ProtocolErrors    uint64                  `json:"protocol_errors"`
	BytesIn           uint64                  `json:"bytes_in"`  // read from every session
	BytesOut          uint64                  `json:"bytes_out"` // written to every session
}

// workerReport is one worker's counts.
type workerReport struct {
	Accepted        uint64            `json:"accepted"`
	Verdicts        map[string]uint64 `json:"verdicts"`
	InjectedRejects uint64            `json:"injected_rejects"`
}

// newReport converts a stats snapshot. Verdicts lists every verdict but none
// (never counted), zeros included, so scripts can index it without checks.
func newReport(st stratumtest.PoolStats, uptime time.Duration) report {
	r := report{
		UptimeSeconds:     uptime.Seconds(),
		Connections:       st.Connections,
		Sessions:          st.Sessions,
		Subscribes:        st.Subscribes,
		Resumes:           st.Resumes,
		Authorizes:        st.Authorizes,
		AuthorizeFailures: st.AuthorizeFailures,
		Jobs:              st.Jobs,
		SubmitsTotal:      st.SubmitsTotal,
		Accepted:          st.Accepted(),
		Rejected:          st.Rejected(),
		Verdicts:          verdictMap(st.Verdicts),
		InjectedRejects:   st.InjectedRejects,
		Refused:           st.Refused,
		BlockCandidates:   st.BlockCandidates,
		Workers:           make(map[string]workerReport, len(st.Workers)),
		Closes:            make(map[string]uint64),
		UnknownMethods:    st.UnknownMethods,
		ProtocolErrors:    st.ProtocolErrors,
		BytesIn:           st.BytesIn,
		BytesOut:          st.BytesOut,
	}
	for name, w := range st.Workers {
		r.Workers[name] = workerReport{Accepted: w.Accepted(), Verdicts: verdictMap(w.Verdicts), InjectedRejects: w.InjectedRejects}
	}
	for reason, n := range st.Closes {
		if n > 0 {
			r.Closes[stratumtest.CloseReason(reason).String()] = n
		}
	}
	return r
}

func verdictMap(counts [stratum.VerdictCount]uint64) map[string]uint64 {
	m := make(map[string]uint64, stratum.VerdictCount-1)
	for v, n := range counts {
		if stratum.Verdict(v) != stratum.VerdictNone {
			m[stratum.Verdict(v).String()] = n
		}
	}
	return m
}

// statusLine is the periodic one-line status.
func statusLine(r report) string {
	return fmt.Sprintf("poolsim: up %s sessions=%d connections=%d jobs=%d submits=%d accepted=%d rejected=%d injected=%d blocks=%d",
		time.Duration(r.UptimeSeconds*float64(time.Second)).Round(100*time.Millisecond), r.Sessions, r.Connections,
		r.Jobs, r.SubmitsTotal, r.Accepted, r.Rejected, r.InjectedRejects, r.BlockCandidates)
}

// writeText writes the final report for people.
func writeText(w io.Writer, r report) {
	var b strings.Builder
	fmt.Fprintln(&b, "poolsim final report:")
	fmt.Fprintf(&b, "  uptime %s, connections %d, sessions open %d, subscribes %d (resumed %d), jobs %d\n",
		time.Duration(r.UptimeSeconds*float64(time.Second)).Truncate(time.Millisecond), r.Connections, r.Sessions, r.Subscribes, r.Resumes, r.Jobs)
	fmt.Fprintf(&b, "  submits %d: accepted %d, rejected %d (injected %d), refused %d, block candidates %d\n",
		r.SubmitsTotal, r.Accepted, r.Rejected, r.InjectedRejects, r.Refused, r.BlockCandidates)
	fmt.Fprintf(&b, "  verdicts: %s\n", formatCounts(r.Verdicts))
	fmt.Fprintf(&b, "  bytes in %d, out %d\n", r.BytesIn, r.BytesOut)
	names := make([]string, 0, len(r.Workers))
	for name := range r.Workers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		wr := r.Workers[name]
		fmt.Fprintf(&b, "  worker %q: %s injected=%d\n", name, formatCounts(wr.Verdicts), wr.InjectedRejects)
	}
	if len(r.Closes) > 0 {
		fmt.Fprintf(&b, "  closes: %s\n", formatCounts(r.Closes))
	}
	io.WriteString(w, b.String())
}

// formatCounts writes the non-zero counts as name=n, sorted by name ("none" if all zero).
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
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(keys, " ")
}

// writeJSON writes the final report as one JSON object.
func writeJSON(w io.Writer, r report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
