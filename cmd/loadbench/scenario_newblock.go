package main

import (
	"time"
)

// New blocks: one every newBlockEvery, up to newBlocksMax of them, the first as
// the measured window opens and the last at least newBlockEvery before it closes.
const (
	newBlockEvery    = 2 * time.Second
	newBlocksMax     = 10
	newBlockRate     = 0.1 // shares/s per miner: background load
	newBlockLeastRun = 4 * time.Second
)

// newBlockScenario: clean jobs fanned out to every miner.
var newBlockScenario = scenario{
	name:     "newblock",
	title:    "10 new blocks (clean_jobs), one every 2 s, fanned out to every miner under a light share load: the pool's job stamp to the miner's receipt.",
	miners:   10000,
	ramp:     10 * time.Second,
	duration: 22 * time.Second,
	check:    checkDuration(newBlockLeastRun),
	run:      runNewBlock,
	rows: concat(
		[]rowSpec{
			{key: "blocks", metric: "new blocks sent", decimals: 0},
			{key: "clean_jobs", metric: "clean jobs timed (minersim; each connection's first excluded)", decimals: 0},
			{key: "clean_jobs_expected", metric: "clean jobs expected (blocks x miners)", decimals: 0},
			{key: "clean_p50", metric: "clean job latency p50", unit: "ms", decimals: 2},
			{key: "clean_p90", metric: "clean job latency p90", unit: "ms", decimals: 2},
			{key: "clean_p99", metric: "clean job latency p99", unit: "ms", decimals: 2, target: "≤ 50", met: func(v float64) bool { return v <= 50 }},
			{key: "clean_max", metric: "clean job latency max", unit: "ms", decimals: 2},
			{key: "proxy_fanout_p50", metric: "proxy's own fan-out per slot p50 (bucket bound)", unit: "ms", decimals: 2},
			{key: "proxy_fanout_p99", metric: "proxy's own fan-out per slot p99 (bucket bound)", unit: "ms", decimals: 2},
		},
		serverRows,
		[]rowSpec{{key: "disconnects", metric: "disconnects (minersim)", decimals: 0}},
	),
}

// newBlocks is how many blocks fit in the measured window of a run of d (see
// column.window).
func newBlocks(d time.Duration) int {
	w := d - min(settleMax, d/5) - min(marginMax, d/10)
	return max(0, min(newBlocksMax, int(w/newBlockEvery)))
}

// runNewBlock posts /fault/new-block to the pool on schedule; minersim measures
// each clean job's latency from the stamp the pool put in its coinbase.
func runNewBlock(c *column) error {
	tb, err := c.startTestbed()
	if err != nil {
		return err
	}
	p, url, srv, r, side := tb.pool, tb.url, tb.srv, tb.r, tb.side
	m, err := c.startMiners(url, newBlockRate)
	if err != nil {
		return err
	}
	c.afterMiners(func(rep *minerReport) {
		c.set("clean_jobs", float64(rep.CleanJobLatency.N))
		c.set("disconnects", float64(rep.Connections.Disconnects))
		if rep.CleanJobLatency.N > 0 {
			c.set("clean_p50", rep.CleanJobLatency.P50)
			c.set("clean_p90", rep.CleanJobLatency.P90)
			c.set("clean_p99", rep.CleanJobLatency.P99)
			c.set("clean_max", rep.CleanJobLatency.Max)
		} else {
			c.note("minersim measured no clean job latencies")
		}
	})
	first, _ := c.window(m)
	if err := c.until(first, m); err != nil {
		return err
	}
	a, err := srv.mark()
	if err != nil {
		return err
	}
	var sa procSample
	if side != nil {
		sa, _ = side.mark()
	}
	ma, merr := readGroupTicks(m.pid)
	var rm0 promText
	if r != nil {
		rm0, _ = r.metrics(c.ctx)
	}
	blocks := newBlocks(c.plan.duration)
	sent := 0
	for i := range blocks {
		if err := c.until(first.Add(time.Duration(i)*newBlockEvery), m); err != nil {
			return err
		}
		if err := p.fault(c.ctx, "new-block"); err != nil {
			return err
		}
		sent++
		c.set("blocks", float64(sent))
		c.set("clean_jobs_expected", float64(sent*c.plan.miners))
	}
	// The window closes one interval after the last block, so its fan-out is in it.
	if err := c.until(first.Add(time.Duration(blocks)*newBlockEvery), m); err != nil {
		return err
	}
	b, err := srv.mark()
	if err != nil {
		return err
	}
	if r != nil && rm0 != nil {
		// hashrelay_job_fanout_seconds: from a job's arrival at a slot to its last
		// miner's bytes handed to the flushers (before the writes themselves).
		if rm1, err := r.metrics(c.ctx); err == nil {
			for _, q := range []struct {
				key string
				q   float64
			}{{"proxy_fanout_p50", 0.5}, {"proxy_fanout_p99", 0.99}} {
				if v, ok := histogramQuantile(rm0, rm1, "hashrelay_job_fanout_seconds", q.q); ok {
					c.set(q.key, v*1000)
				}
			}
		}
	}
	if mb, err := readGroupTicks(m.pid); err == nil && merr == nil {
		c.set("miners_cpu", cpuPercent(ma, mb))
	}
	if side != nil {
		if sb, err := side.mark(); err == nil {
			c.set("pool_cpu", cpuPercent(sa, sb))
		}
	}
	c.setCPU("server", srv, a, b, m)
	return nil
}
