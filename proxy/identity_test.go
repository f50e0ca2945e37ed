package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// identityRun runs miners through a proxy in the given identity mode until the pool
// has accepted `want` shares, and returns the pool's stats and the proxy's workers.
func identityRun(t *testing.T, mode Identity, miners int, refuse string) (stratumtest.PoolStats, []WorkerStatus) {
	t.Helper()
	pool := newTestPool(t, stratumtest.PoolConfig{
		Difficulty: 4e-6,
		Authorize:  func(user, _ string) bool { return refuse == "" || user != refuse },
	})
	srv := newTestProxy(t, Config{Identity: mode, MinersPerUpstream: 8}, pool)
	_, stop := runMiners(t, srv.Addr().String(), miners, stratumtest.MinerConfig{HashRate: 40000, Worker: "farm.rig"})
	waitFor(t, 15*time.Second, "every miner's shares at the pool", func() bool {
		return pool.Stats().Verdicts[stratum.VerdictAccepted] >= uint64(12*miners)
	})
	stop()
	waitFor(t, 5*time.Second, "every forwarded share answered", func() bool {
		var fwd, answered uint64
		for _, w := range workersAPI(t, srv) {
			fwd += w.Forwarded
			answered += w.UpstreamAccepted
			for _, n := range w.UpstreamRejected {
				answered += n
			}
		}
		return fwd == answered
	})
	return pool.Stats(), workersAPI(t, srv)
}

func TestIdentityWorker(t *testing.T) {
	ps, workers := identityRun(t, IdentityWorker, 4, "")
	if ps.Sessions != 1 {
		t.Errorf("pool sessions = %d; want 1 (4 miners share one session)", ps.Sessions)
	}
	// Shares reach the pool under each miner's own name, the pool account only
	// while a name's authorize is still in flight.
	for _, w := range workers {
		got := ps.Workers[w.Name].Verdicts[stratum.VerdictAccepted]
		if got == 0 {
			t.Errorf("pool accepted no share under %s; want the miner's own name used", w.Name)
		}
	}
	if n := ps.Workers["acct0"].Verdicts[stratum.VerdictAccepted]; n > uint64(len(workers)) {
		t.Errorf("pool accepted %d shares under the pool account; want at most a first share per worker", n)
	}
}

func TestIdentityPassthrough(t *testing.T) {
	ps, workers := identityRun(t, IdentityPassthrough, 3, "")
	if ps.Sessions != 3 {
		t.Errorf("pool sessions = %d; want 3 (one per miner)", ps.Sessions)
	}
	for _, w := range workers {
		if ps.Workers[w.Name].Verdicts[stratum.VerdictAccepted] == 0 {
			t.Errorf("pool accepted no share under %s", w.Name)
		}
	}
}

// TestIdentityRefusedWorker: a name the pool refuses falls back to the pool account;
// its shares are still forwarded and accepted, never lost.
func TestIdentityRefusedWorker(t *testing.T) {
	ps, workers := identityRun(t, IdentityWorker, 2, "farm.rig001")
	if n := ps.Workers["farm.rig001"].Verdicts[stratum.VerdictAccepted]; n != 0 {
		t.Errorf("pool accepted %d shares under the refused name; want 0", n)
	}
	if ps.Workers["acct0"].Verdicts[stratum.VerdictAccepted] == 0 {
		t.Errorf("pool accepted no share under the pool account; want the refused worker's shares there")
	}
	for _, w := range workers {
		if strings.HasSuffix(w.Name, "001") && (w.UpstreamAccepted == 0 || len(w.SharesLost) > 0) {
			t.Errorf("refused worker: upstream accepted %d, lost %v; want accepted under the pool account, none lost", w.UpstreamAccepted, w.SharesLost)
		}
	}
}
