package main

import (
	"time"
)

// Share rates per miner.
const (
	steadyShareRate = 2.0   // 10,000 miners: 20,000 shares/s
	floodShareRate  = 100.0 // more than the server can check: it saturates
)

// replyRows are minersim's reply latencies.
var replyRows = []rowSpec{
	{key: "reply_p50", metric: "reply latency p50", unit: "ms", decimals: 3},
	{key: "reply_p90", metric: "reply latency p90", unit: "ms", decimals: 3},
	{key: "reply_p99", metric: "reply latency p99", unit: "ms", decimals: 3},
	{key: "reply_max", metric: "reply latency max", unit: "ms", decimals: 3},
}

// proxyReplyRows are the proxy's own part of the reply latency, from its
// hashrelay_miner_reply_seconds histogram over the window: read to reply written,
// leaving out the load generator's scheduling on a shared machine. Bucket upper
// bounds, so they read high by up to 2x.
var proxyReplyRows = []rowSpec{
	{key: "proxy_reply_p50", metric: "proxy's own reply time p50 (bucket bound)", unit: "ms", decimals: 3},
	{key: "proxy_reply_p99", metric: "proxy's own reply time p99 (bucket bound)", unit: "ms", decimals: 3},
}

// serverRows are the server's CPU over the measured window and its memory.
var serverRows = []rowSpec{
	{key: "server_cpu", metric: "server CPU", unit: "% of a core", decimals: 1},
	{key: "server_rss", metric: "server RSS at the end", unit: "MiB", decimals: 1},
	{key: "server_rss_peak", metric: "server RSS peak", unit: "MiB", decimals: 1},
	{key: "pool_cpu", metric: "poolsim CPU behind the proxy", unit: "% of a core", decimals: 1},
	{key: "miners_cpu", metric: "minersim CPU, all its processes (load, not server)", unit: "% of a core", decimals: 1},
}

// steadyScenario: a realistic fleet's share load, for latency and upstream traffic.
var steadyScenario = scenario{
	name:     "steady",
	title:    "Every miner submits 2 shares/s (10,000 miners: 20,000 shares/s), all checkable by the proxy; the pool behind it asks 1000x the miners' difficulty, so ~0.1% go upstream.",
	miners:   10000,
	ramp:     10 * time.Second,
	duration: 30 * time.Second,
	check:    checkDuration(2 * time.Second),
	run:      func(c *column) error { return runShares(c, steadyShareRate) },
	rows: concat(
		[]rowSpec{
			{key: "offered_per_s", metric: "shares/s offered (miners x rate)", decimals: 0},
			{key: "accepted_per_s", metric: "shares accepted/s (minersim)", decimals: 0},
			{key: "checked_per_s", metric: "shares checked/s (server)", decimals: 0},
		},
		withTarget(replyRows, "reply_p99", "≤ 1", func(v float64) bool { return v <= 1 }),
		proxyReplyRows,
		serverRows,
		[]rowSpec{
			{key: "miner_bytes", metric: "miner bytes in+out", unit: "MB", decimals: 2},
			{key: "upstream_bytes", metric: "upstream bytes in+out", unit: "MB", decimals: 3},
			{key: "upstream_ratio", metric: "upstream / miner bytes", unit: "%", decimals: 3, target: "< 1", met: func(v float64) bool { return v < 1 }},
			{key: "rejected", metric: "shares rejected (minersim)", decimals: 0},
			{key: "unanswered", metric: "shares unanswered (minersim)", decimals: 0},
			{key: "disconnects", metric: "disconnects (minersim)", decimals: 0},
		},
	),
}

