package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

func TestProgressLine(t *testing.T) {
	o := &options{miners: 100, ramp: 10 * time.Second, duration: 30 * time.Second}
	start := time.Unix(1_700_000_000, 0)
	f := func(now time.Duration, p, last progress, since time.Duration, want string) {
		t.Helper()
		if got := progressLine(o, start, start.Add(now), p, last, since); got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	}
	f(5*time.Second, progress{Started: 50, Held: 48, Submitted: 12, Accepted: 10, Rejected: 1}, progress{Accepted: 5}, time.Second,
		"minersim: ramp [###############...............] 50/100 started, held 48, submitted 12, accepted 10 (5/s), rejected 1")
	f(22*time.Second, progress{Started: 100, Held: 100, Submitted: 900, Accepted: 890}, progress{Accepted: 790}, 5*time.Second,
		"minersim: 12s of 30s, held 100, submitted 900, accepted 890 (20/s), rejected 0")
	o.duration = 0
	f(70*time.Second, progress{Started: 100, Held: 99}, progress{}, 0,
		"minersim: 1m0s, held 99, submitted 0, accepted 0 (0/s), rejected 0")
}

// TestShowProgress: plain lines every -report-every when stderr is not a
// terminal, none with -progress=false.
func TestShowProgress(t *testing.T) {
	o := &options{miners: 1, progress: true, reportEvery: 20 * time.Millisecond, duration: time.Minute}
	var b stratumtest.SyncBuffer
	stop := showProgress(&b, o, time.Now(), func() progress { return progress{Started: 1, Held: 1} })
	time.Sleep(110 * time.Millisecond)
	stop()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "held 1,") || strings.Contains(b.String(), "\r") {
		t.Errorf("plain progress: got %q; want a few lines, no carriage returns", b.String())
	}
	o.progress = false
	b = stratumtest.SyncBuffer{}
	stop = showProgress(&b, o, time.Now(), func() progress { return progress{} })
	time.Sleep(50 * time.Millisecond)
	stop()
	if b.String() != "" {
		t.Errorf("-progress=false: got %q; want nothing", b.String())
	}
}
