package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestRunInProcess runs 20 miners in this process (-procs 1) for a second and
// checks the report against the pool's own counts.
func TestRunInProcess(t *testing.T) {
	pool := newPool(t)
	const miners = 20
	start := time.Now()
	r, data := runJSON(t, "-url", pool.URL(), "-miners", fmt.Sprint(miners), "-procs", "1", "-ramp", "200ms",
		"-duration", "1s", "-share-rate", "10")
	elapsed := time.Since(start)
	checkShape(t, data)
	ps := pool.Stats()

	if r.Miners != miners || r.Procs != 1 || r.RampSeconds != 0.2 || r.RunSeconds < 1 || r.RunSeconds > 1.5 {
		t.Errorf("header: got miners %d procs %d ramp %v run %v; want 20, 1, 0.2, about 1", r.Miners, r.Procs, r.RampSeconds, r.RunSeconds)
	}
	if elapsed < 1200*time.Millisecond || elapsed > 4*time.Second {
		t.Errorf("run took %v; want the ramp and the duration, 1.2 s, plus at most the drain", elapsed)
	}
	c := r.Connections
	if c.Made != miners || c.Held != miners || c.Disconnects != 0 || c.DialFailures != 0 || ps.Connections != miners {
		t.Errorf("connections: got %+v, pool %d; want %d made and held", c, ps.Connections, miners)
	}
	s := r.Shares
	// Each miner waits for the answers in flight before it closes, so the counts
	// agree exactly with the pool's.
	if s.Accepted == 0 || s.Accepted != ps.Accepted() || s.Rejected != 0 || s.Submitted != s.Accepted || s.Unanswered != 0 {
		t.Errorf("shares: got %+v; want accepted = pool's %d, all answered", s, ps.Accepted())
	}
	// 20 miners at 10 shares/s for a second: about 200 (Poisson, so loose bounds).
	if s.Accepted < 80 || s.AcceptedPerSecond < 80 || s.AcceptedPerSecond > 400 {
		t.Errorf("shares: got %d accepted, %.1f/s after the ramp; want about 200", s.Accepted, s.AcceptedPerSecond)
	}
	if int64(s.Accepted+s.Rejected) != r.ReplyLatency.N || r.ReplyLatency.P50 <= 0 || r.ReplyLatency.P50 > r.ReplyLatency.Max {
		t.Errorf("reply latency: got %+v; want one per answer (%d)", r.ReplyLatency, s.Accepted+s.Rejected)
	}
	for n := 1; n <= miners; n++ {
		if _, ok := ps.Workers[fmt.Sprintf("minersim.%d", n)]; !ok {
			t.Errorf("pool saw no shares from minersim.%d; workers %v", n, ps.Workers)
		}
	}
	if r.Jobs.Received < miners || r.Bytes.In == 0 || r.Bytes.Out == 0 || len(r.Errors) != 0 {
		t.Errorf("jobs %+v bytes %+v errors %v; want a job per miner, bytes both ways, no errors", r.Jobs, r.Bytes, r.Errors)
	}
}

