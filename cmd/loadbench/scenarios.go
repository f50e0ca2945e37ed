package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Difficulties. At minerDiff every hash is a share (its target, diff-1 over 2.3e-10,
// is clamped to 2^256-1), so a simulated miner spends one double SHA-256 per share
// and the machine's cores go to the servers. In proxy runs that measure the proxy's
// own share checking the pool asks forwardRatio times more, so that ~0.1% of shares
// go upstream as with a real fleet; a direct run has the pool at minerDiff, or the
// miners could not submit at the same rate.
const (
	minerDiff    = 2.3e-10
	forwardRatio = 1000
)

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Bounds on waiting inside a run.
const (
	settleMax    = time.Second            // after the ramp, before a measured window opens
	marginMax    = 500 * time.Millisecond // before the run's end, when the window closes
	connectPoll  = 250 * time.Millisecond // hashrelay_miners_connected
	sessionsPoll = time.Second            // poolsim /stats: it lists every worker, so it is costly to serve
)

// column names: the proxy run and the baseline.
const (
	colRelay  = "hashrelay"
	colDirect = "direct"
)

// scenario is one named load and what it reports.
type scenario struct {
	name     string
	title    string // one line: the load and what is measured
	miners   int
	ramp     time.Duration
	duration time.Duration
	check    func(plan) error // a plan the script cannot run; nil: any
	run      func(*column) error
	rows     []rowSpec
}

// scenarios, in the order -scenario all runs them.
var scenarios = []scenario{holdScenario, steadyScenario, floodScenario, newBlockScenario, failoverScenario}

func scenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, sc := range scenarios {
		names[i] = sc.name
	}
	return names
}

func findScenario(name string) *scenario {
	for i := range scenarios {
		if scenarios[i].name == name {
			return &scenarios[i]
		}
	}
	return nil
}

// column is one run of a scenario: through the proxy, or direct.
type column struct {
	ctx     context.Context
	b       *bench
	plan    plan
	proxied bool
	binds   string

	commands []string
	values   map[string]float64
	notes    []string

	relay    *relay                   // once started, in proxy runs
	miners   *miners                  // once started
	onReport []func(rep *minerReport) // run on minersim's report, by runScenario

	mu       sync.Mutex
	samplers []*sampler
}

func (c *column) set(key string, v float64) { c.values[key] = v }

func (c *column) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

func (c *column) record(ch *child) {
	c.b.procs.add(ch)
	c.commands = append(c.commands, ch.line)
	fmt.Fprintf(c.b.log, "loadbench:   %s\n", ch.line)
}

func (c *column) startPool(name string, d float64) (*pool, error) {
	p, err := startPool(c.ctx, name, c.b.bins.poolsim, d)
	if err != nil {
		return nil, err
	}
	c.record(p.child)
	return p, nil
}

func (c *column) startRelay(rc relayConfig) (*relay, error) {
	r, err := startRelay(c.ctx, c.b.bins.hashrelay, rc)
	if err != nil {
		return nil, err
	}
	c.record(r.child)
	c.relay = r
	return r, nil
}

// startMiners starts minersim with the column's plan, from its source addresses.
func (c *column) startMiners(url string, shareRate float64) (*miners, error) {
	m, err := startMiners(c.b.bins.minersim, minerConfig{
		url: url, miners: c.plan.miners, ramp: c.plan.ramp, duration: c.plan.duration,
		shareRate: shareRate, binds: c.binds,
	})
	if err != nil {
		return nil, err
	}
	c.record(m.child)
	c.miners = m
	return m, nil
}

// afterMiners registers f to record values from minersim's report. runScenario
// waits for the report once the scenario's script returns, even when it failed or
// minersim ended early, so that what was measured is kept.
func (c *column) afterMiners(f func(rep *minerReport)) {
	c.onReport = append(c.onReport, f)
}

// finishMiners waits for minersim's report (ending minersim early when the script
// failed) and hands it to the afterMiners functions.
func (c *column) finishMiners(scriptErr error) error {
	m := c.miners
	if m == nil || c.ctx.Err() != nil {
		return nil
	}
	if scriptErr != nil && !m.exited() {
		_ = syscall.Kill(m.pid, syscall.SIGTERM) // ends the run early, with a report
	}
	rep, err := m.wait(c.ctx)
	if rep == nil {
		return err
	}
	if short := c.plan.duration.Seconds() - rep.RunSeconds; short > 1 {
		c.note("minersim ran %.1f s after its ramp, %.1f s short of the plan", rep.RunSeconds, short)
	}
	for _, f := range c.onReport {
		f(rep)
	}
	if len(rep.Errors) > 0 {
		c.note("minersim's connection-ending errors: %s", formatCounts(rep.Errors))
	}
	if c.relay != nil && !c.relay.exited() {
		if mt, merr := c.relay.metrics(c.ctx); merr == nil {
			if closes := mt.byLabel("hashrelay_connections_closed_total", "reason"); len(closes) > 0 {
				c.note("hashrelay_connections_closed_total by reason, the run's final closes included: %s", formatCounts(closes))
			}
		}
	}
	return err
}

// formatCounts writes the non-zero counts as name=n, sorted by name.
func formatCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%q=%d", k, m[k])
	}
	return strings.Join(keys, " ")
}

