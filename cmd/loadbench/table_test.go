package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFormatValue(t *testing.T) {
	f := func(v float64, decimals int, want string) {
		t.Helper()
		if got := formatValue(&v, decimals); got != want {
			t.Errorf("formatValue(%v, %d) = %s; want %s", v, decimals, got, want)
		}
	}
	f(0, 0, "0")
	f(999, 0, "999")
	f(1000, 0, "1,000")
	f(20000.4, 0, "20,000")
	f(1234567.891, 2, "1,234,567.89")
	f(-1234.5, 1, "-1,234.5")
	f(0.0004, 3, "0.000")
	if got := formatValue(nil, 2); got != "n/a" {
		t.Errorf("formatValue(nil) = %s; want n/a", got)
	}
}

// testReport is a two-scenario report with a failed direct run and a row neither
// column measured.
func testReport() *report {
	specs := []rowSpec{
		{key: "p99", metric: "reply latency p99", unit: "ms", decimals: 3, target: "≤ 1", met: func(v float64) bool { return v <= 1 }},
		{key: "cpu", metric: "server CPU", unit: "% of a core", decimals: 1},
		{key: "ratio", metric: "upstream / miner bytes", unit: "%", decimals: 2, target: "< 1", met: func(v float64) bool { return v < 1 }},
		{key: "never", metric: "never measured", decimals: 0},
	}
	return &report{
		Machine: machine{CPU: "Test CPU", Cores: 2, Kernel: "Linux 6.1", GoVersion: "go1.26.0"},
		Build:   "(cd /m && go build -o /tmp/x/ ./cmd/poolsim)",
		Started: time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC),
		Scenarios: []*result{{
			Name: "steady", Title: "Shares at a steady rate.", Miners: 50, RampSeconds: 1, DurationSeconds: 2,
			Runs: []runResult{
				{Column: colRelay, Commands: []string{"poolsim -a", "hashrelay -b", "minersim -c"}, Notes: []string{"a note"}},
				{Column: colDirect, Commands: []string{"poolsim -a"}, Error: "minersim exited early"},
			},
			Rows: buildRows(specs, map[string]float64{"p99": 0.42, "cpu": 151.25}, map[string]float64{"p99": 0.3}),
		}},
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := writeMarkdown(&b, testReport()); err != nil {
		t.Fatal(err)
	}
	want := "# loadbench 2026-11-24 18:00:00 UTC\n" +
		"\n" +
		"Machine: Test CPU, 2 cores, Linux 6.1, go1.26.0.\n" +
		"\n" +
		"Built with:\n" +
		"\n" +
		"```sh\n(cd /m && go build -o /tmp/x/ ./cmd/poolsim)\n```\n" +
		"\n" +
		"## steady: 50 miners, ramp 1s, 2s\n" +
		"\n" +
		"Shares at a steady rate.\n" +
		"\n" +
		"hashrelay run:\n" +
		"\n" +
		"```sh\npoolsim -a\nhashrelay -b\nminersim -c\n```\n" +
		"\n" +
		"direct run:\n" +
		"\n" +
		"```sh\npoolsim -a\n```\n" +
		"\n" +
		"| metric | hashrelay | direct | target |\n" +
		"|---|---:|---:|---|\n" +
		"| reply latency p99 (ms) | 0.420 | 0.300 | ≤ 1 |\n" +
		"| server CPU (% of a core) | 151.2 | n/a |  |\n" +
		"| upstream / miner bytes (%) | n/a | n/a | < 1 |\n" +
		"\n" +
		"Targets (hashrelay): reply latency p99 ≤ 1 ✓; upstream / miner bytes < 1 ? (not measured)\n" +
		"\n" +
		"Notes:\n" +
		"\n" +
		"- hashrelay: a note\n" +
		"- direct run FAILED: minersim exited early\n"
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestTargetsLineMissed(t *testing.T) {
	rows := buildRows([]rowSpec{
		{key: "x", metric: "checked/s", target: "≥ 50,000", met: func(v float64) bool { return v >= 50000 }},
	}, map[string]float64{"x": 49999}, nil)
	if got, want := targetsLine(rows), "checked/s ≥ 50,000 ✗"; got != want {
		t.Errorf("targetsLine = %q; want %q", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, testReport()); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Machine   machine `json:"machine"`
		Scenarios []struct {
			Name string `json:"name"`
			Runs []struct {
				Column string `json:"column"`
				Error  string `json:"error"`
			} `json:"runs"`
			Rows []struct {
				Metric string   `json:"metric"`
				Relay  *float64 `json:"hashrelay"`
				Direct *float64 `json:"direct"`
				Met    *bool    `json:"met"`
			} `json:"rows"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Machine.Cores != 2 || len(got.Scenarios) != 1 || len(got.Scenarios[0].Rows) != 3 {
		t.Fatalf("decoded %+v", got)
	}
	r := got.Scenarios[0].Rows
	if r[0].Relay == nil || *r[0].Relay != 0.42 || r[0].Met == nil || !*r[0].Met || r[1].Direct != nil || r[2].Met != nil {
		t.Errorf("rows %+v", r)
	}
	if got.Scenarios[0].Runs[1].Error != "minersim exited early" {
		t.Errorf("runs %+v", got.Scenarios[0].Runs)
	}
	if !strings.Contains(b.String(), `"target": "≤ 1"`) {
		t.Errorf("JSON escapes the target: %s", b.String())
	}
}
