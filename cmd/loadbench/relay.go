package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Bounds on starting hashrelay.
const (
	relayStartTimeout = 10 * time.Second // start to its "hashrelay started" line
	relayReadyTimeout = 15 * time.Second // that line to /readyz answering 200
	readyPoll         = 50 * time.Millisecond
)

// relayStarted is the message of hashrelay's log line that gives the addresses it
// bound; loadbench runs it at -log-level info to read it, which logs nothing per
// share or per miner.
const relayStarted = "hashrelay started"

// relay is a running hashrelay.
type relay struct {
	*child
	stratum string // HOST:PORT miners dial
	http    string // HOST:PORT of /readyz and /metrics
}

// relayConfig is what a scenario sets of hashrelay; the rest keeps its defaults.
type relayConfig struct {
	upstreams []*pool
	minerDiff float64 // start, min and max: fixed, so vardiff never moves it
	maxConns  int
}

// relayArgs is hashrelay's command line.
func relayArgs(rc relayConfig) []string {
	args := []string{"-listen", "127.0.0.1:0", "-http", "127.0.0.1:0"}
	for _, p := range rc.upstreams {
		args = append(args, "-upstream", "stratum+tcp://loadbench:x@"+p.hostPort())
	}
	d := formatFloat(rc.minerDiff)
	return append(args,
		"-start-difficulty", d, "-min-difficulty", d, "-max-difficulty", d,
		"-max-connections", strconv.Itoa(rc.maxConns),
		"-log-level", "info",
	)
}

// startRelay starts hashrelay and waits until /readyz answers 200 (a pool session
// is up).
func startRelay(ctx context.Context, path string, rc relayConfig) (*relay, error) {
	c, err := startChild("hashrelay", path, relayArgs(rc), func(l string) bool { return strings.Contains(l, `"`+relayStarted+`"`) })
	if err != nil {
		return nil, err
	}
	r := &relay{child: c}
	line, err := c.waitLine(ctx, relayStartTimeout, "its log line "+strconv.Quote(relayStarted))
	if err == nil {
		r.stratum, r.http, err = parseRelayStarted(line)
	}
	if err == nil {
		err = r.waitReady(ctx)
	}
	if err != nil {
		c.stop() //nolint:errcheck // the start error says more
		return nil, err
	}
	return r, nil
}

// parseRelayStarted reads the addresses from the JSON log line
// {"level":"info","stratum":"127.0.0.1:…","http":"127.0.0.1:…",…,"message":"hashrelay started"}.
func parseRelayStarted(line string) (stratum, http string, err error) {
	var l struct {
		Message string `json:"message"`
		Stratum string `json:"stratum"`
		HTTP    string `json:"http"`
	}
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		return "", "", fmt.Errorf("hashrelay log line %q: %v", line, err)
	}
	if l.Message != relayStarted || l.Stratum == "" || l.HTTP == "" {
		return "", "", fmt.Errorf("hashrelay log line %q: want message %q with stratum and http addresses", line, relayStarted)
	}
	return l.Stratum, l.HTTP, nil
}

// url is the stratum URL miners dial.
func (r *relay) url() string { return "stratum+tcp://" + r.stratum }

// waitReady polls GET /readyz until it answers 200.
func (r *relay) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(relayReadyTimeout)
	var last error
	for {
		_, err := httpDo(ctx, http.MethodGet, "http://"+r.http+"/readyz")
		if err == nil {
			return nil
		}
		last = err
		if r.exited() {
			return r.exitError()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hashrelay: timed out after %v waiting for /readyz to answer 200; last: %v%s", relayReadyTimeout, last, r.stderr.tailText())
		}
		if err := sleepCtx(ctx, readyPoll); err != nil {
			return err
		}
	}
}

// metrics reads GET /metrics.
func (r *relay) metrics(ctx context.Context) (promText, error) {
	body, err := httpDo(ctx, http.MethodGet, "http://"+r.http+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("hashrelay: %w", err)
	}
	return parsePromText(string(body)), nil
}

// promText is a Prometheus text exposition as series ("name{labels}") to value.
type promText map[string]float64

// parsePromText reads the text format line by line: comments skipped, the last
// field the value (no timestamps in what client_golang serves).
func parsePromText(s string) promText {
	m := promText{}
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[strings.TrimSpace(line[:i])] = v
	}
	return m
}

// sum adds every series of metric name, whatever its labels.
func (p promText) sum(name string) float64 {
	var total float64
	for series, v := range p {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
		}
	}
	return total
}

// byLabel is metric name's series by the value of label, as counts.
func (p promText) byLabel(name, label string) map[string]uint64 {
	out := map[string]uint64{}
	prefix := name + "{"
	for series, v := range p {
		rest, ok := strings.CutPrefix(series, prefix)
		if !ok {
			continue
		}
		_, val, ok := strings.Cut(rest, label+`="`)
		if !ok {
			continue
		}
		val, _, _ = strings.Cut(val, `"`)
		out[val] += uint64(v)
	}
	return out
}

// sleepCtx sleeps for d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// histogramQuantile returns the upper bound of the bucket holding quantile q of
// histogram name's observations between before and after (cumulative "_bucket"
// series with an "le" label), in the histogram's unit; false with no observations.
func histogramQuantile(before, after promText, name string, q float64) (float64, bool) {
	type bucket struct{ le, n float64 }
	var bs []bucket
	prefix := name + `_bucket{le="`
	for series, v := range after {
		rest, ok := strings.CutPrefix(series, prefix)
		if !ok {
			continue
		}
		le, _, _ := strings.Cut(rest, `"`)
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		bs = append(bs, bucket{bound, v - before[series]})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].n <= 0 {
		return 0, false
	}
	total := bs[len(bs)-1].n
	for _, b := range bs {
		if b.n >= q*total {
			return b.le, true
		}
	}
	return bs[len(bs)-1].le, true
}
