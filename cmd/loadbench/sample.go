package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sampleEvery is how often a sampler reads a server's /proc files.
const sampleEvery = 250 * time.Millisecond

// procSample is one reading of a process's /proc files.
type procSample struct {
	at     time.Time
	ticks  uint64 // utime+stime, in clock ticks (see clockTicks)
	rssKiB uint64 // VmRSS
}

// readProc reads pid's CPU time and resident set size now.
func readProc(pid int) (procSample, error) {
	at := time.Now()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, err
	}
	ticks, _, err := parseStat(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/stat: %v", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, err
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/status: %v", pid, err)
	}
	return procSample{at: at, ticks: ticks, rssKiB: rss}, nil
}

// parseStat returns utime+stime and the process group from the contents of
// /proc/PID/stat. The command name (field 2) is in parentheses and may hold spaces
// and parentheses itself, so the fields are counted from the last ')': after it
// come state (field 3) and so on, pgrp being field 5, utime 14 and stime 15.
func parseStat(b []byte) (ticks uint64, pgrp int, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	const pg, utime, stime = 5 - 3, 14 - 3, 15 - 3 // indexes in f, which starts at field 3
	if len(f) <= stime {
		return 0, 0, fmt.Errorf("%d fields after the command name; want at least %d", len(f), stime+1)
	}
	pgrp, err = strconv.Atoi(f[pg])
	if err != nil {
		return 0, 0, fmt.Errorf("pgrp: %v", err)
	}
	u, err := strconv.ParseUint(f[utime], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("utime: %v", err)
	}
	st, err := strconv.ParseUint(f[stime], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stime: %v", err)
	}
	return u + st, pgrp, nil
}

// readGroupTicks sums utime+stime over every process now in process group pgid
// (minersim and its worker processes), scanning /proc.
func readGroupTicks(pgid int) (procSample, error) {
	at := time.Now()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return procSample{}, err
	}
	var total uint64
	found := false
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // gone since ReadDir
		}
		ticks, pg, err := parseStat(b)
		if err == nil && pg == pgid {
			total += ticks
			found = true
		}
	}
	if !found {
		return procSample{}, fmt.Errorf("no process in group %d", pgid)
	}
	return procSample{at: at, ticks: total}, nil
}

// parseStatusRSS returns VmRSS in KiB from the contents of /proc/PID/status.
func parseStatusRSS(b []byte) (uint64, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS: %q: want a number of kB", strings.TrimSpace(rest))
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, errors.New("no VmRSS line (a kernel thread, or a zombie)")
}

// clockTicks returns the kernel's clock ticks per second (USER_HZ), in which
// /proc/PID/stat counts CPU time: getconf CLK_TCK, or 100 (Linux's value on every
// common architecture) when getconf is missing.
var clockTicks = sync.OnceValue(func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
})

// cpuPercent is the CPU a process used between two samples, as a percentage of one
// core: 200 means two cores busy all the time.
func cpuPercent(a, b procSample) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 || b.ticks < a.ticks {
		return 0
	}
	return float64(b.ticks-a.ticks) / clockTicks() / wall * 100
}

// sampler reads one process's /proc files every sampleEvery, from start until stop
// or until the process is gone, keeping every sample.
type sampler struct {
	pid  int
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples []procSample
	err     error // why sampling ended early, if it did
}

// startSampler starts sampling pid.
func startSampler(pid int) *sampler {
	s := &sampler{pid: pid, quit: make(chan struct{}), done: make(chan struct{})}
	go s.sampleLoop()
	return s
}

func (s *sampler) sampleLoop() {
	defer close(s.done)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		p, err := readProc(s.pid)
		s.mu.Lock()
		if err != nil {
			s.err = err
		} else {
			s.samples = append(s.samples, p)
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
	}
}

// stop ends sampling and waits for the sampling goroutine. It may be called twice.
func (s *sampler) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

// mark reads the process now (for the edges of a measured window), keeping the
// sample with the others.
func (s *sampler) mark() (procSample, error) {
	p, err := readProc(s.pid)
	if err != nil {
		return procSample{}, err
	}
	s.mu.Lock()
	s.samples = append(s.samples, p)
	s.mu.Unlock()
	return p, nil
}

// peakRSS is the largest resident set size sampled in [from, to], in KiB.
func (s *sampler) peakRSS(from, to time.Time) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var peak uint64
	for _, p := range s.samples {
		if !p.at.Before(from) && !p.at.After(to) && p.rssKiB > peak {
			peak = p.rssKiB
		}
	}
	return peak
}