// TestRunSignal: with -duration 0 the run lasts until ctx ends, then reports.
func TestRunSignal(t *testing.T) {
	pool := newPool(t)
	o, err := parseSettings([]string{"-url", pool.URL(), "-miners", "3", "-duration", "0", "-share-rate", "0"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner(o)
	ctx, cancel := context.WithCancel(context.Background())
	parts := make(chan *part, 1)
	go func() { parts <- r.run(ctx) }()
	eventually(t, "3 idle miners held", func() bool { return r.progress().Held == 3 })
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case p := <-parts:
		if p.Held != 3 || p.Made != 3 || p.Submitted != 0 || p.RunSeconds < 0.1 {
			t.Errorf("part: got held %d made %d submitted %d run %v; want 3 held idle miners", p.Held, p.Made, p.Submitted, p.RunSeconds)
		}
	case <-time.After(waitTimeout):
		t.Fatal("run did not return after ctx ended")
	}
}

// TestJobLatency: notifies the pool sends during the run are measured, clean
// ones also on their own; each connection's first is not.
func TestJobLatency(t *testing.T) {
	pool := newPool(t)
	const miners = 4
	o, err := parseSettings([]string{"-url", pool.URL(), "-miners", fmt.Sprint(miners), "-duration", "0", "-share-rate", "1"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rn := newRunner(o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	parts := make(chan *part, 1)
	go func() { parts <- rn.run(ctx) }()
	eventually(t, "miners held", func() bool { return rn.progress().Held == miners })
	const sends, blocks = 3, 2
	for range sends {
		pool.SendJob()
		time.Sleep(20 * time.Millisecond)
	}
	for range blocks {
		pool.NewBlock()
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, "the jobs received", func() bool {
		return rn.jobLatency.quantiles().N == miners*(sends+blocks)
	})
	cancel()
	p := <-parts
	res := newResult()
	if err := res.merge(p); err != nil {
		t.Fatal(err)
	}
	rep := newReport(o, res)
	if rep.JobLatency.N != miners*(sends+blocks) || rep.CleanJobLatency.N != miners*blocks {
		t.Errorf("job latency n=%d, clean n=%d; want %d and %d", rep.JobLatency.N, rep.CleanJobLatency.N, miners*(sends+blocks), miners*blocks)
	}
	if rep.JobLatency.P50 <= 0 || rep.JobLatency.Max > 2000 || rep.CleanJobLatency.Max > rep.JobLatency.Max {
		t.Errorf("job latency %+v, clean %+v: want small positive milliseconds", rep.JobLatency, rep.CleanJobLatency)
	}
	if rep.Jobs.Received != uint64(miners*(1+sends+blocks)) || rep.Jobs.Clean != uint64(miners*(1+blocks)) {
		t.Errorf("jobs: got %+v; want %d received, %d clean", rep.Jobs, miners*(1+sends+blocks), miners*(1+blocks))
	}
}

// TestOnJob feeds one miner's OnJob by hand: only a new stamp after the
// connection's first notify counts.
func TestOnJob(t *testing.T) {
	r := &runner{jobLatency: newHist(), cleanJobLatency: newHist()}
	s := &sim{}
	on := r.onJob(s)
	base := time.Unix(1_700_000_000, 0)
	ev := func(stampMs, latencyMs int, clean, first bool) stratumtest.JobEvent {
		e := stratumtest.JobEvent{Received: base.Add(time.Duration(stampMs+latencyMs) * time.Millisecond), Clean: clean, First: first}
		if stampMs >= 0 {
			e.Stamp = base.Add(time.Duration(stampMs) * time.Millisecond)
		}
		return e
	}
	on(ev(0, 50, true, true)) // first on the connection: not counted
	if !s.subscribed.Load() {
		t.Error("subscribed not set by a first notify")
	}
	on(ev(0, 60, false, false))  // same stamp resent: not counted
	on(ev(100, 3, false, false)) // counted
	on(ev(100, 9, false, false)) // same stamp again: not counted
	on(ev(-1, 1, false, false))  // no stamp: not counted
	on(ev(200, 5, true, false))  // counted, clean
	on(ev(300, 70, true, true))  // first on a new connection: not counted
	on(ev(400, 7, false, false)) // counted
	q, cq := r.jobLatency.quantiles(), r.cleanJobLatency.quantiles()
	if q.N != 3 || !near(q.P50, 5) || !near(q.Max, 7) || cq.N != 1 || !near(cq.Max, 5) {
		t.Errorf("job latency %+v, clean %+v; want n=3 (3, 5, 7 ms) and n=1 (5 ms)", q, cq)
	}
}

// TestLaunchRamp: miners start along the ramp at their global index, so a
// worker's miners interleave with the others'.
func TestLaunchRamp(t *testing.T) {
	o := &options{addrs: []string{"127.0.0.1:1"}, url: "127.0.0.1:1", miners: 10, ramp: 500 * time.Millisecond, worker: "w", slot: 2, slots: 2, procs: 2}
	r := newRunner(o)
	var nums []string
	for _, s := range r.sims {
		nums = append(nums, fmt.Sprint(s.n))
	}
	if got := strings.Join(nums, " "); got != "2 4 6 8 10" {
		t.Errorf("worker 2/2 of 10 miners: got %s; want 2 4 6 8 10", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 260*time.Millisecond)
	defer cancel()
	minerCtx, stop := context.WithCancel(context.Background())
	var miners sync.WaitGroup
	r.launch(ctx, minerCtx, time.Now(), &miners)
	stop()
	miners.Wait()
	// Miners 2, 4 start at 50, 150 ms; 6 at 250 ms; 8, 10 after the 260 ms.
	if n := r.started.Load(); n < 2 || n > 3 {
		t.Errorf("started within 260 ms of a 500 ms ramp: got %d; want 2 or 3", n)
	}
}
