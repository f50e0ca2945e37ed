package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// testLogger logs to the test output when -v and HASHRELAY_TEST_LOG are set.
func testLogger(t testing.TB) zerolog.Logger {
	if os.Getenv("HASHRELAY_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

// newTestPool starts a simulated pool closed with the test.
func newTestPool(t testing.TB, cfg stratumtest.PoolConfig) *stratumtest.Pool {
	t.Helper()
	p, err := stratumtest.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// newTestProxy starts HashRelay on loopback in front of the given pools.
func newTestProxy(t testing.TB, cfg Config, pools ...*stratumtest.Pool) *Server {
	t.Helper()
	return newTestProxyPrep(t, cfg, nil, pools...)
}

// runMiners runs n simulated miners against addr until the returned stop is called,
// which waits for them and returns their final stats.
func runMiners(t testing.TB, addr string, n int, cfg stratumtest.MinerConfig) (miners []*stratumtest.Miner, stop func() []stratumtest.MinerStats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c := cfg
		c.Addr = addr
		if c.Worker == "" {
			c.Worker = fmt.Sprintf("farm.rig%03d", i)
		} else {
			c.Worker = fmt.Sprintf("%s%03d", cfg.Worker, i)
		}
		m := stratumtest.NewMiner(c)
		miners = append(miners, m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = m.Run(ctx)
		}()
	}
	var once sync.Once
	var stats []stratumtest.MinerStats
	stop = func() []stratumtest.MinerStats {
		once.Do(func() {
			cancel()
			wg.Wait()
			for _, m := range miners {
				stats = append(stats, m.Stats())
			}
		})
		return stats
	}
	t.Cleanup(func() { stop() })
	return miners, stop
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// workersAPI returns every worker from /api/v1/workers, page by page.
func workersAPI(t testing.TB, s *Server) []WorkerStatus {
	t.Helper()
	var all []WorkerStatus
	for page := 1; ; page++ {
		resp, err := http.Get(fmt.Sprintf("http://%s/api/v1/workers?per_page=1000&page=%d", s.HTTPAddr(), page))
		if err != nil {
			t.Fatal(err)
		}
		var body WorkerPage
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, body.Workers...)
		if len(body.Workers) == 0 || len(all) >= body.Total {
			return all
		}
	}
}

func TestProxyForwardsValidShares(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 4e-6, JobInterval: 500 * time.Millisecond})
	srv := newTestProxy(t, Config{MinersPerUpstream: 8}, pool)
	_, stop := runMiners(t, srv.Addr().String(), 20, stratumtest.MinerConfig{HashRate: 20000, VersionRolling: true})

	waitFor(t, 20*time.Second, "100 shares accepted at the pool", func() bool {
		return pool.Stats().Verdicts[stratum.VerdictAccepted] >= 100
	})
	stats := stop()
	time.Sleep(200 * time.Millisecond) // last upstream answers

	var minerAccepted, minerRejected uint64
	for i, s := range stats {
		minerAccepted += s.Accepted
		minerRejected += s.Rejected
		if s.Accepted == 0 {
			t.Errorf("miner %d: no share accepted", i)
		}
	}
	ps := pool.Stats()
	for v, n := range ps.Verdicts {
		if stratum.Verdict(v) != stratum.VerdictAccepted && n > 0 {
			t.Errorf("pool saw %d shares with verdict %v; want every forwarded share valid", n, stratum.Verdict(v))
		}
	}
	if ps.Sessions > 3 || ps.Sessions < 3 {
		t.Errorf("pool sessions = %d; want 3 (20 miners, 8 per upstream session)", ps.Sessions)
	}
	if minerRejected > 0 {
		t.Errorf("miners saw %d rejects; want 0", minerRejected)
	}
	// The proxy's per-worker accounts agree with the pool: every share it forwarded
	// was answered, and accepted.
	var fwd, upAcc uint64
	for _, w := range workersAPI(t, srv) {
		fwd += w.Forwarded
		upAcc += w.UpstreamAccepted
	}
	if fwd != upAcc || upAcc != ps.Verdicts[stratum.VerdictAccepted] {
		t.Errorf("forwarded %d, upstream accepted %d, pool accepted %d; want all equal", fwd, upAcc, ps.Verdicts[stratum.VerdictAccepted])
	}
	if minerAccepted <= upAcc {
		t.Errorf("miners accepted %d <= upstream %d; want local difficulty below the pool's", minerAccepted, upAcc)
	}
	t.Logf("miners accepted %d, forwarded %d, pool accepted %d", minerAccepted, fwd, ps.Verdicts[stratum.VerdictAccepted])
}
