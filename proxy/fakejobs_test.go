package proxy

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestFakeJobs: with -fake-jobs, miners keep getting (unpaid, metered) work through
// an outage, nothing of it reaches a pool, and without the option they get none.
func TestFakeJobs(t *testing.T) {
	for _, on := range []bool{false, true} {
		pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 4e-6})
		srv := newTestProxy(t, Config{FakeJobs: on, JobRefresh: 200 * time.Millisecond, ResumeWindow: 100 * time.Millisecond}, pool)
		miners, stop := runMiners(t, srv.Addr().String(), 2, stratumtest.MinerConfig{HashRate: 40000})
		waitFor(t, 10*time.Second, "shares at the pool", func() bool {
			return pool.Stats().Verdicts[stratum.VerdictAccepted] > 4
		})
		before := miners[0].Stats().JobsReceived
		accepted := pool.Stats().Verdicts[stratum.VerdictAccepted]
		_ = pool.Close() // the only pool is gone
		time.Sleep(1500 * time.Millisecond)
		jobs := miners[0].Stats().JobsReceived - before
		stats := stop()
		fakeJobs := testutil.ToFloat64(srv.metrics.FakeJobs)
		fakeShares := testutil.ToFloat64(srv.metrics.FakeShares)
		if !on {
			if jobs != 0 || fakeJobs != 0 {
				t.Errorf("fake jobs off: miners got %d jobs, fake_jobs_total %v during the outage; want none", jobs, fakeJobs)
			}
			continue
		}
		if jobs < 3 || fakeJobs < 3 {
			t.Errorf("fake jobs on: miners got %d jobs, fake_jobs_total %v in 1.5 s; want one every 200 ms", jobs, fakeJobs)
		}
		if fakeShares == 0 {
			t.Errorf("fake_shares_total = 0; want the miners' work on fake jobs checked and counted")
		}
		var lost float64
		for _, w := range workersAPI(t, srv) {
			for _, n := range w.SharesLost {
				lost += float64(n)
			}
		}
		if got := pool.Stats().Verdicts[stratum.VerdictAccepted]; got != accepted {
			t.Errorf("pool accepted %d shares after closing; want %d", got, accepted)
		}
		for i, s := range stats {
			if s.Rejected != 0 {
				t.Errorf("miner %d: %d rejects; want fake-job shares answered true after the check", i, s.Rejected)
			}
		}
		t.Logf("outage: %d jobs, fake_jobs_total %v, fake_shares_total %v, shares lost at the outage %v", jobs, fakeJobs, fakeShares, lost)
	}
}
