package main

import (
	"bytes"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

func TestParseFaultSchedule(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	o, err := parseSettings([]string{"-faults", "10s:drop, 20s:stall?for=5s,30s:reject?fraction=0.1,50s:new-block," +
		"40s:forget-jobs,45s:reuse-job-ids?on=true,45s:reuse-job-ids?on=false,0s:difficulty?d=2"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range o.faults.entries {
		got = append(got, e.at.String()+" "+e.entry)
	}
	want := []string{"0s 0s:difficulty?d=2", "10s 10s:drop", "20s 20s:stall?for=5s", "30s 30s:reject?fraction=0.1",
		"40s 40s:forget-jobs", "45s 45s:reuse-job-ids?on=true", "45s 45s:reuse-job-ids?on=false", "50s 50s:new-block"}
	if !slices.Equal(got, want) {
		t.Errorf("schedule: got %q; want %q (time order, ties as written)", got, want)
	}

	o, err = parseSettings(nil, env(map[string]string{"POOLSIM_FAULTS": "1m:job"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.faults.entries) != 1 || o.faults.entries[0].at != time.Minute || o.faults.entries[0].name != "job" {
		t.Errorf("POOLSIM_FAULTS=1m:job: got %+v", o.faults.entries)
	}
	if o, err := parseSettings(nil, env(nil), io.Discard); err != nil || len(o.faults.entries) != 0 {
		t.Errorf("no -faults: got %+v, %v; want an empty schedule", o.faults.entries, err)
	}
}

func TestParseFaultScheduleErrors(t *testing.T) {
	f := func(args []string, envs map[string]string, want string) {
		t.Helper()
		_, err := parseSettings(args, func(k string) string { return envs[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v %v: got error %v; want one containing %q", args, envs, err, want)
		}
	}
	faults := func(s string) []string { return []string{"-faults", s} }
	f(faults("10s:drop,20s:explode"), nil, `entry 2 "20s:explode": unknown fault "explode": want one of [`)
	f(faults("soon:drop"), nil, `entry 1 "soon:drop": at "soon": want a duration`)
	f(faults("-1s:drop"), nil, `entry 1 "-1s:drop": at "-1s"`)
	f(faults("drop"), nil, `entry 1 "drop": want AT:FAULT[?QUERY]`)
	f(faults("1s:drop,,2s:drop"), nil, `entry 2 "": want AT:FAULT`)
	f(faults("1s:stall?for=soon"), nil, `entry 1 "1s:stall?for=soon": for: "soon"`)
	f(faults("1s:reject?fraction=2"), nil, `entry 1 "1s:reject?fraction=2": fraction: "2": want a number in 0..1`)
	f(faults("1s:reject"), nil, `entry 1 "1s:reject": want next=N or fraction=F`)
	f(faults("1s:reuse-job-ids?on=yes please"), nil, `on: "yes please": want true or false`)
	f(faults("1s:job?%zz"), nil, `entry 1 "1s:job?%zz": query:`)
	f(faults("1s:difficulty?d=0"), nil, `d: "0": want a number above 0`)
	f(faults("1s:set-version-mask"), nil, "mask: missing")
	f(nil, map[string]string{"POOLSIM_FAULTS": "5s:nap"}, `POOLSIM_FAULTS="5s:nap": entry 1 "5s:nap": unknown fault "nap"`)

	var stderr bytes.Buffer
	if code := run([]string{"-faults", "5s:nap"}, func(string) string { return "" }, io.Discard, &stderr); code != 2 {
		t.Errorf("run with a bad -faults: exit code %d; want 2", code)
	}
	if !strings.Contains(stderr.String(), `entry 1 "5s:nap"`) {
		t.Errorf("stderr: got %q; want the entry named", stderr.String())
	}
}

var firedDrop = regexp.MustCompile(`(?m)^poolsim: fault 1s:drop at (\S+): \{"sessions":1\}$`)

// TestServeFaultSchedule: a -faults schedule fires on time without the admin
// endpoint: the miner sees its session dropped and reconnects, the pool counts a
// dropped close, and stderr logs the fault with the time it fired.
func TestServeFaultSchedule(t *testing.T) {
	start := time.Now()
	addr, stderr, finish := startServe(t, "-listen", "127.0.0.1:0", "-admin", "off", "-difficulty", "1e-7",
		"-report", "0", "-json", "-faults", "1s:drop")
	ms, stop := stratumtest.RunMiners(t, stratumtest.MinerConfig{Addr: addr, Worker: "w", HashRate: 20_000})
	m := ms[0]
	eventually(t, "the miner to connect", func() bool { return m.Stats().Connects >= 1 })
	if d := time.Since(start); d >= time.Second {
		t.Fatalf("the miner took %v to connect; want well under the 1s of the scheduled drop", d)
	}
	eventually(t, "the miner to redial after the scheduled drop", func() bool { return m.Stats().Connects >= 2 })
	if d := time.Since(start); d < time.Second {
		t.Errorf("the drop fired after %v; want 1s from start", d)
	}
	eventually(t, "the fault's log line", func() bool { return firedDrop.MatchString(stderr.String()) })
	if at, err := time.ParseDuration(firedDrop.FindStringSubmatch(stderr.String())[1]); err != nil || at < time.Second {
		t.Errorf("logged fire time: got %v, %v; want at least 1s", at, err)
	}
	stop()
	r := finish()
	if r.Closes["dropped"] != 1 || r.Connections < 2 {
		t.Errorf("report: got closes %v, connections %d; want 1 dropped, at least 2 connections", r.Closes, r.Connections)
	}
}
