package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress display.
const (
	ttyEvery = 500 * time.Millisecond // redraw interval of the live line
	barWidth = 30                     // cells of the ramp bar
)

// progress is a snapshot of a run's counters, of one process or summed. A worker
// sends it as a progress line ("type": "progress").
type progress struct {
	Type      string `json:"type"`
	Started   uint64 `json:"started"` // miners started along the ramp
	Held      uint64 `json:"held"`    // connected and subscribed (see runner.tally)
	Submitted uint64 `json:"submitted"`
	Accepted  uint64 `json:"accepted"`
	Rejected  uint64 `json:"rejected"`
}

func (p *progress) add(q progress) {
	p.Started += q.Started
	p.Held += q.Held
	p.Submitted += q.Submitted
	p.Accepted += q.Accepted
	p.Rejected += q.Rejected
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// showProgress writes progress on w until the returned stop is called: on a
// terminal a line redrawn in place (with a bar during the ramp), else a plain
// line every -report-every. Nothing with -progress=false.
func showProgress(w io.Writer, o *options, start time.Time, src func() progress) (stop func()) {
	if !o.progress {
		return func() {}
	}
	tty := isTerminal(w)
	every := o.reportEvery
	if tty {
		every = ttyEvery
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		var last progress
		lastAt := start
		for {
			select {
			case now := <-t.C:
				p := src()
				line := progressLine(o, start, now, p, last, now.Sub(lastAt))
				last, lastAt = p, now
				if tty {
					fmt.Fprintf(w, "\r\x1b[K%s", line)
				} else {
					fmt.Fprintln(w, line)
				}
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressLine describes p; last and since give the accept rate since the
// previous line.
func progressLine(o *options, start, now time.Time, p, last progress, since time.Duration) string {
	var b strings.Builder
	b.WriteString("minersim: ")
	rampEnd := start.Add(o.ramp)
	if p.Started < uint64(o.miners) && now.Before(rampEnd) {
		cells := int(p.Started * barWidth / uint64(o.miners))
		fmt.Fprintf(&b, "ramp [%s%s] %d/%d started", strings.Repeat("#", cells), strings.Repeat(".", barWidth-cells),
			p.Started, o.miners)
	} else {
		elapsed := max(now.Sub(rampEnd), 0).Round(time.Second)
		if o.duration > 0 {
			fmt.Fprintf(&b, "%s of %s", elapsed, o.duration)
		} else {
			fmt.Fprintf(&b, "%s", elapsed)
		}
	}
	rate := 0.0
	if since > 0 && p.Accepted >= last.Accepted {
		rate = float64(p.Accepted-last.Accepted) / since.Seconds()
	}
	fmt.Fprintf(&b, ", held %d, submitted %d, accepted %d (%.0f/s), rejected %d", p.Held, p.Submitted, p.Accepted, rate, p.Rejected)
	return b.String()
}
