package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEndToEnd builds the three programs and runs a tiny steady scenario, both
// columns, through execute: what `loadbench -scenario steady -miners 50 -duration 2s
// -ramp 1s -bin DIR -json` prints.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds poolsim, hashrelay and minersim and runs them for about 10 s")
	}
	if m, _ := filepath.Glob("../minersim/*.go"); len(m) == 0 {
		t.Skip("cmd/minersim is not there yet")
	}
	dir := built(t, "poolsim", "hashrelay", "minersim")
	s, err := parseSettings([]string{"-scenario", "steady", "-miners", "50", "-duration", "2s", "-ramp", "1s", "-bin", dir, "-json",
		"-out", filepath.Join(t.TempDir(), "out.json")}, func(string) string { return "" }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	var out, log bytes.Buffer
	start := time.Now()
	err = execute(ctx, s, &out, &log)
	t.Logf("took %v; progress:\n%s", time.Since(start).Round(time.Millisecond), log.String())
	if err != nil {
		t.Fatalf("execute: %v\n%s", err, out.String())
	}
	written, err := os.ReadFile(s.out)
	if err != nil || !bytes.Equal(written, out.Bytes()) {
		t.Errorf("-out file differs from stdout (%v)", err)
	}
	rep := decodeReport(t, out.Bytes())
	if len(rep.Scenarios) != 1 || len(rep.Scenarios[0].Runs) != 2 {
		t.Fatalf("report: %s", out.String())
	}
	for _, run := range rep.Scenarios[0].Runs {
		if run.Error != "" {
			t.Errorf("%s run: %s", run.Column, run.Error)
		}
		if len(run.Commands) < 2 || !strings.Contains(run.Commands[len(run.Commands)-1], "minersim -url stratum+tcp://127.0.0.1:") {
			t.Errorf("%s run commands: %q", run.Column, run.Commands)
		}
	}
	values := map[string][2]*float64{}
	for _, r := range rep.Scenarios[0].Rows {
		values[r.Metric] = [2]*float64{r.Relay, r.Direct}
	}
	for _, metric := range []string{"shares accepted/s (minersim)", "reply latency p99", "server CPU", "server RSS at the end", "miner bytes in+out"} {
		v := values[metric]
		if v[0] == nil || v[1] == nil {
			t.Errorf("%s: hashrelay %v, direct %v; want both measured", metric, v[0], v[1])
		}
	}
	if v := values["shares accepted/s (minersim)"]; v[0] != nil && *v[0] <= 0 {
		t.Errorf("hashrelay accepted %v shares/s; want some", *v[0])
	}
	if v := values["upstream / miner bytes"]; v[0] == nil {
		t.Errorf("upstream / miner bytes not measured")
	}
	t.Logf("%s", out.String())
}

// decodedReport is the JSON report as a reader sees it (row values by metric name,
// the unit stripped).
type decodedReport struct {
	Scenarios []struct {
		Runs []runResult `json:"runs"`
		Rows []struct {
			Metric string   `json:"metric"`
			Relay  *float64 `json:"hashrelay"`
			Direct *float64 `json:"direct"`
		} `json:"rows"`
	} `json:"scenarios"`
}

func decodeReport(t *testing.T, b []byte) decodedReport {
	t.Helper()
	var r decodedReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return r
}
