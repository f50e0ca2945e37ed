package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// startServe runs serve with args, which must include -admin off and -json, until
// finish is called; finish ends it, waits for it to return nil and decodes its
// JSON report. addr is the pool's address from the first line on stderr.
func startServe(t *testing.T, args ...string) (addr string, stderr *stratumtest.SyncBuffer, finish func() report) {
	t.Helper()
	o, err := parseSettings(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stdout, stderr := new(stratumtest.SyncBuffer), new(stratumtest.SyncBuffer)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, o, stdout, stderr) }()
	eventually(t, "the first line", func() bool {
		line, _, ok := strings.Cut(stderr.String(), "\n")
		if ok {
			m := firstLine.FindStringSubmatch(strings.Replace(line, "admin off", "admin http://off", 1))
			if m == nil || m[2] != "off" {
				t.Fatalf("first line: got %q; want the pool address and admin off", line)
			}
			addr = m[1]
		}
		return ok
	})
	finish = func() report {
		t.Helper()
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("serve: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("serve did not return")
		}
		var r report
		if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
			t.Fatalf("JSON report: %v", err)
		}
		return r
	}
	return addr, stderr, finish
}

// TestServeNewBlockInterval: -new-block-interval sends clean jobs on its ticker,
// -admin off says so on the first line, and serve returns nil with the JSON
// report once its context ends.
func TestServeNewBlockInterval(t *testing.T) {
	addr, stderr, finish := startServe(t, "-listen", "127.0.0.1:0", "-admin", "off", "-difficulty", "1e-7",
		"-new-block-interval", "50ms", "-report", "0", "-json")
	ms, stop := stratumtest.RunMiners(t, stratumtest.MinerConfig{Addr: addr, Worker: "w", HashRate: 20_000})
	m := ms[0]
	eventually(t, "3 clean jobs from the ticker", func() bool { return m.Stats().CleanJobs >= 4 }) // 1 at subscribe
	stop()
	r := finish()
	if r.Jobs < 4 || r.Connections != 1 {
		t.Errorf("report: got jobs %d, connections %d; want at least 4 jobs, 1 connection", r.Jobs, r.Connections)
	}
	if strings.Contains(stderr.String(), "poolsim: up ") {
		t.Errorf("status lines with -report 0:\n%s", stderr.String())
	}
}