// floodScenario: fewer miners submitting as fast as they can, for peak throughput.
var floodScenario = scenario{
	name:     "flood",
	title:    "Each miner asks for 100 shares/s, more than the server can check: shares checked per second at saturation.",
	miners:   1000,
	ramp:     2 * time.Second,
	duration: 20 * time.Second,
	check:    checkDuration(2 * time.Second),
	run:      func(c *column) error { return runShares(c, floodShareRate) },
	rows: concat(
		[]rowSpec{
			{key: "checked_per_s", metric: "shares checked/s (server)", decimals: 0, target: "≥ 50,000", met: func(v float64) bool { return v >= 50000 }},
			{key: "offered_per_s", metric: "shares/s asked for (miners x rate)", decimals: 0},
			{key: "accepted_per_s", metric: "shares accepted/s (minersim)", decimals: 0},
		},
		replyRows,
		proxyReplyRows,
		serverRows,
		[]rowSpec{
			{key: "rejected", metric: "shares rejected (minersim)", decimals: 0},
			{key: "unanswered", metric: "shares unanswered (minersim)", decimals: 0},
			{key: "disconnects", metric: "disconnects (minersim)", decimals: 0},
		},
	),
}

// withTarget is a copy of rows with a target on the row of key.
func withTarget(rows []rowSpec, key, target string, met func(float64) bool) []rowSpec {
	out := append([]rowSpec(nil), rows...)
	for i := range out {
		if out[i].key == key {
			out[i].target, out[i].met = target, met
		}
	}
	return out
}

func concat(parts ...[]rowSpec) []rowSpec {
	var out []rowSpec
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// runShares runs miners at shareRate each. Over the window (after the ramp, before
// the end) it measures the server's CPU and the rate of shares it checked
// (hashrelay_shares_total, or poolsim's submits); minersim gives the latencies and
// its bytes; poolsim's bytes over the whole minersim run give the upstream traffic.
func runShares(c *column, shareRate float64) error {
	tb, err := c.startTestbed()
	if err != nil {
		return err
	}
	p, url, srv, r, side := tb.pool, tb.url, tb.srv, tb.r, tb.side
	st0, err := p.stats(c.ctx)
	if err != nil {
		return err
	}
	m, err := c.startMiners(url, shareRate)
	if err != nil {
		return err
	}
	c.set("offered_per_s", float64(c.plan.miners)*shareRate)
	c.afterMiners(func(rep *minerReport) {
		c.set("accepted_per_s", rep.Shares.AcceptedPerSecond)
		c.set("rejected", float64(rep.Shares.Rejected))
		c.set("unanswered", float64(rep.Shares.Unanswered))
		c.set("disconnects", float64(rep.Connections.Disconnects))
		c.setLatency("reply", rep.ReplyLatency)
		minerBytes := float64(rep.Bytes.In + rep.Bytes.Out)
		c.set("miner_bytes", minerBytes/1e6)
		if r != nil {
			st1, serr := p.stats(c.ctx)
			b0, ok0 := st0.bytes()
			b1, ok1 := st1.bytes()
			switch {
			case serr != nil:
				c.note("upstream bytes not measured: %v", serr)
			case !ok0 || !ok1:
				c.note("upstream bytes not measured: poolsim's /stats has no bytes_in and bytes_out")
			default:
				c.set("upstream_bytes", (b1-b0)/1e6)
				if minerBytes > 0 {
					c.set("upstream_ratio", (b1-b0)/minerBytes*100)
				}
			}
		}
	})
	from, to := c.window(m)
	if err := c.until(from, m); err != nil {
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
	n0, err := c.checked(r, p)
	if err != nil {
		return err
	}
	var rm0 promText
	if r != nil {
		rm0, _ = r.metrics(c.ctx)
	}
	if err := c.until(to, m); err != nil {
		return err
	}
	b, err := srv.mark()
	if err != nil {
		return err
	}
	if mb, err := readGroupTicks(m.pid); err == nil && merr == nil {
		c.set("miners_cpu", cpuPercent(ma, mb))
	}
	n1, err := c.checked(r, p)
	if err != nil {
		return err
	}
	if r != nil && rm0 != nil {
		if rm1, err := r.metrics(c.ctx); err == nil {
			c.setProxyReply(rm0, rm1)
		}
	}
	if side != nil {
		if sb, err := side.mark(); err == nil {
			c.set("pool_cpu", cpuPercent(sa, sb))
		}
	}
	c.setCPU("server", srv, a, b, m)
	if dt := b.at.Sub(a.at).Seconds(); dt > 0 {
		c.set("checked_per_s", (n1-n0)/dt)
	}
	return nil
}
