package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// contractShape is every field of the JSON report in specs/minersim.md: an
// object's keys map to their own shape, "number", "string" or "counts" (an
// object of numbers with any keys).
var contractShape = map[string]any{
	"url": "string", "miners": "number", "procs": "number", "ramp_seconds": "number", "run_seconds": "number",
	"connections": map[string]any{
		"made": "number", "held": "number", "disconnects": "number", "reconnects": "number",
		"dial_failures": "number", "abrupt_closes": "number", "churn_closes": "number",
	},
	"shares": map[string]any{
		"found": "number", "submitted": "number", "accepted": "number", "rejected": "number",
		"unanswered": "number", "skipped": "number", "rejected_by_reason": "counts", "accepted_per_second": "number",
	},
	"bad": map[string]any{
		"bad_nonce": badShape, "stale": badShape, "duplicate": badShape, "bad_ntime": badShape,
	},
	"malformed_sent":       "number",
	"long_lines_sent":      "number",
	"jobs":                 map[string]any{"received": "number", "clean": "number"},
	"reply_latency_ms":     quantileShape,
	"job_latency_ms":       quantileShape,
	"clean_job_latency_ms": quantileShape,
	"bytes":                map[string]any{"in": "number", "out": "number"},
	"errors":               "counts",
}

var (
	badShape      = map[string]any{"sent": "number", "rejected": "number", "accepted": "number"}
	quantileShape = map[string]any{"n": "number", "p50": "number", "p90": "number", "p99": "number", "max": "number"}
)

// checkShape fails unless data is a JSON object with exactly the contract's
// fields, of the contract's types.
func checkShape(t *testing.T, data []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	for _, p := range shapeProblems("", contractShape, v) {
		t.Errorf("JSON report: %s", p)
	}
}

func shapeProblems(path string, want, got any) []string {
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T; want an object", path, got)}
		}
		for k, sub := range w {
			if _, ok := g[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			out = append(out, shapeProblems(path+"."+k, sub, g[k])...)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: not in the contract", path, k))
			}
		}
	case string:
		ok := false
		switch w {
		case "number":
			_, ok = got.(float64)
		case "string":
			_, ok = got.(string)
		case "counts":
			var m map[string]any
			if m, ok = got.(map[string]any); ok {
				for k, n := range m {
					if _, isNum := n.(float64); !isNum {
						out = append(out, fmt.Sprintf("%s[%q]: got %T; want a number", path, k, n))
					}
				}
			}
		}
		if !ok {
			out = append(out, fmt.Sprintf("%s: got %T (%v); want a %s", path, got, got, w))
		}
	}
	slices.Sort(out)
	return out
}

// TestReportShape: the JSON of a report with nothing in it (no shares, no
// errors) still has every field, and one with everything has no more.
func TestReportShape(t *testing.T) {
	o := &options{url: "stratum+tcp://127.0.0.1:3333", miners: 3, procs: 1, ramp: 2 * time.Second}
	var b strings.Builder
	if err := writeJSON(&b, newReport(o, newResult())); err != nil {
		t.Fatal(err)
	}
	checkShape(t, []byte(b.String()))

	res := fullResult()
	b.Reset()
	rep := newReport(o, res)
	if err := writeJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	checkShape(t, []byte(b.String()))
	var back report
	if err := json.Unmarshal([]byte(b.String()), &back); err != nil {
		t.Fatal(err)
	}
	if back.RampSeconds != 2 || back.RunSeconds != 10 || back.Shares.AcceptedPerSecond != 9 || back.Connections.Held != 3 ||
		back.Bad["stale"] != (badReport{Sent: 5, Rejected: 4, Accepted: 1}) || back.ReplyLatency.N != 1 ||
		back.ReplyLatency.P50 != 2 || back.Errors["EOF"] != 2 || back.Shares.RejectedByReason["Stale job"] != 4 {
		t.Errorf("report: got %+v", back)
	}
}

// fullResult is a result with a bit of everything.
func fullResult() *result {
	res := newResult()
	res.Made, res.Held, res.Accepted, res.Rejected = 3, 3, 100, 4
	res.runSeconds, res.acceptedAfterRamp = 10, 90
	res.RejectedByReason["Stale job"] = 4
	res.BadSent[stratumtest.ShareStale], res.BadRejected[stratumtest.ShareStale], res.BadAccepted[stratumtest.ShareStale] = 5, 4, 1
	res.Errors["EOF"] = 2
	res.replyLatency.record(2 * time.Millisecond) // exact: below 2048 µs the buckets are 1 µs wide
	return res
}

func TestWriteText(t *testing.T) {
	o := &options{url: "stratum+tcp://127.0.0.1:3333", miners: 3, procs: 1}
	var b strings.Builder
	if err := writeText(&b, newReport(o, fullResult())); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"3 miners in 1 process(es) on stratum+tcp://127.0.0.1:3333",
		"held 3 at the end",
		"accepted 100 (9.0/s after the ramp), rejected 4",
		`rejected by reason: "Stale job"=4`,
		"bad stale: sent 5, rejected 4, accepted 1",
		"SERVER BUG: bad shares accepted: 1 stale",
		"reply latency:     p50 2.000 ms",
		"job latency:       none",
		`errors: "EOF"=2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text report: got\n%s\nwant it to contain %q", text, want)
		}
	}
}

func TestCapErrors(t *testing.T) {
	m := map[string]uint64{errorKeyOther: 7, "zero": 0}
	for i := range maxErrorKeys + 3 {
		m[fmt.Sprintf("e%02d", i)] = uint64(100 - i)
	}
	got := capErrors(m)
	// The 32 most frequent kept; the three least folded into other with its 7.
	if len(got) != maxErrorKeys+1 || got["e00"] != 100 || got["e31"] != 69 || got[errorKeyOther] != 7+68+67+66 {
		t.Errorf("capErrors: got %v", got)
	}
	if _, ok := got["zero"]; ok {
		t.Error("capErrors kept a zero count")
	}
}
