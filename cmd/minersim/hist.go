package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The histograms' range and precision (the contract's): 1 µs to 60 s, three
// significant figures. Values are recorded in microseconds; larger ones are
// clamped to the top so that nothing is lost from the count.
const (
	histLowest  = 1
	histHighest = int64(60 * time.Second / time.Microsecond)
	histSigFigs = 3
)

// hist is a latency histogram safe for concurrent use: the miners' OnReply and
// OnJob callbacks record into it from their connections' goroutines.
type hist struct {
	mu sync.Mutex // guards h
	h  *hdrhistogram.Histogram
}

func newHist() *hist {
	return &hist{h: hdrhistogram.New(histLowest, histHighest, histSigFigs)}
}

// record adds one latency, in microseconds, clamped to 1 µs .. 60 s.
func (h *hist) record(d time.Duration) {
	us := min(max(d.Microseconds(), histLowest), histHighest)
	h.mu.Lock()
	h.h.RecordValue(us) //nolint:errcheck // in range by the clamp above
	h.mu.Unlock()
}

// histExport is a histogram in the mergeable form worker processes send: the
// geometry and the non-zero buckets as [index, count] pairs (a full counts array
// is some 30,000 mostly zero numbers).
type histExport struct {
	Lowest  int64      `json:"lowest"`
	Highest int64      `json:"highest"`
	SigFigs int64      `json:"sig_figs"`
	Len     int        `json:"len"` // length of the full counts array
	Counts  [][2]int64 `json:"counts"`
}

// export returns h's counts in the sparse form.
func (h *hist) export() histExport {
	h.mu.Lock()
	s := h.h.Export()
	h.mu.Unlock()
	e := histExport{Lowest: s.LowestTrackableValue, Highest: s.HighestTrackableValue, SigFigs: s.SignificantFigures,
		Len: len(s.Counts), Counts: [][2]int64{}}
	for i, n := range s.Counts {
		if n != 0 {
			e.Counts = append(e.Counts, [2]int64{int64(i), n})
		}
	}
	return e
}

// merge adds the counts of an exported histogram to h. It fails when the
// geometry differs from h's or a bucket index is out of range.
func (h *hist) merge(e histExport) error {
	if e.Lowest != histLowest || e.Highest != histHighest || e.SigFigs != histSigFigs || e.Len < 0 || e.Len > 1<<20 {
		return fmt.Errorf("histogram geometry %d..%d/%d (%d buckets): want %d..%d/%d",
			e.Lowest, e.Highest, e.SigFigs, e.Len, histLowest, histHighest, histSigFigs)
	}
	s := &hdrhistogram.Snapshot{LowestTrackableValue: e.Lowest, HighestTrackableValue: e.Highest,
		SignificantFigures: e.SigFigs, Counts: make([]int64, e.Len)}
	for _, c := range e.Counts {
		if c[0] < 0 || c[0] >= int64(e.Len) || c[1] < 0 {
			return fmt.Errorf("histogram bucket %d count %d out of range", c[0], c[1])
		}
		s.Counts[c[0]] += c[1]
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("histogram: %w", err)
	}
	from := hdrhistogram.Import(s)
	h.mu.Lock()
	defer h.mu.Unlock()
	if dropped := h.h.Merge(from); dropped != 0 {
		return fmt.Errorf("histogram merge dropped %d values", dropped)
	}
	return nil
}

// quantiles is a histogram's summary in the report, in milliseconds.
type quantiles struct {
	N   int64   `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// quantiles summarizes h; all zero when it is empty.
func (h *hist) quantiles() quantiles {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.h.TotalCount()
	if n == 0 {
		return quantiles{}
	}
	return quantiles{
		N:   n,
		P50: usToMs(h.h.ValueAtQuantile(50)),
		P90: usToMs(h.h.ValueAtQuantile(90)),
		P99: usToMs(h.h.ValueAtQuantile(99)),
		Max: usToMs(h.h.Max()),
	}
}

func usToMs(us int64) float64 { return float64(us) / 1000 }
