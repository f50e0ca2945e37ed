package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// rollingInstance is one HashRelay instance of the rolling-restart test: the
// addresses and state directory it keeps across restarts, and its current Server.
type rollingInstance struct {
	name         string
	listen, http string // fixed after the first start
	stateDir     string
	srv          *Server
	lost         float64 // shares_lost_total of the runs before srv
}

// start starts the instance (again) on its addresses with its state directory,
// retrying briefly while a port is still held.
func (in *rollingInstance) start(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Listen = orDefault(in.listen, "127.0.0.1:0")
	cfg.HTTP = orDefault(in.http, "127.0.0.1:0")
	cfg.StateDir = in.stateDir
	deadline := time.Now().Add(3 * time.Second)
	for {
		s, err := New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		err = s.Start(context.Background())
		if err == nil {
			in.srv = s
			in.listen, in.http = s.Addr().String(), s.HTTPAddr()
			t.Cleanup(func() { shutdownNow(t, s) })
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("starting %s on %s: %v", in.name, cfg.Listen, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// summary returns the instance's /api/v1/summary.
func (in *rollingInstance) summary(t *testing.T) Summary {
	t.Helper()
	code, body := e2eGet(t, in.srv, "/api/v1/summary")
	var sum Summary
	if err := json.Unmarshal([]byte(body), &sum); code != http.StatusOK || err != nil {
		t.Fatalf("%s: /api/v1/summary: %d %v", in.name, code, err)
	}
	return sum
}

// TestRollingRestartLosesNoShare restarts two HashRelay instances behind a TCP
// balancer one after the other, under load, as a rolling deploy does: each gets
// what SIGTERM gives the daemon (cmd/hashrelay calls Server.Shutdown), then a new
// instance starts on the same ports with the same state directory. The two
// "instances" are two proxy.Server values in this process, each with its own
// listeners, upstream connections and bbolt store; the balancer (balancer_test.go)
// polls their /readyz and splices miners to a ready one.
//
// At each drain: /readyz turns 503 at once and the balancer sends no new miner
// there; the instance's miners get client.reconnect (to the balancer) at times
// spread over ReconnectJitter and come back through it to the other instance;
// Shutdown returns nil within ShutdownTimeout; the new instance restores the
// worker counters the old one saved. At the end, from the pool's and the miners'
// counts: every miner is connected, every share a miner was told was accepted was
// accepted by the proxy, forwarded and accepted by the pool, and none was lost.
func TestRollingRestartLosesNoShare(t *testing.T) {
	if testing.Short() {
		t.Skip("rolling restart under load takes about 5 s")
	}
	const (
		miners          = 40
		shareRate       = 20 // per miner per second
		jitter          = 500 * time.Millisecond
		shutdownTimeout = 4 * time.Second
	)
	pool := foPool(t, stratumtest.PoolConfig{})
	up, err := ParsePoolURL("stratum+tcp://acct0:x@" + pool.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// foConfig's difficulty is the pool's: every share the proxy accepts must be
	// forwarded (failover_test.go). Vardiff is frozen there.
	cfg := foConfig()
	cfg.Upstreams = []PoolURL{up}
	cfg.MinersPerUpstream = 16
	cfg.MinDifficulty = foDiff / 10
	cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	// The simulated pool sends no new job unless asked: foConfig's 5 s job timeout
	// would take it for dead partway through a slow run.
	cfg.JobTimeout = DefaultJobTimeout
	cfg.ReconnectJitter = jitter
	cfg.ShutdownTimeout = shutdownTimeout

	insts := []*rollingInstance{{name: "A", stateDir: t.TempDir()}, {name: "B", stateDir: t.TempDir()}}
	for _, in := range insts {
		in.start(t, cfg) // ReconnectOnShutdown set below, once the balancer is up
	}
	bal := newTestBalancer(t, [2]string{insts[0].listen, insts[0].http}, [2]string{insts[1].listen, insts[1].http})
	cfg.ReconnectOnShutdown = bal.Addr()
	for _, in := range insts {
		// Restart once more, now that client.reconnect has somewhere to send miners.
		shutdownNow(t, in.srv)
		in.start(t, cfg)
	}
	waitFor(t, 5*time.Second, "both instances ready at the balancer", func() bool { return bal.ready(0) && bal.ready(1) })

	minerCfg := stratumtest.MinerConfig{ShareRate: shareRate, ReconnectDelay: 20 * time.Millisecond, MaxReconnectDelay: 200 * time.Millisecond}
	rolling := minerCfg
	rolling.Worker, rolling.VersionRolling = "farm.vr", true
	plain := minerCfg
	plain.Worker = "farm.rig"
	msR, stopR := runMiners(t, bal.Addr(), miners/2, rolling)
	msP, stopP := runMiners(t, bal.Addr(), miners/2, plain)
	var names []string // of stats' miners, in order
	for i := range msR {
		names = append(names, fmt.Sprintf("%s%03d", rolling.Worker, i))
	}
	for i := range msP {
		names = append(names, fmt.Sprintf("%s%03d", plain.Worker, i))
	}
	stopMiners := func() []stratumtest.MinerStats { return append(stopR(), stopP()...) }

	connected := func(in *rollingInstance) int {
		in.srv.mu.Lock()
		defer in.srv.mu.Unlock()
		return len(in.srv.sessions)
	}
	waitFor(t, 10*time.Second, "every miner connected, at least a quarter on each instance", func() bool {
		a, b := connected(insts[0]), connected(insts[1])
		return a >= miners/4 && b >= miners/4 && a+b == miners
	})
	begin := time.Now()
	waitFor(t, 15*time.Second, "300 shares accepted at the pool, for a second", func() bool {
		return foAccepted(pool) >= 300 && time.Since(begin) >= time.Second
	})

	for i, in := range insts {
		other := 1 - i
		old := in.srv
		onOld := connected(in)
		servedBefore := e2eSum(old.accounts.list()).accepted

		// /readyz turning 503 at once is TestShutdownLosesNoShare's to show (a
		// stalled pool makes its drain long enough to look at); here the balancer
		// acting on it is checked: no miner is sent to the draining instance.
		t0 := time.Now()
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*shutdownTimeout)
			defer cancel()
			done <- old.Shutdown(ctx) // what SIGTERM does
		}()
		var took time.Duration
		select {
		case err := <-done:
			took = time.Since(t0)
			if err != nil {
				t.Fatalf("%s: Shutdown: %v", in.name, err)
			}
		case <-time.After(3 * shutdownTimeout):
			t.Fatalf("%s: Shutdown did not return", in.name)
		}
		if took > shutdownTimeout {
			t.Errorf("%s: Shutdown took %v; want it within ShutdownTimeout %v", in.name, took, shutdownTimeout)
		}

		in.lost += foMetric(t, old, "shares_lost_total")
		saved := len(old.accounts.list())
		// Until told to leave, its miners were served: shares accepted and forwarded.
		served := e2eSum(old.accounts.list()).accepted - servedBefore
		if served == 0 {
			t.Errorf("%s accepted no share during its drain; want its miners served until they leave", in.name)
		}

		// Its miners came back through the balancer, to the other instance only, at
		// times spread over the jitter window.
		waitFor(t, 3*time.Second, fmt.Sprintf("%d miners of %s back through the balancer", onOld, in.name), func() bool {
			n := 0
			for _, a := range bal.arrivalsSince(t0) {
				if a.backend == other {
					n++
				}
			}
			return n >= onOld
		})
		at := bal.arrivalsSince(t0)
		for _, a := range at {
			if a.backend != other {
				t.Errorf("%s draining: a miner arriving %v into the drain was sent to backend %d; want %s", in.name, a.at.Sub(t0), a.backend, insts[other].name)
			}
		}
		first, last := at[0].at.Sub(t0), at[len(at)-1].at.Sub(t0)
		if onOld >= 4 && (last-first < jitter/4 || last > jitter+time.Second) {
			t.Errorf("%s: %d reconnects arrived from %v to %v into the drain; want them spread over about %v", in.name, len(at), first, last, jitter)
		}
		t.Logf("%s drained in %v, %d shares accepted meanwhile: %d miners moved to %s, arriving from %v to %v",
			in.name, took.Round(time.Millisecond), served, onOld, insts[other].name, first.Round(time.Millisecond), last.Round(time.Millisecond))

		// The new instance, on the same ports, restores what the old one saved.
		in.start(t, cfg)
		if st := in.summary(t).StateStore; st.LoadedWorkers != saved || saved == 0 || st.LastError != "" {
			t.Errorf("%s restarted: state_store %+v; want %d workers loaded, no error", in.name, st, saved)
		}
		waitFor(t, 5*time.Second, in.name+" ready at the balancer again", func() bool { return bal.ready(i) })
		// The load carries on through the restart, for a second more.
		mark, restarted := foAccepted(pool), time.Now()
		waitFor(t, 10*time.Second, "200 more shares accepted at the pool", func() bool {
			return foAccepted(pool) >= mark+200 && time.Since(restarted) >= time.Second
		})
	}

	// Every miner is back and connected; then the load stops and settles.
	waitFor(t, 5*time.Second, "every miner connected at the end", func() bool {
		return connected(insts[0])+connected(insts[1]) == miners
	})
	elapsed := time.Since(begin)
	conns := map[string]int{}
	for _, in := range insts {
		for _, w := range workersAPI(t, in.srv) {
			conns[w.Name] += w.Connections
		}
	}
	stats := stopMiners()
	for _, in := range insts {
		foSettle(t, in.srv)
	}

	// Per worker, summed over both instances (each restored its earlier run's counts):
	// the identities accepted = forwarded + lost and forwarded = upstream accepted +
	// rejected hold (foSum), and the proxy accepted every share its miner was told
	// was accepted, plus at most the shares whose answer the miner never read (it
	// drops its connection as soon as it reads client.reconnect).
	type counts struct{ accepted, upAccepted uint64 }
	byWorker := map[string]counts{}
	var upAccepted, upRejected, lost uint64
	var lostMetric float64
	rejectedBy := map[string]uint64{}
	for _, in := range insts {
		tot := foSum(t, in.srv)
		upAccepted += tot.upAccepted
		upRejected += tot.upRejected
		for r, n := range tot.upRejectedBy {
			rejectedBy[r] += n
		}
		lost += tot.lost
		lostMetric += in.lost + foMetric(t, in.srv, "shares_lost_total")
		for _, w := range workersAPI(t, in.srv) {
			c := byWorker[w.Name]
			c.accepted += w.Accepted
			c.upAccepted += w.UpstreamAccepted
			byWorker[w.Name] = c
		}
	}
	var minerAccepted, unanswered, reconnects, connEnds uint64
	for i, st := range stats {
		name := names[i]
		minerAccepted += st.Accepted
		unanswered += st.Unanswered
		reconnects += st.Reconnects
		c := byWorker[name]
		if c.accepted < st.Accepted || c.accepted > st.Accepted+st.Unanswered {
			t.Errorf("%s: the proxies accepted %d; its miner was told %d accepted and has %d unanswered", name, c.accepted, st.Accepted, st.Unanswered)
		}
		if c.upAccepted != c.accepted {
			t.Errorf("%s: the proxies accepted %d, the pool %d; want every accepted share accepted upstream", name, c.accepted, c.upAccepted)
		}
		if st.Reconnects < 1 || conns[name] < 1 {
			t.Errorf("%s: %d reconnects, %d connections at the end; want at least 1 each", name, st.Reconnects, conns[name])
		}
		// A connection may end without the client.reconnect on a loaded machine (a
		// miner registered as the drain closed its miners): it redials after its
		// back-off, which the checks above cover. Any other error is a failure.
		for e, n := range st.Errors {
			if e == "EOF" || strings.Contains(e, "connection reset") {
				connEnds += n
				continue
			}
			t.Errorf("%s: error %q ×%d; want none but connection ends", name, e, n)
		}
		if st.DialFailures > 0 || st.Rejected > 0 {
			t.Errorf("%s: %d dial failures, %d rejected; want none", name, st.DialFailures, st.Rejected)
		}
	}
	ps := pool.Stats()
	if ps.Accepted() != upAccepted || ps.Rejected() != 0 || upRejected != 0 || lost != 0 || lostMetric != 0 {
		t.Errorf("pool accepted %d, rejected %d; the proxies: upstream accepted %d, rejected %d %v, lost %d (shares_lost_total %v); want the pool's accepted = the proxies', none rejected or lost",
			ps.Accepted(), ps.Rejected(), upAccepted, upRejected, rejectedBy, lost, lostMetric)
	}
	if minerAccepted > ps.Accepted() {
		t.Errorf("miners were told %d shares accepted, the pool accepted %d", minerAccepted, ps.Accepted())
	}
	t.Logf("%v under load, 2 restarts: miners told %d accepted (%d unanswered at a reconnect), pool accepted %d; %d reconnects, %d connections ended without one",
		elapsed.Round(time.Millisecond), minerAccepted, unanswered, ps.Accepted(), reconnects, connEnds)
}
