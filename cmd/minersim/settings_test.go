package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseSettings(t *testing.T) {
	o, err := parseSettings([]string{"-url", "stratum+tcp://127.0.0.1:3333"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.miners != 1 || o.ramp != 0 || o.duration != defaultDuration || o.shareRate != defaultShareRate || o.hashRate != 0 ||
		!o.versionRolling || !o.extranonceSubscribe || o.worker != "minersim" || o.password != "x" ||
		o.misbehave != (stratumtest.Misbehaviour{}) || o.procs != 1 || o.bind != nil || !o.progress ||
		o.reportEvery != defaultReportEvery || o.json || o.slot != 0 || len(o.addrs) != 1 {
		t.Errorf("defaults: got %+v", o)
	}

	o, err = parseSettings([]string{"-url", "stratum+tcp://a:1,b:2, stratum+tcp://c:3/", "-miners", "12001", "-ramp", "10s",
		"-duration", "0", "-share-rate", "0", "-hashrate", "5000", "-version-rolling=false", "-extranonce-subscribe=false",
		"-worker", "rig", "-password", "pw", "-misbehave", "bad-nonce=0.01,churn=30s", "-bind", "127.0.0.2, 127.0.0.3",
		"-progress=false", "-report-every", "1s", "-json"},
		env(map[string]string{"MINERSIM_MINERS": "5", "MINERSIM_PROCS": "3"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.miners != 12001 || o.ramp != 10*time.Second || o.duration != 0 || o.shareRate != 0 || o.hashRate != 5000 ||
		o.versionRolling || o.extranonceSubscribe || o.worker != "rig" || o.password != "pw" ||
		o.misbehave != (stratumtest.Misbehaviour{BadNonce: 0.01, Churn: 30 * time.Second}) ||
		strings.Join(o.bind, " ") != "127.0.0.2 127.0.0.3" || o.progress || o.reportEvery != time.Second || !o.json ||
		o.procs != 3 || strings.Join(o.addrs, " ") != "stratum+tcp://a:1 b:2 stratum+tcp://c:3/" {
		t.Errorf("flags (command line over env): got %+v", o)
	}

	// The environment alone; -procs 0 gives one process per 5000 miners.
	o, err = parseSettings(nil, env(map[string]string{"MINERSIM_URL": "127.0.0.1:3333", "MINERSIM_MINERS": "10001",
		"MINERSIM_MISBEHAVE": "stale=0.5", "MINERSIM_JSON": "true", "MINERSIM_WORKER": "rig"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.url != "127.0.0.1:3333" || o.miners != 10001 || o.misbehave.StaleJob != 0.5 || !o.json || o.procs != 3 ||
		o.worker != "rig" || o.slot != 0 {
		t.Errorf("env: got %+v", o)
	}
	// -procs is capped at the miners.
	if o, _ := parseSettings([]string{"-url", "h:1", "-miners", "2", "-procs", "8"}, noEnv, io.Discard); o == nil || o.procs != 2 {
		t.Errorf("-procs 8 with 2 miners: got %+v; want procs 2", o)
	}

	// A worker: MINERSIM_WORKER_SLOT=i/P is its slot, and -worker comes from the
	// command line the parent built, never the environment.
	parent, err := parseSettings([]string{"-url", "h:1", "-miners", "4", "-procs", "2"}, env(map[string]string{"MINERSIM_WORKER": "rig"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	args := parent.workerArgs([]string{"-url", "h:1", "-miners", "4", "-procs", "2"})
	o, err = parseSettings(args, env(map[string]string{"MINERSIM_WORKER_SLOT": "2/2"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.slot != 2 || o.slots != 2 || o.worker != "rig" {
		t.Errorf("worker 2/2: got slot %d/%d worker %q; want 2/2 rig", o.slot, o.slots, o.worker)
	}
}

func TestParseSettingsErrors(t *testing.T) {
	f := func(args []string, envs map[string]string, want string) {
		t.Helper()
		_, err := parseSettings(args, env(envs), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v %v: got error %v; want one containing %q", args, envs, err, want)
		}
	}
	url := []string{"-url", "127.0.0.1:3333"}
	f(nil, nil, "url: required")
	f([]string{"-url", "stratum+ssl://h:1"}, nil, "scheme stratum+ssl not supported")
	f([]string{"-url", "h:1,nohost"}, nil, `url: "nohost"`)
	f([]string{"-url", "h:0"}, nil, "port")
	f(append(url, "-miners", "0"), nil, "miners: 0")
	f(append(url, "-ramp", "-1s"), nil, "ramp: -1s")
	f(append(url, "-duration", "-1s"), nil, "duration: -1s")
	f(append(url, "-share-rate", "-1"), nil, "share-rate: -1")
	f(append(url, "-hashrate", "NaN"), nil, "hashrate: NaN")
	f(append(url, "-worker", ""), nil, "worker: empty")
	f(append(url, "-procs", "-1"), nil, "procs: -1")
	f(append(url, "-report-every", "0s"), nil, "report-every: 0s")
	f(append(url, "-bind", "127.0.0.2,localhost"), nil, `bind: "localhost"`)
	f(append(url, "stray"), nil, `unexpected argument "stray"`)
	f(url, map[string]string{"MINERSIM_MINERS": "many"}, `MINERSIM_MINERS="many": want an integer`)
	f(url, map[string]string{"MINERSIM_MISBEHAVE": "stale=2"}, `MINERSIM_MISBEHAVE="stale=2": entry "stale=2": want a fraction`)
	f(append(url, "-misbehave", "bad-nonce=0.1,evil=0.5"), nil, `entry "evil=0.5": unknown key "evil"`)
	f(append(url, "-procs", "3"), map[string]string{"MINERSIM_WORKER_SLOT": "1/2"}, "the parent runs 1 processes")
}

func TestParseMisbehave(t *testing.T) {
	good := func(s string, want stratumtest.Misbehaviour) {
		t.Helper()
		got, err := parseMisbehave(s)
		if err != nil || got != want {
			t.Errorf("%q: got %+v, %v; want %+v", s, got, err, want)
		}
		// String writes it back in a form Set reads.
		var again stratumtest.Misbehaviour
		if err := (misbehaveFlag{&again}).Set((misbehaveFlag{&got}).String()); err != nil || again != want {
			t.Errorf("%q round trip: got %+v, %v; want %+v", s, again, err, want)
		}
	}
	good("", stratumtest.Misbehaviour{})
	good("bad-nonce=0.01,stale=0.02,duplicate=0.03,bad-ntime=0.04,malformed=0.001,long-line=0.002,disconnect=0.003,churn=30s",
		stratumtest.Misbehaviour{BadNonce: 0.01, StaleJob: 0.02, Duplicate: 0.03, BadNTime: 0.04, Malformed: 0.001,
			LongLine: 0.002, Disconnect: 0.003, Churn: 30 * time.Second})
	good(" stale = 1 , ,churn=1m", stratumtest.Misbehaviour{StaleJob: 1, Churn: time.Minute})

	bad := func(s, want string) {
		t.Helper()
		_, err := parseMisbehave(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got error %v; want one containing %q", s, err, want)
		}
	}
	bad("stale", `entry "stale": want key=value`)
	bad("stale=", `entry "stale=": want key=value`)
	bad("sloth=0.1", `entry "sloth=0.1": unknown key "sloth"; want one of bad-nonce, stale`)
	bad("stale=-0.1", `entry "stale=-0.1": want a fraction from 0 to 1`)
	bad("stale=1.5", `want a fraction`)
	bad("stale=x", `want a fraction`)
	bad("stale=NaN", `want a fraction`)
	bad("churn=0s", `entry "churn=0s": want a duration above 0`)
	bad("churn=5", `entry "churn=5": want a duration`)
	bad("stale=0.1,stale=0.2", `entry "stale=0.2": stale given twice`)
}

func TestMinerConfig(t *testing.T) {
	o, err := parseSettings([]string{"-url", "stratum+tcp://a:1,b:2", "-miners", "5", "-bind", "127.0.0.2,127.0.0.3",
		"-worker", "w", "-password", "p", "-misbehave", "stale=0.5"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for n, local := range map[int]string{1: "127.0.0.2", 2: "127.0.0.3", 3: "127.0.0.2", 5: "127.0.0.2"} {
		c := o.minerConfig(n)
		if c.Addr != "stratum+tcp://a:1" || len(c.Backups) != 1 || c.Backups[0] != "b:2" || c.LocalAddr != local ||
			c.Password != "p" || c.Misbehave.StaleJob != 0.5 || !c.VersionRolling || !c.ExtranonceSubscribe ||
			c.ShareRate != defaultShareRate || c.Idle || c.Worker != "w."+string(rune('0'+n)) {
			t.Errorf("miner %d: got %+v; want bind %s", n, c, local)
		}
	}
	o.shareRate, o.hashRate = 0, 0
	if c := o.minerConfig(1); !c.Idle || c.ShareRate != 0 || c.HashRate != 0 {
		t.Errorf("-share-rate 0 -hashrate 0: got %+v; want an idle miner", c)
	}
	o.shareRate, o.hashRate = 1, 100
	if c := o.minerConfig(1); c.Idle || c.ShareRate != 0 || c.HashRate != 100 {
		t.Errorf("-hashrate 100: got %+v; want paced by hashes", c)
	}
}
