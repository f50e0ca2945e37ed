package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestCurtailmentAPI drives /api/v1/curtailment on a running proxy: the admin token
// guards POST and DELETE (401 and nothing changes without it), GET needs none, bad
// bodies answer 400; a zero-ramp POST curtails the least efficient workers at once,
// closing their connections as curtailed and refusing their reconnects; DELETE lets
// them back and they mine again.
func TestCurtailmentAPI(t *testing.T) {
	const (
		diff  = 1e-7
		token = "s3cret"
		retry = 200 * time.Millisecond
		n     = 3
	)
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: diff, JobInterval: 2 * time.Second})
	cfg := foConfig()
	cfg.StartDifficulty, cfg.MinDifficulty = diff, diff
	cfg.AdminToken = token
	// Equal watts, four times the hashrate: the slow workers are the least efficient.
	cfg.Curtail.Models = []PowerModel{
		{Name: "slow", Worker: "slow.*", Watts: 3000},
		{Name: "fast", Worker: "fast.*", Watts: 3000},
	}
	srv := newTestProxy(t, cfg, pool)
	mc := stratumtest.MinerConfig{ReconnectDelay: retry, MaxReconnectDelay: retry}
	mc.Worker, mc.ShareRate = "slow.", 5
	slow, stopSlow := runMiners(t, srv.Addr().String(), n, mc)
	defer stopSlow()
	mc.Worker, mc.ShareRate = "fast.", 20
	_, stopFast := runMiners(t, srv.Addr().String(), n, mc)
	defer stopFast()
	// Enough shares from each that the measured hashrates order them.
	waitFor(t, 10*time.Second, "every worker online with 10 shares", func() bool {
		ws := workersAPI(t, srv)
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

	// 40 % of 18 kW is 7.2 kW: three workers shed 2.7 kW each, the slow ones.
	const post = `{"fraction":0.4,"ramp":"0s"}`
	for _, c := range []struct {
		method, body, token string
		want                int
	}{
		{http.MethodPost, post, "", http.StatusUnauthorized},
		{http.MethodPost, post, "wrong", http.StatusUnauthorized},
		{http.MethodDelete, "", "", http.StatusUnauthorized},
		{http.MethodDelete, "", token + "x", http.StatusUnauthorized},
		{http.MethodPost, `{`, token, http.StatusBadRequest},
		{http.MethodPost, `{}`, token, http.StatusBadRequest},
		{http.MethodPost, `{"fraction":1.5}`, token, http.StatusBadRequest},
		{http.MethodPost, `{"fraction":0.5,"kw":3}`, token, http.StatusBadRequest},
		{http.MethodPost, `{"fraction":0.5,"ramp":"soon"}`, token, http.StatusBadRequest},
		{http.MethodPost, `{"fraction":0.5,"extra":1}`, token, http.StatusBadRequest},
	} {
		if code, body := curtailDo(t, srv, c.method, c.body, c.token); code != c.want {
			t.Errorf("%s %s with token %q: status %d (%s); want %d", c.method, c.body, c.token, code, body, c.want)
		}
	}
	if st := getCurtailState(t, srv); st.Active || st.CurtailedWorkers != 0 || len(st.Causes) != 0 {
		t.Fatalf("after refused calls: %+v; want nothing curtailed", st)
	}

	closed := srv.metrics.ConnectionsClosed.WithLabelValues("curtailed")
	curtailCall(t, srv, http.MethodPost, post, token)
	waitFor(t, 2*curtailTick+time.Second, "the slow workers curtailed and closed", func() bool {
		return testutil.ToFloat64(closed) >= n
	})
	st := getCurtailState(t, srv)
	if !st.Active || st.Cause != "api" || st.CurtailedWorkers != n || st.BaselineKW != 18 {
		t.Errorf("state %+v; want active, cause api, %d curtailed, baseline 18 kW", st, n)
	}
	for _, w := range srv.accounts.curtailLoads() {
		slowWorker := w.Name[:4] == "slow"
		if got := srv.curtail.isCurtailed(w.Name); got != slowWorker {
			t.Errorf("worker %s curtailed %v; want %v", w.Name, got, slowWorker)
		}
	}

	// Refused while curtailed: they retry every retry interval, each retry closed as
	// curtailed, and nothing they submit is accepted.
	time.Sleep(2 * retry) // answers to shares in flight at the close
	accepted := func() (sum uint64) {
		for _, m := range slow {
			sum += m.Stats().Accepted
		}
		return sum
	}
	connects := func() (sum uint64) {
		for _, m := range slow {
			sum += m.Stats().Connects
		}
		return sum
	}
	submitted := func() (sum uint64) {
		for _, m := range slow {
			sum += m.Stats().Submitted
		}
		return sum
	}
	acc0, sub0, conn0, closed0 := accepted(), submitted(), connects(), testutil.ToFloat64(closed)
	time.Sleep(5 * retry)
	if got, sub := accepted(), submitted(); got != acc0 || sub != sub0 {
		t.Errorf("curtailed miners submitted %d shares, %d accepted; want none (no work without an accepted authorize)", sub-sub0, got-acc0)
	}
	if got := connects() - conn0; got < n || got > 6*n {
		t.Errorf("curtailed miners reconnected %d times in %v; want %d..%d (one per %v each)", got, 5*retry, n, 6*n, retry)
	}
	if got := testutil.ToFloat64(closed) - closed0; got < n {
		t.Errorf("%v reconnects closed as curtailed; want at least %d", got, n)
	}

	before := make([]uint64, n)
	for i, m := range slow {
		before[i] = m.Stats().Accepted
	}
	curtailCall(t, srv, http.MethodDelete, "", token)
	waitFor(t, 5*time.Second, "every slow miner mining again", func() bool {
		for i, m := range slow {
			if m.Stats().Accepted < before[i]+2 {
				return false
			}
		}
		return true
	})
	waitFor(t, 2*time.Second, "the curtailment over", func() bool {
		st := getCurtailState(t, srv)
		return !st.Active && st.CurtailedWorkers == 0
	})
	for _, w := range srv.accounts.curtailLoads() {
		if srv.curtail.isCurtailed(w.Name) {
			t.Errorf("worker %s still curtailed after DELETE", w.Name)
		}
	}
}
