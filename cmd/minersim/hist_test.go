package main

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// near reports whether got is within hdrhistogram's 3 significant figures of want.
func near(got, want float64) bool { return math.Abs(got-want) <= want*1e-3+1e-3 }

func TestHistQuantiles(t *testing.T) {
	h := newHist()
	if q := h.quantiles(); q != (quantiles{}) {
		t.Errorf("empty: got %+v; want zeros", q)
	}
	for ms := 1; ms <= 1000; ms++ {
		h.record(time.Duration(ms) * time.Millisecond)
	}
	q := h.quantiles()
	if q.N != 1000 || !near(q.P50, 500) || !near(q.P90, 900) || !near(q.P99, 990) || !near(q.Max, 1000) {
		t.Errorf("1..1000 ms: got %+v; want n=1000 p50≈500 p90≈900 p99≈990 max≈1000", q)
	}

	// Microsecond resolution, and clamping at both ends.
	h = newHist()
	h.record(1500 * time.Microsecond)
	if q := h.quantiles(); q.P50 != 1.5 || q.Max != 1.5 {
		t.Errorf("1.5 ms: got %+v; want p50 = max = 1.5", q)
	}
	h = newHist()
	h.record(-time.Second)
	h.record(0)
	if q := h.quantiles(); q.N != 2 || q.Max != 0.001 {
		t.Errorf("negative and zero: got %+v; want n=2, clamped to 1 µs", q)
	}
	h = newHist()
	h.record(time.Hour)
	if q := h.quantiles(); q.N != 1 || !near(q.Max, 60000) {
		t.Errorf("an hour: got %+v; want n=1, clamped to 60 s", q)
	}
}

// TestHistMerge: two halves exported (through JSON, as workers send them) and
// merged give the quantiles of the whole.
func TestHistMerge(t *testing.T) {
	whole, a, b := newHist(), newHist(), newHist()
	for us := 100; us <= 200_000; us += 100 {
		d := time.Duration(us) * time.Microsecond
		whole.record(d)
		if us%300 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	merged := newHist()
	for _, h := range []*hist{a, b} {
		data, err := json.Marshal(h.export())
		if err != nil {
			t.Fatal(err)
		}
		var e histExport
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatal(err)
		}
		if err := merged.merge(e); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := merged.quantiles(), whole.quantiles(); got != want || got.N != 2000 {
		t.Errorf("merged: got %+v; want %+v (n=2000)", got, want)
	}
	if !near(merged.quantiles().P50, 100) || !near(merged.quantiles().P99, 198) {
		t.Errorf("merged: got %+v; want p50≈100 ms p99≈198 ms", merged.quantiles())
	}

	bad := a.export()
	bad.SigFigs = 2
	if err := merged.merge(bad); err == nil {
		t.Error("merge of another geometry: got nil; want an error")
	}
	bad = a.export()
	bad.Counts = append(bad.Counts, [2]int64{int64(bad.Len), 1})
	if err := merged.merge(bad); err == nil {
		t.Error("merge of a bucket out of range: got nil; want an error")
	}
	if merged.quantiles().N != 2000 {
		t.Errorf("failed merges changed the histogram: n=%d", merged.quantiles().N)
	}
}
