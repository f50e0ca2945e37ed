package main

import (
	"testing"
)

func TestParsePoolBanner(t *testing.T) {
	f := func(line, wantURL, wantAdmin string, wantErr bool) {
		t.Helper()
		u, a, err := parsePoolBanner(line)
		if (err != nil) != wantErr || u != wantURL || a != wantAdmin {
			t.Errorf("parsePoolBanner(%q) = %q, %q, %v; want %q, %q, error %v", line, u, a, err, wantURL, wantAdmin, wantErr)
		}
	}
	f("poolsim listening on stratum+tcp://127.0.0.1:3334, admin http://127.0.0.1:3335",
		"stratum+tcp://127.0.0.1:3334", "http://127.0.0.1:3335", false)
	f("poolsim listening on stratum+tcp://127.0.0.1:3334, admin off", "", "", true)
	f("poolsim listening on 127.0.0.1:3334, admin http://127.0.0.1:3335", "", "", true)
	f("poolsim listening on stratum+tcp://, admin http://127.0.0.1:3335", "", "", true)
	f("poolsim: listen: address in use", "", "", true)
	f("", "", "", true)
}

func TestParseRelayStarted(t *testing.T) {
	f := func(line, wantStratum, wantHTTP string, wantErr bool) {
		t.Helper()
		s, h, err := parseRelayStarted(line)
		if (err != nil) != wantErr || s != wantStratum || h != wantHTTP {
			t.Errorf("parseRelayStarted(%q) = %q, %q, %v; want %q, %q, error %v", line, s, h, err, wantStratum, wantHTTP, wantErr)
		}
	}
	f(`{"level":"info","stratum":"127.0.0.1:4000","http":"127.0.0.1:4001","pools":1,"time":"2026-01-01T00:00:00Z","message":"hashrelay started"}`,
		"127.0.0.1:4000", "127.0.0.1:4001", false)
	f(`{"level":"info","stratum":"127.0.0.1:4000","message":"hashrelay started"}`, "", "", true)
	f(`{"level":"info","message":"hashrelay stopped"}`, "", "", true)
	f(`hashrelay started`, "", "", true)
}

func TestParsePromText(t *testing.T) {
	text := `# HELP hashrelay_shares_total Shares checked, by verdict.
# TYPE hashrelay_shares_total counter
hashrelay_shares_total{verdict="accepted"} 1.5e+06
hashrelay_shares_total{verdict="duplicate"} 3
hashrelay_shares_totalx 100
hashrelay_miners_connected 19000
hashrelay_shares_lost_total{reason="resume window"} 2
garbage line
`
	p := parsePromText(text)
	f := func(name string, want float64) {
		t.Helper()
		if got := p.sum(name); got != want {
			t.Errorf("sum(%s) = %v; want %v", name, got, want)
		}
	}
	f("hashrelay_shares_total", 1500003)
	f("hashrelay_miners_connected", 19000)
	f("hashrelay_shares_lost_total", 2)
	f("hashrelay_upstream_switches_total", 0)

	closes := parsePromText(`hashrelay_connections_closed_total{reason="write timeout"} 3
hashrelay_connections_closed_total{reason="eof"} 0
hashrelay_connections_closed_total 9
`).byLabel("hashrelay_connections_closed_total", "reason")
	if len(closes) != 2 || closes["write timeout"] != 3 {
		t.Errorf("byLabel = %v", closes)
	}
	if got := formatCounts(closes); got != `"write timeout"=3` {
		t.Errorf("formatCounts = %s", got)
	}
}

func TestParseMinerReport(t *testing.T) {
	out := []byte(`{"url":"stratum+tcp://127.0.0.1:3333","miners":2,"procs":1,"ramp_seconds":1,"run_seconds":2.5,
"connections":{"made":2,"held":2,"disconnects":1,"reconnects":0,"dial_failures":0,"abrupt_closes":0,"churn_closes":0},
"shares":{"found":9,"submitted":9,"accepted":8,"rejected":1,"unanswered":0,"skipped":0,"rejected_by_reason":{"Duplicate share":1},"accepted_per_second":3.2},
"bad":{},"malformed_sent":0,"long_lines_sent":0,"jobs":{"received":4,"clean":2},
"reply_latency_ms":{"n":9,"p50":0.12,"p90":0.2,"p99":0.9,"max":1.5},
"job_latency_ms":{"n":2,"p50":1,"p90":1,"p99":1,"max":1},
"clean_job_latency_ms":{"n":2,"p50":3,"p90":4,"p99":5,"max":6},
"bytes":{"in":1000,"out":2000},"errors":{}}
`)
	r, err := parseMinerReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Connections.Disconnects != 1 || r.Shares.AcceptedPerSecond != 3.2 || r.ReplyLatency.P99 != 0.9 ||
		r.CleanJobLatency.Max != 6 || r.Bytes.Out != 2000 || r.Jobs.Clean != 2 {
		t.Errorf("report = %+v", r)
	}
	if _, err := parseMinerReport([]byte("minersim: bad flag\n")); err == nil {
		t.Error("no JSON: no error")
	}
	if _, err := parseMinerReport([]byte(`{"miners":`)); err == nil {
		t.Error("truncated JSON: no error")
	}
}

func TestCPUModel(t *testing.T) {
	f := func(cpuinfo, want string) {
		t.Helper()
		if got := cpuModel(cpuinfo); got != want {
			t.Errorf("cpuModel = %q; want %q", got, want)
		}
	}
	f("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n", "AMD EPYC 7B13")
	f("processor\t: 0\nCPU part\t: 0xd0c\n", "0xd0c")
	f("", "unknown")
}

func TestHistogramQuantile(t *testing.T) {
	before := parsePromText(`h_bucket{le="0.001"} 10
h_bucket{le="0.01"} 10
h_bucket{le="0.1"} 10
h_bucket{le="+Inf"} 10
`)
	after := parsePromText(`h_bucket{le="0.001"} 60
h_bucket{le="0.01"} 108
h_bucket{le="0.1"} 110
h_bucket{le="+Inf"} 110
`)
	// 100 new observations: 50 under 1 ms, 48 more under 10 ms, 2 under 100 ms.
	for _, tc := range []struct{ q, want float64 }{{0.5, 0.001}, {0.9, 0.01}, {0.99, 0.1}} {
		if got, ok := histogramQuantile(before, after, "h", tc.q); !ok || got != tc.want {
			t.Errorf("q %v: got %v, %v; want %v", tc.q, got, ok, tc.want)
		}
	}
	if _, ok := histogramQuantile(after, after, "h", 0.5); ok {
		t.Error("no new observations gave a quantile")
	}
}
