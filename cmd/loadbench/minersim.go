package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"
)

// Bounds on a minersim run beyond its own ramp and duration.
const (
	minersOverrun = 60 * time.Second // ramp+duration to SIGTERM: closing 19,000 connections, merging workers
	minersReport  = 15 * time.Second // SIGTERM to its report
)

// minerConfig is one minersim run.
type minerConfig struct {
	url       string // one URL, or a comma-separated list (backups)
	miners    int
	ramp      time.Duration
	duration  time.Duration
	shareRate float64 // shares/s per miner; 0 with hashrate 0 = idle
	binds     string  // comma-separated source addresses
}

// minerArgs is minersim's command line (see /work/specs/minersim.md).
func minerArgs(mc minerConfig) []string {
	args := []string{
		"-url", mc.url,
		"-miners", strconv.Itoa(mc.miners),
		"-ramp", mc.ramp.String(),
		"-duration", mc.duration.String(),
		"-share-rate", formatFloat(mc.shareRate),
		"-hashrate", "0",
		"-worker", "loadbench",
	}
	if mc.binds != "" {
		args = append(args, "-bind", mc.binds)
	}
	return append(args, "-progress=false", "-json")
}

// miners is a running minersim.
type miners struct {
	*child
	cfg     minerConfig
	started time.Time
}

// startMiners starts minersim; its ramp begins about when this returns.
func startMiners(path string, mc minerConfig) (*miners, error) {
	c, err := startChild("minersim", path, minerArgs(mc), nil)
	if err != nil {
		return nil, err
	}
	return &miners{child: c, cfg: mc, started: time.Now()}, nil
}

// rampEnd is when the miners' ramp ends, as loadbench sees it.
func (m *miners) rampEnd() time.Time { return m.started.Add(m.cfg.ramp) }

// runEnd is when minersim's run should end.
func (m *miners) runEnd() time.Time { return m.rampEnd().Add(m.cfg.duration) }

// wait waits for minersim to end on its own (up to minersOverrun past its run's
// end; then SIGTERM, which ends a run early with a report) and reads its report.
// A timeout is an error, and so is a report that does not parse; the report is
// returned when it parsed whatever the exit status, and the status is then in err.
func (m *miners) wait(ctx context.Context) (*minerReport, error) {
	var timedOut error
	limit := time.Until(m.runEnd()) + minersOverrun
	select {
	case <-m.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(limit):
		timedOut = fmt.Errorf("minersim: timed out %v after its run's end; sent SIGTERM", minersOverrun)
		_ = syscall.Kill(m.pid, syscall.SIGTERM) // the parent only: it merges its workers' reports
		select {
		case <-m.done:
		case <-time.After(minersReport):
			m.kill() //nolint:errcheck // already failing
			return nil, fmt.Errorf("%v, and got no report within %v%s", timedOut, minersReport, m.stderr.tailText())
		}
	}
	rep, perr := parseMinerReport(m.stdout.Bytes())
	werr := m.waitError()
	var err error
	switch {
	case perr != nil:
		err = fmt.Errorf("minersim (%v): %v%s", werrText(werr), perr, m.stderr.tailText())
		rep = nil
	case timedOut != nil:
		err = timedOut
	case werr != nil:
		err = fmt.Errorf("minersim: %v%s", werr, m.stderr.tailText())
	}
	return rep, err
}

func werrText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// parseMinerReport decodes the first JSON object on minersim's stdout.
func parseMinerReport(out []byte) (*minerReport, error) {
	i := bytes.IndexByte(out, '{')
	if i < 0 {
		return nil, errors.New("no JSON report on stdout")
	}
	var r minerReport
	if err := json.NewDecoder(bytes.NewReader(out[i:])).Decode(&r); err != nil {
		return nil, fmt.Errorf("JSON report: %v", err)
	}
	return &r, nil
}

// minerReport is minersim's -json report, the fields loadbench reads.
type minerReport struct {
	Miners      int     `json:"miners"`
	Procs       int     `json:"procs"`
	RampSeconds float64 `json:"ramp_seconds"`
	RunSeconds  float64 `json:"run_seconds"`
	Connections struct {
		Made         uint64 `json:"made"`
		Held         uint64 `json:"held"`
		Disconnects  uint64 `json:"disconnects"`
		Reconnects   uint64 `json:"reconnects"`
		DialFailures uint64 `json:"dial_failures"`
	} `json:"connections"`
	Shares struct {
		Found             uint64            `json:"found"`
		Submitted         uint64            `json:"submitted"`
		Accepted          uint64            `json:"accepted"`
		Rejected          uint64            `json:"rejected"`
		Unanswered        uint64            `json:"unanswered"`
		Skipped           uint64            `json:"skipped"`
		RejectedByReason  map[string]uint64 `json:"rejected_by_reason"`
		AcceptedPerSecond float64           `json:"accepted_per_second"`
	} `json:"shares"`
	Jobs struct {
		Received uint64 `json:"received"`
		Clean    uint64 `json:"clean"`
	} `json:"jobs"`
	ReplyLatency    latency `json:"reply_latency_ms"`
	JobLatency      latency `json:"job_latency_ms"`
	CleanJobLatency latency `json:"clean_job_latency_ms"`
	Bytes           struct {
		In  uint64 `json:"in"`
		Out uint64 `json:"out"`
	} `json:"bytes"`
	Errors map[string]uint64 `json:"errors"`
}

// latency is one of minersim's latency summaries, in milliseconds.
type latency struct {
	N   uint64  `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}
