package main

import (
	"time"
)

// holdScenario: idle miners held open, for memory per connection.
var holdScenario = scenario{
	name:     "hold",
	title:    "Idle miners (no hashing, no shares) connect over the ramp and are held: the server's resident memory per miner, and its CPU while holding them.",
	miners:   19000,
	ramp:     20 * time.Second,
	duration: 10 * time.Second,
	check:    checkDuration(2 * time.Second),
	run:      runHold,
	rows: []rowSpec{
		{key: "rss_before", metric: "server RSS before miners", unit: "MiB", decimals: 1},
		{key: "rss_held", metric: "server RSS, miners held", unit: "MiB", decimals: 1},
		{key: "rss_peak", metric: "server RSS peak", unit: "MiB", decimals: 1},
		{key: "rss_per_miner", metric: "RSS per miner", unit: "KiB", decimals: 2, target: "≤ 8", met: func(v float64) bool { return v <= 8 }},
		{key: "connected", metric: "miners connected (server's count)", decimals: 0},
		{key: "held", metric: "connections held (minersim)", decimals: 0},
		{key: "connect_seconds", metric: "time until all connected", unit: "s", decimals: 2},
		{key: "cpu_hold", metric: "server CPU while holding", unit: "% of a core", decimals: 1},
		{key: "disconnects", metric: "disconnects (minersim)", decimals: 0},
	},
}

// runHold: RSS before the miners, then connect them all, then hold them for the
// duration. RSS per miner is (RSS at the end of the hold - RSS before) / the
// server's count of miners connected at that moment.
func runHold(c *column) error {
	p, err := c.startPool("poolsim", minerDiff)
	if err != nil {
		return err
	}
	url, srv, r, err := c.serverUnderTest([]*pool{p}, p.url)
	if err != nil {
		return err
	}
	if err := sleepCtx(c.ctx, time.Second); err != nil { // let start-up garbage settle
		return err
	}
	before, err := srv.mark()
	if err != nil {
		return err
	}
	c.set("rss_before", float64(before.rssKiB)/1024)

	m, err := c.startMiners(url, 0)
	if err != nil {
		return err
	}
	c.afterMiners(func(rep *minerReport) {
		c.set("held", float64(rep.Connections.Held))
		c.set("disconnects", float64(rep.Connections.Disconnects))
	})
	margin := min(marginMax, c.plan.duration/10)
	end := m.runEnd().Add(-margin)
	poll := connectPoll
	if r == nil {
		poll = sessionsPoll
	}
	n, allAt, err := c.waitConnected(m, r, p, end, poll)
	if err != nil {
		return err
	}
	holdFrom := m.rampEnd()
	if !allAt.IsZero() {
		c.set("connect_seconds", allAt.Sub(m.started).Seconds())
		holdFrom = later(holdFrom, allAt)
	} else {
		c.note("timed out at the end of the hold (%v after the start) waiting for the server to count %d miners connected: it counted %d", end.Sub(m.started).Round(time.Millisecond), c.plan.miners, n)
	}
	if err := c.until(holdFrom, m); err != nil {
		return err
	}
	a, err := srv.mark()
	if err != nil {
		return err
	}
	if err := c.until(end, m); err != nil {
		return err
	}
	b, err := srv.mark()
	if err != nil {
		return err
	}
	n, err = c.connected(r, p)
	if err != nil {
		return err
	}
	c.set("connected", float64(n))
	c.set("rss_held", float64(b.rssKiB)/1024)
	if n > 0 {
		c.set("rss_per_miner", (float64(b.rssKiB)-float64(before.rssKiB))/float64(n))
	}
	if b.at.Sub(a.at) >= 500*time.Millisecond {
		c.set("cpu_hold", cpuPercent(a, b))
	} else {
		c.note("the hold after all miners connected was %v: too short to measure CPU", b.at.Sub(a.at).Round(time.Millisecond))
	}
	if peak := srv.peakRSS(m.started, b.at); peak > 0 {
		c.set("rss_peak", float64(peak)/1024)
	}
	return nil
}

// waitConnected polls the server's count of miners every poll until it reaches the
// plan's miners (returning when) or until deadline (returning a zero time).
func (c *column) waitConnected(m *miners, r *relay, p *pool, deadline time.Time, poll time.Duration) (int, time.Time, error) {
	n := 0
	for {
		var err error
		n, err = c.connected(r, p)
		if err != nil {
			return n, time.Time{}, err
		}
		if n >= c.plan.miners {
			return n, time.Now(), nil
		}
		next := time.Now().Add(poll)
		if next.After(deadline) {
			return n, time.Time{}, c.until(deadline, m)
		}
		if err := c.until(next, m); err != nil {
			return n, time.Time{}, err
		}
	}
}
