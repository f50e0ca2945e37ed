package proxy

import (
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestJobRefreshWhilePoolQuiet: firmware stops hashing after 120 s without a job, so
// a quiet pool's work is resent under a new job id, and shares on the resent jobs
// are still valid at the pool.
func TestJobRefreshWhilePoolQuiet(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 4e-6}) // one job, never another
	srv := newTestProxy(t, Config{JobRefresh: 200 * time.Millisecond}, pool)
	miners, stop := runMiners(t, srv.Addr().String(), 2, stratumtest.MinerConfig{HashRate: 40000})
	waitFor(t, 10*time.Second, "five jobs at each miner", func() bool {
		for _, m := range miners {
			if m.Stats().JobsReceived < 5 {
				return false
			}
		}
		return true
	})
	stop()
	ps := pool.Stats()
	if ps.Jobs > 1 {
		t.Fatalf("pool sent %d jobs; want 1 (a quiet pool)", ps.Jobs)
	}
	if ps.Verdicts[stratum.VerdictAccepted] == 0 || ps.Rejected() != 0 {
		t.Errorf("pool accepted %d, rejected %d; want shares on refreshed jobs accepted", ps.Verdicts[stratum.VerdictAccepted], ps.Rejected())
	}
}
