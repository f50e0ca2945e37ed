package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestCurtailmentSurvivesRestart: a curtailment under way when HashRelay restarts
// (a rolling deploy, a crash) is still in force after it: the same workers stay out
// from their first reconnect, the others mine on, and DELETE restores them as before.
func TestCurtailmentSurvivesRestart(t *testing.T) {
	const (
		diff  = 1e-7
		retry = 200 * time.Millisecond
		n     = 3
	)
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: diff, JobInterval: 2 * time.Second})
	up, err := ParsePoolURL("stratum+tcp://acct:x@" + pool.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cfg := foConfig()
	cfg.Upstreams = []PoolURL{up}
	cfg.JobTimeout = DefaultJobTimeout
	cfg.StartDifficulty, cfg.MinDifficulty = diff, diff
	cfg.Curtail.Models = []PowerModel{
		{Name: "slow", Worker: "slow.*", Watts: 3000},
		{Name: "fast", Worker: "fast.*", Watts: 3000},
	}
	in := &rollingInstance{name: "A", stateDir: t.TempDir()}
	in.start(t, cfg)

	mc := stratumtest.MinerConfig{ReconnectDelay: retry, MaxReconnectDelay: retry}
	mc.Worker, mc.ShareRate = "slow.", 5
	slow, stopSlow := runMiners(t, in.listen, n, mc)
	defer stopSlow()
	mc.Worker, mc.ShareRate = "fast.", 20
	fast, stopFast := runMiners(t, in.listen, n, mc)
	defer stopFast()
	waitFor(t, 10*time.Second, "every worker online with 10 shares", func() bool {
		ws := workersAPI(t, in.srv)
		if len(ws) < 2*n {
			return false
		}
		for _, w := range ws {
			if w.Connections == 0 || w.Accepted < 10 {
				return false
			}
		}
		return true
	})
	if code, body := curtailDo(t, in.srv, http.MethodPost, `{"fraction":0.4,"ramp":"0s"}`, ""); code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, body)
	}
	waitFor(t, 5*time.Second, "the slow workers curtailed", func() bool {
		return getCurtailState(t, in.srv).CurtailedWorkers == n
	})
	before := getCurtailState(t, in.srv)

	shutdownNow(t, in.srv)
	in.start(t, cfg)
	st := getCurtailState(t, in.srv)
	if !st.Active || st.Cause != "api" || st.CurtailedWorkers != n || st.TargetKW != before.TargetKW || st.BaselineKW != before.BaselineKW {
		t.Fatalf("after restart: %+v; want the curtailment as it was: %+v", st, before)
	}

	// The slow miners retry every 200 ms and are refused each time; the fast ones
	// are back at work.
	slowAt, fastAt := acceptedOf(slow), acceptedOf(fast)
	waitFor(t, 10*time.Second, "the fast miners mining after the restart", func() bool {
		return acceptedOf(fast) >= fastAt+n*10
	})
	time.Sleep(4 * retry)
	if got := acceptedOf(slow); got != slowAt {
		t.Errorf("curtailed miners got %d shares accepted after the restart; want none", got-slowAt)
	}
	if st := getCurtailState(t, in.srv); st.CurtailedWorkers != n {
		t.Errorf("curtailed workers %d after the restart settled; want %d", st.CurtailedWorkers, n)
	}

	if code, body := curtailDo(t, in.srv, http.MethodDelete, "", ""); code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, "the slow miners mining again", func() bool {
		return acceptedOf(slow) >= slowAt+n
	})
	waitFor(t, 5*time.Second, "the curtailment over", func() bool {
		st := getCurtailState(t, in.srv)
		return !st.Active && st.CurtailedWorkers == 0
	})
}

// acceptedOf sums the shares the miners were told were accepted.
func acceptedOf(ms []*stratumtest.Miner) uint64 {
	var n uint64
	for _, m := range ms {
		n += m.Stats().Accepted
	}
	return n
}
