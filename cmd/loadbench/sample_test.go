package main

import (
	"os"
	"testing"
	"time"
)

func TestReadProcSelf(t *testing.T) {
	a, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a.rssKiB == 0 {
		t.Errorf("rss = 0; want our own resident set")
	}
	// Burn some CPU so utime moves.
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	b, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if b.ticks <= a.ticks {
		t.Errorf("ticks %d then %d after 200 ms busy; want an increase", a.ticks, b.ticks)
	}
	if p := cpuPercent(a, b); p <= 0 || p > 100*float64(4096) {
		t.Errorf("cpuPercent = %v; want above 0", p)
	}
	if _, err := readProc(1 << 30); err == nil {
		t.Errorf("readProc of a pid that cannot exist: no error")
	}
}

func TestParseStat(t *testing.T) {
	f := func(line string, want uint64, wantErr bool) {
		t.Helper()
		got, pg, err := parseStat([]byte(line))
		if (err != nil) != wantErr || got != want || (err == nil && pg != 2) {
			t.Errorf("parseStat(%q) = %d, %d, %v; want %d, 2, error %v", line, got, pg, err, want, wantErr)
		}
	}
	tail := " S 1 2 3 4 5 6 7 8 9 10 300 45 0 0 20 0 1 0 100 2000 3000\n"
	f("1234 (poolsim)"+tail, 345, false)
	f("1234 (a) b (c))"+tail, 345, false) // a command name with spaces and parentheses
	f("1234 (x) S 1 2", 0, true)
	f("no parenthesis", 0, true)
	f("1 (x) S 1 2 3 4 5 6 7 8 9 10 u 45 0", 0, true)
	f("1 (x) S 1 g 3 4 5 6 7 8 9 10 300 45 0", 0, true)
}

func TestParseStatusRSS(t *testing.T) {
	f := func(status string, want uint64, wantErr bool) {
		t.Helper()
		got, err := parseStatusRSS([]byte(status))
		if (err != nil) != wantErr || got != want {
			t.Errorf("parseStatusRSS(%q) = %d, %v; want %d, error %v", status, got, err, want, wantErr)
		}
	}
	f("Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    4312 kB\nRssAnon:\t1 kB\n", 4312, false)
	f("Name:\tkthreadd\nState:\tS\n", 0, true)
	f("VmRSS:\t4312 MB\n", 0, true)
}

func TestCPUPercent(t *testing.T) {
	now := time.Now()
	a := procSample{at: now, ticks: 100}
	b := procSample{at: now.Add(2 * time.Second), ticks: 100 + uint64(clockTicks())}
	if got := cpuPercent(a, b); got < 49.9 || got > 50.1 {
		t.Errorf("one second of CPU in two: got %v%%; want 50%%", got)
	}
	if got := cpuPercent(b, a); got != 0 {
		t.Errorf("samples backwards: got %v; want 0", got)
	}
}

func TestSamplerStopsWhenProcessEnds(t *testing.T) {
	c, err := startChild("true", "true", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-c.done
	s := startSampler(c.pid)
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
		t.Fatal("sampler still running 2 s after its process ended")
	}
	s.stop()
	s.stop()
	if s.err == nil {
		t.Error("sampler of a reaped process: no error recorded")
	}
}

func TestReadGroupTicks(t *testing.T) {
	c, err := startChild("sh", "sh", []string{"-c", "sleep 5 & sleep 5 & wait"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	if _, err := readGroupTicks(c.pid); err != nil {
		t.Errorf("readGroupTicks(%d): %v", c.pid, err)
	}
	if _, err := readGroupTicks(1 << 30); err == nil {
		t.Error("a group that cannot exist: no error")
	}
}
