package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseSettings(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	f := func(args string, wantErr string) *settings {
		t.Helper()
		s, err := parseSettings(strings.Fields(args), getenv, io.Discard)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%q: %v", args, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%q: error %v; want one containing %q", args, err, wantErr)
		}
		return s
	}
	f("", "scenario: missing")
	f("-scenario direct", `scenario: "direct"`)
	f("-scenario steady -miners -1", "miners: -1")
	f("-scenario hold -miners 30000", "miners: 30000")
	f("-scenario steady -duration -1s", "duration: -1s")
	f("-scenario steady -ramp -1s", "ramp: -1s")
	f("-scenario newblock -duration 1s", "newblock: duration: 1s")
	f("-scenario failover -duration 2s", "failover: duration: 2s")
	f("-scenario all -duration 1s", "duration: 1s")
	f("-scenario steady extra", `unexpected argument "extra"`)

	s := f("-scenario steady", "")
	if p := s.plan(findScenario("steady")); p != (plan{miners: 10000, ramp: 10 * time.Second, duration: 30 * time.Second}) {
		t.Errorf("steady defaults: %+v", p)
	}
	if !s.direct {
		t.Error("direct defaults to false; want true")
	}
	s = f("-scenario hold -miners 50 -duration 2s -ramp 0", "")
	if p := s.plan(findScenario("hold")); p != (plan{miners: 50, ramp: 0, duration: 2 * time.Second}) {
		t.Errorf("hold with flags: %+v; want -ramp 0 kept", p)
	}
	s = f("-scenario all -direct=false", "")
	if len(s.selected()) != len(scenarios) || s.direct {
		t.Errorf("all: %d scenarios, direct %v", len(s.selected()), s.direct)
	}

	env["LOADBENCH_RAMP"] = "3s"
	env["LOADBENCH_MINERS"] = "7"
	s = f("-scenario flood -miners 9", "")
	if p := s.plan(findScenario("flood")); p.ramp != 3*time.Second || p.miners != 9 {
		t.Errorf("from the environment: %+v; want ramp 3s, and -miners over LOADBENCH_MINERS", p)
	}
	env["LOADBENCH_DURATION"] = "soon"
	f("-scenario flood", "LOADBENCH_DURATION")
}

func TestNewBlocksFit(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{22 * time.Second, 10}, {60 * time.Second, 10}, {4 * time.Second, 1}, {10 * time.Second, 4}, {2 * time.Second, 0}} {
		if got := newBlocks(c.d); got != c.want {
			t.Errorf("newBlocks(%v) = %d; want %d", c.d, got, c.want)
		}
		// The last block leaves newBlockEvery before the window closes.
		settle, margin := min(settleMax, c.d/5), min(marginMax, c.d/10)
		if n := newBlocks(c.d); n > 0 && settle+time.Duration(n)*newBlockEvery > c.d-margin {
			t.Errorf("newBlocks(%v) = %d: past the window", c.d, n)
		}
	}
}

func TestNextBinds(t *testing.T) {
	b := &bench{}
	first := b.nextBinds()
	if first != "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9" {
		t.Errorf("first = %s", first)
	}
	if second := b.nextBinds(); !strings.HasPrefix(second, "127.0.0.10,") {
		t.Errorf("second = %s", second)
	}
	for range 100 {
		for _, a := range strings.Split(b.nextBinds(), ",") {
			if last := a[strings.LastIndexByte(a, '.')+1:]; len(last) == 3 && last > "254" {
				t.Fatalf("address %s out of 127.0.0.0/24", a)
			}
		}
	}
}
