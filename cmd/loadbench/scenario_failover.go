package main

import (
	"fmt"
	"time"
)

// Failover timing.
const (
	failoverRate     = 1.0 // shares/s per miner
	flowPoll         = 20 * time.Millisecond
	flowTimeout      = 30 * time.Second // kill to giving up on shares at the backup
	failoverLeastRun = 3 * time.Second
)

// failoverScenario: the primary pool dies; how soon shares reach the backup.
var failoverScenario = scenario{
	name:     "failover",
	title:    "Two pools, primary and backup; a third of the way through, the primary poolsim gets SIGKILL. Time from the kill until the backup's accepted count first rises, miners lost and shares lost. Direct: minersim's backup URL, as firmware's pool 2.",
	miners:   2000,
	ramp:     4 * time.Second,
	duration: 30 * time.Second,
	check:    checkDuration(failoverLeastRun),
	run:      runFailover,
	rows: []rowSpec{
		{key: "flowing_seconds", metric: "kill to shares accepted by the backup", unit: "s", decimals: 3, target: "≤ 2", met: func(v float64) bool { return v <= 2 }},
		{key: "disconnects", metric: "miners disconnected (minersim)", decimals: 0, target: "0", met: func(v float64) bool { return v == 0 }},
		{key: "reconnects", metric: "client.reconnect followed (minersim)", decimals: 0},
		{key: "dial_failures", metric: "dial failures (minersim)", decimals: 0},
		{key: "lost_relay", metric: "shares lost (hashrelay_shares_lost_total)", decimals: 0},
		{key: "unanswered", metric: "shares unanswered (minersim)", decimals: 0},
		{key: "rejected", metric: "shares rejected (minersim)", decimals: 0},
		{key: "accepted_per_s", metric: "shares accepted/s (minersim)", decimals: 0},
		{key: "switches", metric: "upstream switches (hashrelay)", decimals: 0},
		{key: "server_cpu", metric: "hashrelay CPU", unit: "% of a core", decimals: 1},
		{key: "server_rss", metric: "hashrelay RSS at the end", unit: "MiB", decimals: 1},
	},
}

// runFailover: the pools' difficulty is the miners' in both runs, so every share
// goes upstream and the backup's accepted count rises as soon as shares flow.
// hashrelay keeps its default reconnect and failover settings.
func runFailover(c *column) error {
	primary, err := c.startPool("poolsim-primary", minerDiff)
	if err != nil {
		return err
	}
	backup, err := c.startPool("poolsim-backup", minerDiff)
	if err != nil {
		return err
	}
	var (
		url = primary.url + "," + backup.url
		r   *relay
		srv *sampler
	)
	if c.proxied {
		url, srv, r, err = c.serverUnderTest([]*pool{primary, backup}, "")
		if err != nil {
			return err
		}
	}
	m, err := c.startMiners(url, failoverRate)
	if err != nil {
		return err
	}
	c.afterMiners(func(rep *minerReport) {
		c.set("disconnects", float64(rep.Connections.Disconnects))
		c.set("reconnects", float64(rep.Connections.Reconnects))
		c.set("dial_failures", float64(rep.Connections.DialFailures))
		c.set("unanswered", float64(rep.Shares.Unanswered))
		c.set("rejected", float64(rep.Shares.Rejected))
		c.set("accepted_per_s", rep.Shares.AcceptedPerSecond)
	})
	from, to := c.window(m)
	killAt := m.rampEnd().Add(c.plan.duration / 3)
	if err := c.until(from, m); err != nil {
		return err
	}
	var a procSample
	if srv != nil {
		if a, err = srv.mark(); err != nil {
			return err
		}
	}
	if err := c.until(killAt, m); err != nil {
		return err
	}
	var lost0, switches0 float64
	if r != nil {
		mt, err := r.metrics(c.ctx)
		if err != nil {
			return err
		}
		lost0, switches0 = mt.sum("hashrelay_shares_lost_total"), mt.sum("hashrelay_upstream_switches_total")
	}
	st, err := backup.stats(c.ctx)
	if err != nil {
		return err
	}
	if st.Accepted > 0 {
		c.note("the backup had accepted %d shares before the kill", st.Accepted)
	}
	if err := primary.kill(); err != nil {
		return err
	}
	killed := time.Now()
	fmt.Fprintf(c.b.log, "loadbench:   SIGKILL %s (pid %d)\n", primary.name, primary.pid)
	c.note("SIGKILL to poolsim-primary (pid %d) %v after the ramp", primary.pid, killed.Sub(m.rampEnd()).Round(time.Millisecond))

	deadline := killed.Add(flowTimeout)
	if to.Before(deadline) {
		deadline = to
	}
	for {
		s, err := backup.stats(c.ctx)
		if err != nil {
			return err
		}
		if s.Accepted > st.Accepted {
			c.set("flowing_seconds", time.Since(killed).Seconds())
			break
		}
		if time.Now().Add(flowPoll).After(deadline) {
			c.note("timed out %v after the kill waiting for the backup's accepted count to rise above %d", time.Since(killed).Round(time.Millisecond), st.Accepted)
			break
		}
		if err := c.until(time.Now().Add(flowPoll), m); err != nil {
			return err
		}
	}

	if err := c.until(to, m); err != nil {
		return err
	}
	if srv != nil {
		b, err := srv.mark()
		if err != nil {
			return err
		}
		c.setCPU("server", srv, a, b, m)
	}
	if r != nil {
		mt, err := r.metrics(c.ctx)
		if err != nil {
			return err
		}
		c.set("lost_relay", mt.sum("hashrelay_shares_lost_total")-lost0)
		c.set("switches", mt.sum("hashrelay_upstream_switches_total")-switches0)
	}
	return nil
}
