package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// reconnectTarget is where client.reconnect sends the miners at shutdown: it records
// when each one arrives and holds the connection (the miner waits for replies that
// never come) until the test ends.
type reconnectTarget struct {
	ln net.Listener

	mu    sync.Mutex
	at    []time.Time
	conns []net.Conn
}

func newReconnectTarget(t *testing.T) *reconnectTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &reconnectTarget{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.at = append(r.at, time.Now())
			r.conns = append(r.conns, c)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { r.close(); <-done })
	return r
}

func (r *reconnectTarget) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
}

func (r *reconnectTarget) arrivals() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.at)
}

// waitGoroutines polls until the goroutine count is back within slack of baseline,
// and fails with the stacks of those left when it does not come back.
func waitGoroutines(t *testing.T, baseline, slack int) {
	t.Helper()
	e2eHTTP.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections() // workersAPI's
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > baseline+slack {
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines; want at most %d (baseline %d):\n%s", runtime.NumGoroutine(), baseline+slack, baseline, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShutdownLosesNoShare stops HashRelay under load while the pool sits on
// forwarded shares: the listener refuses new miners at once, /readyz turns 503, the
// miners are told to reconnect elsewhere at times spread over ReconnectJitter, and
// Shutdown returns within ShutdownTimeout only after the pool has answered every
// forwarded share. No goroutine is left behind.
func TestShutdownLosesNoShare(t *testing.T) {
	const (
		miners   = 40
		jitter   = 800 * time.Millisecond
		stall    = 1500 * time.Millisecond // outlasts the reconnect spread
		deadline = 5 * time.Second
	)
	baseline := runtime.NumGoroutine()
	target := newReconnectTarget(t)
	pool, err := stratumtest.NewPool(stratumtest.PoolConfig{Difficulty: 2e-7, JobInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	cfg := Config{
		MinersPerUpstream:   16,
		StartDifficulty:     1e-7,
		ReconnectOnShutdown: target.ln.Addr().String(),
		ReconnectJitter:     jitter,
		ShutdownTimeout:     deadline,
	}
	srv := newTestProxy(t, cfg, pool)
	addr := srv.Addr().String()
	ctx, stopMiners := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ms []*stratumtest.Miner
	for i := range miners {
		m := stratumtest.NewMiner(stratumtest.MinerConfig{Addr: addr, Worker: fmt.Sprintf("farm.rig%02d", i), HashRate: 3000, VersionRolling: i%2 == 0})
		ms = append(ms, m)
		wg.Go(func() { _ = m.Run(ctx) })
	}
	defer func() { stopMiners(); wg.Wait() }()

	waitFor(t, 15*time.Second, "200 shares accepted at the pool", func() bool { return pool.Stats().Accepted() >= 200 })
	// The pool stops answering: what HashRelay forwards from now on waits for it.
	stalled := time.Now()
	pool.StallFor(stall)
	waitFor(t, 2*time.Second, "shares waiting for the stalled pool", func() bool { return srv.stats.unanswered() >= 5 })
	inFlight := srv.stats.unanswered()

	start := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	waitFor(t, time.Second, "/readyz 503 once Shutdown begins", func() bool {
		code, body := e2eGet(t, srv, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("a new miner connected %v into the shutdown; want the dial refused", time.Since(start))
	}
	var took time.Duration
	select {
	case err := <-done:
		took = time.Since(start)
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(3 * deadline):
		t.Fatal("Shutdown did not return")
	}
	if took > deadline {
		t.Errorf("Shutdown took %v; want it within ShutdownTimeout %v", took, deadline)
	}
	if waited := time.Since(stalled); waited < stall {
		t.Errorf("Shutdown returned %v after the pool stalled; want it to wait for the pool's answers (%v)", waited, stall)
	}

	// Every miner was sent away, at times spread over the jitter window.
	waitFor(t, 2*time.Second, "every miner at the reconnect target", func() bool { return len(target.arrivals()) >= miners })
	at := target.arrivals()
	first, last := at[0].Sub(start), at[len(at)-1].Sub(start)
	if first > jitter/4 || last < jitter/2 || last > jitter+time.Second {
		t.Errorf("reconnects arrived from %v to %v after Shutdown began; want them spread over about %v", first, last, jitter)
	}
	perWindow := map[time.Duration]int{}
	for _, a := range at {
		perWindow[a.Sub(start)/(jitter/8)]++
	}
	for w, n := range perWindow {
		if n > miners/4 {
			t.Errorf("%d of %d reconnects arrived within %v (window %d); want them spread evenly", n, miners, jitter/8, w)
		}
	}
	for i, m := range ms {
		if st := m.Stats(); st.Reconnects != 1 || st.Addr != target.ln.Addr().String() {
			t.Errorf("miner %d: %d reconnects, now at %s; want 1, at %s", i, st.Reconnects, st.Addr, target.ln.Addr())
		}
	}

	// Nothing was lost: every share forwarded was answered, and accepted.
	ps := pool.Stats()
	tot := e2eSum(srv.accounts.list())
	if tot.forwarded != ps.Accepted() || tot.upAccepted != ps.Accepted() || tot.upRejected != 0 || tot.lost != 0 || srv.stats.unanswered() != 0 {
		t.Errorf("forwarded %d, upstream accepted %d, rejected %d, lost %d, unanswered %d; pool accepted %d: want forwarded = accepted = the pool's, none rejected, lost or unanswered",
			tot.forwarded, tot.upAccepted, tot.upRejected, tot.lost, srv.stats.unanswered(), ps.Accepted())
	}
	if ps.Rejected() != 0 {
		t.Errorf("pool rejected %d shares; want 0", ps.Rejected())
	}
	fams, err := srv.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		switch f.GetName() {
		case "hashrelay_shares_lost_total", "hashrelay_miners_connected", "hashrelay_upstream_up":
			for _, m := range f.GetMetric() {
				if v := m.GetCounter().GetValue() + m.GetGauge().GetValue(); v != 0 {
					t.Errorf("%s%v = %v after shutdown; want 0", f.GetName(), m.GetLabel(), v)
				}
			}
		}
	}
	t.Logf("shutdown took %v with %d shares in flight at its start; %d reconnects from %v to %v; pool accepted %d, HashRelay forwarded %d",
		took.Round(time.Millisecond), inFlight, len(at), first.Round(time.Millisecond), last.Round(time.Millisecond), ps.Accepted(), tot.forwarded)

	stopMiners()
	wg.Wait()
	target.close()
	pool.Close()
	waitGoroutines(t, baseline, 2)
}

// TestShutdownIdle: with no miner, Shutdown returns at once, whether the pool is up
// or unreachable (a slot backing off or dialing), and leaves no goroutine behind.
func TestShutdownIdle(t *testing.T) {
	for _, reachable := range []bool{true, false} {
		name := "pool up"
		if !reachable {
			name = "no pool"
		}
		t.Run(name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			cfg := Config{ReconnectOnShutdown: "127.0.0.1:1", ReconnectJitter: time.Second, BackoffMin: time.Second, BackoffMax: 2 * time.Second}
			var pool *stratumtest.Pool
			if reachable {
				p, err := stratumtest.NewPool(stratumtest.PoolConfig{})
				if err != nil {
					t.Fatal(err)
				}
				pool = p
				defer p.Close()
			} else {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				u, _ := ParsePoolURL("stratum+tcp://a:x@" + l.Addr().String())
				l.Close()
				cfg.Upstreams = []PoolURL{u}
			}
			var srv *Server
			if reachable {
				srv = newTestProxy(t, cfg, pool)
				waitFor(t, 5*time.Second, "/readyz 200", func() bool {
					code, _ := e2eGet(t, srv, "/readyz")
					return code == http.StatusOK
				})
			} else {
				srv = newTestProxy(t, cfg)
				time.Sleep(50 * time.Millisecond) // the slot fails its dial and backs off
			}
			start := time.Now()
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 250*time.Millisecond {
				t.Errorf("Shutdown with no miner took %v; want it prompt", took)
			}
			if _, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second); err == nil {
				t.Error("the miner port still accepts after Shutdown")
			}
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Errorf("second Shutdown: %v; want nil", err)
			}
			if pool != nil {
				pool.Close()
			}
			waitGoroutines(t, baseline, 2)
		})
	}
}

// TestShutdownUnansweredShares: a pool that never answers again costs at most
// ShutdownTimeout, and its unanswered shares are counted, not hidden.
func TestShutdownUnansweredShares(t *testing.T) {
	const deadline = 600 * time.Millisecond
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 2e-7})
	srv := newTestProxy(t, Config{StartDifficulty: 1e-7, ShutdownTimeout: deadline}, pool)
	_, stop := runMiners(t, srv.Addr().String(), 4, stratumtest.MinerConfig{HashRate: 20000})
	waitFor(t, 10*time.Second, "20 shares accepted at the pool", func() bool { return pool.Stats().Accepted() >= 20 })
	pool.Stall()
	defer pool.Resume()
	// A share the pool read before Stall may still be answered; one forwarded
	// after Stall returned cannot be, so wait for three of those.
	atStall := testutil.ToFloat64(srv.metrics.SharesForwarded)
	waitFor(t, 5*time.Second, "shares forwarded to the stalled pool", func() bool {
		return testutil.ToFloat64(srv.metrics.SharesForwarded) >= atStall+3
	})
	// And every answer the pool gave before its stall has been read: on a loaded
	// machine the proxy may still be behind, and Shutdown's deadline would count
	// an answer waiting in the socket as never given.
	waitFor(t, 5*time.Second, "the answers sent before the stall counted", func() bool {
		return e2eSum(srv.accounts.list()).upAccepted == pool.Stats().Accepted()
	})
	start := time.Now()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < deadline || took > deadline+time.Second {
		t.Errorf("Shutdown took %v; want about ShutdownTimeout %v", took, deadline)
	}
	stop()
	tot := e2eSum(srv.accounts.list())
	unanswered := uint64(0)
	for _, w := range srv.accounts.list() {
		for r, n := range w.UpstreamRejected {
			if strings.HasPrefix(r, "no answer") {
				unanswered += n
			}
		}
	}
	if unanswered == 0 || tot.forwarded != tot.upAccepted+tot.upRejected || srv.stats.unanswered() != 0 {
		t.Errorf("forwarded %d = accepted %d + rejected %d (%d never answered), unanswered now %d; want the stalled shares counted as never answered",
			tot.forwarded, tot.upAccepted, tot.upRejected, unanswered, srv.stats.unanswered())
	}
	if ps := pool.Stats(); ps.Verdicts[stratum.VerdictAccepted] != tot.upAccepted {
		t.Errorf("pool accepted %d; HashRelay counted %d", ps.Accepted(), tot.upAccepted)
	}
}