// serverUnderTest starts what miners dial in this column: hashrelay in front of
// pools (the first the primary), or the first pool itself. It returns the miners'
// URL, the server's sampler, and the relay (nil when direct).
func (c *column) serverUnderTest(pools []*pool, minerURL string) (string, *sampler, *relay, error) {
	if !c.proxied {
		return minerURL, c.sample(pools[0].child), nil, nil
	}
	r, err := c.startRelay(relayConfig{upstreams: pools, minerDiff: minerDiff, maxConns: c.plan.miners + 100})
	if err != nil {
		return "", nil, nil, err
	}
	return r.url(), c.sample(r.child), r, nil
}

// testbed is one poolsim and the server under test in front of it.
type testbed struct {
	pool *pool
	url  string   // where the miners connect
	srv  *sampler // the server under test's CPU and memory
	r    *relay   // HashRelay; nil in the direct column
	side *sampler // poolsim behind HashRelay; nil in the direct column
}

// startTestbed starts poolsim at the miners' difficulty (forwardRatio times it behind
// HashRelay, which then forwards that share of the shares) and the server under test.
func (c *column) startTestbed() (*testbed, error) {
	poolDiff := minerDiff
	if c.proxied {
		poolDiff = minerDiff * forwardRatio
	}
	p, err := c.startPool("poolsim", poolDiff)
	if err != nil {
		return nil, err
	}
	url, srv, r, err := c.serverUnderTest([]*pool{p}, p.url)
	if err != nil {
		return nil, err
	}
	tb := &testbed{pool: p, url: url, srv: srv, r: r}
	if r != nil {
		tb.side = c.sample(p.child)
	}
	return tb, nil
}

// sample starts sampling ch's /proc files until the column ends.
func (c *column) sample(ch *child) *sampler {
	s := startSampler(ch.pid)
	c.mu.Lock()
	c.samplers = append(c.samplers, s)
	c.mu.Unlock()
	return s
}

func (c *column) stopSamplers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.samplers {
		s.stop()
	}
}

// errMinersEnded is minersim ending before the script was done with it.
var errMinersEnded = errors.New("minersim ended before its run's planned end")

// until sleeps until t. It fails when the context is done or minersim has exited
// (a window cut short is not measured).
func (c *column) until(t time.Time, m *miners) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	case <-m.done:
		return fmt.Errorf("%w, %v early (%v before the mark awaited; %v)%s", errMinersEnded,
			time.Until(m.runEnd()).Round(time.Millisecond), time.Until(t).Round(time.Millisecond), werrText(m.waitError()), m.stderr.tailText())
	}
}

// window is the measured part of the run: from shortly after the ramp to shortly
// before the end, so that neither connecting nor closing is counted.
func (c *column) window(m *miners) (from, to time.Time) {
	settle := min(settleMax, c.plan.duration/5)
	margin := min(marginMax, c.plan.duration/10)
	return m.rampEnd().Add(settle), m.runEnd().Add(-margin)
}

// connected is the server's count of miners connected now: hashrelay_miners_connected,
// or poolsim's sessions.
func (c *column) connected(r *relay, p *pool) (int, error) {
	if r != nil {
		mt, err := r.metrics(c.ctx)
		return int(mt.sum("hashrelay_miners_connected")), err
	}
	st, err := p.stats(c.ctx)
	return st.Sessions, err
}

// checked is the server's count of shares checked so far: hashrelay_shares_total
// (every verdict), or poolsim's submits.
func (c *column) checked(r *relay, p *pool) (float64, error) {
	if r != nil {
		mt, err := r.metrics(c.ctx)
		return mt.sum("hashrelay_shares_total"), err
	}
	st, err := p.stats(c.ctx)
	return float64(st.SubmitsTotal), err
}

// setProxyReply records the proxy's own reply time, p50 and p99 in ms, from its
// histogram between two scrapes.
func (c *column) setProxyReply(before, after promText) {
	for _, q := range []struct {
		key string
		q   float64
	}{{"proxy_reply_p50", 0.5}, {"proxy_reply_p99", 0.99}} {
		if v, ok := histogramQuantile(before, after, "hashrelay_miner_reply_seconds", q.q); ok {
			c.set(q.key, v*1000)
		}
	}
}

// setLatency records a minersim latency summary under prefix_p50 and so on.
func (c *column) setLatency(prefix string, l latency) {
	if l.N == 0 {
		c.note("%s: minersim measured no latencies", prefix)
		return
	}
	c.set(prefix+"_p50", l.P50)
	c.set(prefix+"_p90", l.P90)
	c.set(prefix+"_p99", l.P99)
	c.set(prefix+"_max", l.Max)
}

// setCPU records the CPU used between a and b, and the RSS at b and its peak over
// the whole run, under key_cpu, key_rss and key_rss_peak.
func (c *column) setCPU(key string, s *sampler, a, b procSample, m *miners) {
	c.set(key+"_cpu", cpuPercent(a, b))
	c.set(key+"_rss", float64(b.rssKiB)/1024)
	if peak := s.peakRSS(m.started, time.Now()); peak > 0 {
		c.set(key+"_rss_peak", float64(peak)/1024)
	}
}

// checkDuration is a scenario's check for the shortest duration its script needs.
func checkDuration(least time.Duration) func(plan) error {
	return func(p plan) error {
		if p.duration < least {
			return fmt.Errorf("duration: %v: want at least %v for this scenario's script", p.duration, least)
		}
		return nil
	}
}
