package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// scheduledFault is one entry of the -faults schedule.
type scheduledFault struct {
	at    time.Duration // from the pool's start
	entry string        // as written, for the log
	name  string
	f     fault
}

// schedule is the -faults flag: comma-separated AT:NAME[?QUERY] entries, AT a
// duration from start, NAME and QUERY those of POST /fault/NAME?QUERY, such as
// "10s:drop,20s:stall?for=5s,30s:reject?fraction=0.1". Set validates every entry
// and keeps them in time order (entries at one time in the order written).
type schedule struct {
	text    string
	entries []scheduledFault
}

func (s *schedule) String() string {
	if s == nil {
		return ""
	}
	return s.text
}

// Set replaces the schedule with the one in text; the error names the entry.
func (s *schedule) Set(text string) error {
	if strings.TrimSpace(text) == "" {
		s.text, s.entries = text, nil
		return nil
	}
	var entries []scheduledFault
	for i, entry := range strings.Split(text, ",") {
		entry = strings.TrimSpace(entry)
		sf, err := parseScheduled(entry)
		if err != nil {
			return fmt.Errorf("entry %d %q: %v", i+1, entry, err)
		}
		entries = append(entries, sf)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].at < entries[j].at })
	s.text, s.entries = text, entries
	return nil
}

// parseScheduled parses one AT:NAME[?QUERY] entry.
func parseScheduled(entry string) (scheduledFault, error) {
	at, action, ok := strings.Cut(entry, ":")
	if !ok {
		return scheduledFault{}, fmt.Errorf("want AT:FAULT[?QUERY] such as 10s:drop")
	}
	d, err := time.ParseDuration(at)
	if err != nil || d < 0 {
		return scheduledFault{}, fmt.Errorf("at %q: want a duration from start such as 0s, 500ms or 2m", at)
	}
	name, rawQuery, _ := strings.Cut(action, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return scheduledFault{}, fmt.Errorf("query: %v", err)
	}
	f, err := parseFault(name, q)
	if err != nil {
		return scheduledFault{}, err
	}
	return scheduledFault{at: d, entry: entry, name: name, f: f}, nil
}

// runSchedule applies each fault at its time after start until ctx is done,
// logging each on w with the time it fired.
func runSchedule(ctx context.Context, entries []scheduledFault, pool *stratumtest.Pool, start time.Time, w io.Writer) {
	for _, e := range entries {
		t := time.NewTimer(time.Until(start.Add(e.at)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		res, err := e.f(pool)
		elapsed := time.Since(start).Round(time.Millisecond)
		if err != nil {
			fmt.Fprintf(w, "poolsim: fault %s at %s: %v\n", e.entry, elapsed, err)
			continue
		}
		b, _ := json.Marshal(res) // a result holds strings, numbers and bools only
		fmt.Fprintf(w, "poolsim: fault %s at %s: %s\n", e.entry, elapsed, b)
	}
}
