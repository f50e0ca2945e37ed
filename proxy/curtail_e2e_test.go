package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestCurtailmentFollowsProfile is the proof of flexible load: simulated miners that
// behave as firmware does (no job without an accepted authorize, a retry at a fixed
// interval, mining again once let back; see stratumtest.MinerConfig.ReconnectDelay)
// follow a commanded profile. The test asks for 50 % over 60 s, holds it, restores it
// over 60 s, and checks once a second that
//
//   - the estimated fleet power (baseline_kw − shed_kw) tracks the commanded profile
//     within one worker's shed plus a few ramp steps (cepPowerSlack);
//   - the hashrate the pool measures tracks the hashrate expected from the workers left
//     hashing, within cepHashrateTol over cepWindow windows;
//   - no worker retries faster than its firmware interval, and no step curtails or lets
//     back more than MaxStepWorkers (no reconnect burst);
//   - the exempt worker is never curtailed, and the least efficient model goes first;
//
// and at the end that no accepted share was lost: per worker, accepted = forwarded +
// lost with lost 0, and the pool accepted what the proxy counts as accepted upstream.
//
// Fleet: three models at fixed watts with different share rates, so their J/TH differ
// (old 3250 W at 1 share/s, mid 3000 W at 2, new 3500 W at 4: relative J/TH 3250,
// 1500, 875). Baseline 195 kW; shedding 97.5 kW (idle draw 10 %) takes the 19
// non-exempt old workers (55.6 kW) and 16 of the mid ones.
func TestCurtailmentFollowsProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs about 150 s")
	}
	const (
		diff           = 1e-8 // pool = proxy difficulty: every accepted share is forwarded
		perModel       = 20
		retry          = time.Second // the miners' fixed retry interval
		maxStepWorkers = 4
		stepInterval   = time.Second
		ramp           = 60 * time.Second
		fraction       = 0.5
		baselineFor    = 10 * time.Second
		holdFor        = 10 * time.Second
		tailFor        = 10 * time.Second

		// cepPowerSlack bounds the estimated power's distance from the linear profile,
		// on top of one worker's shed (the last worker chosen may overshoot a step by
		// less than its own shed): 3 % of the baseline covers the ramp's 1-s steps
		// (0.83 % each) and up to 2.5 s of skew between the test's clock, the 250 ms
		// server tick and the GET.
		cepPowerSlack = 0.03
		// cepStepSlack is how many ramp steps the shed may lag the reported step target:
		// a step acts on the first 250 ms tick at least StepInterval after the last
		// one, so ticks drift behind the plan's steps (more on a loaded box).
		cepStepSlack = 2
		// cepWindow and cepHashrateTol: the pool's accepted work over each window is
		// within ±15 % of the expected. At the hold the fleet submits about 89 shares
		// a second, 890 a window: Poisson noise σ ≈ 3.4 %, so 15 % is over 4σ.
		cepWindow      = 10
		cepHashrateTol = 0.15
		// cepBurstWindow (samples) and cepClockSkew: see attemptBound.
		cepBurstWindow = 5
		cepClockSkew   = 250 * time.Millisecond
	)
	type fleetModel struct {
		name      string
		watts     float64
		shareRate float64
	}
	models := []fleetModel{{"old", 3250, 1}, {"mid", 3000, 2}, {"new", 3500, 4}}
	const exempt = "old.000"

	// New jobs every 2 s: within foConfig's JobTimeout, and miners switch jobs
	// while curtailed and restored.
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: diff, SubmitLogSize: -1, JobInterval: 2 * time.Second})
	cfg := foConfig()
	cfg.StartDifficulty, cfg.MinDifficulty = diff, diff
	cfg.MinersPerUpstream = 16
	cfg.Curtail = CurtailConfig{Exempt: []string{exempt}, StepInterval: stepInterval, MaxStepWorkers: maxStepWorkers}
	for _, m := range models {
		cfg.Curtail.Models = append(cfg.Curtail.Models, PowerModel{Name: m.name, Worker: m.name + ".*", Watts: m.watts})
	}
	srv := newTestProxy(t, cfg, pool)

	var miners []*stratumtest.Miner
	var stops []func() []stratumtest.MinerStats
	modelOf := map[string]int{}
	var names []string
	for i, m := range models {
		ms, stop := runMiners(t, srv.Addr().String(), perModel, stratumtest.MinerConfig{
			Worker: m.name + ".", ShareRate: m.shareRate, ReconnectDelay: retry, MaxReconnectDelay: retry,
		})
		miners = append(miners, ms...)
		stops = append(stops, stop)
		for j := range perModel {
			n := fmt.Sprintf("%s.%03d", m.name, j)
			names = append(names, n)
			modelOf[n] = i
		}
	}
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}
	defer stopAll()

	var baseW, maxShedW float64
	for _, m := range models {
		baseW += perModel * m.watts
		maxShedW = max(maxShedW, m.watts*(1-DefaultIdleFraction))
	}
	baseKW, maxShedKW := baseW/1e3, maxShedW/1e3
	stepKW := baseKW * fraction * float64(stepInterval) / float64(ramp)

	// Every worker online with shares, so each has a measured efficiency.
	waitFor(t, 20*time.Second, "every worker online with a share", func() bool {
		ws := srv.accounts.curtailLoads()
		if len(ws) < len(names) {
			return false
		}
		for _, w := range ws {
			if !w.Online || w.Hashrate <= 0 {
				return false
			}
		}
		return true
	})

	type sample struct {
		at          time.Duration // since the POST (negative before)
		st          CurtailState
		curtailed   []bool // by names index
		poolAcc     uint64
		connects    uint64
		closedCurt  float64
		nCurtailed  int
		newCurt     int
		newRestored int
	}
	closedCurtailed := srv.metrics.ConnectionsClosed.WithLabelValues("curtailed")
	take := func(start time.Time, prev *sample) sample {
		s := sample{at: time.Since(start), curtailed: make([]bool, len(names))}
		s.st = getCurtailState(t, srv)
		for i, n := range names {
			s.curtailed[i] = srv.curtail.isCurtailed(n)
			if s.curtailed[i] {
				s.nCurtailed++
			}
			if prev != nil && s.curtailed[i] && !prev.curtailed[i] {
				s.newCurt++
			}
			if prev != nil && !s.curtailed[i] && prev.curtailed[i] {
				s.newRestored++
			}
		}
		s.poolAcc = pool.Stats().Accepted()
		for _, m := range miners {
			s.connects += m.Stats().Connects
		}
		s.closedCurt = testutil.ToFloat64(closedCurtailed)
		return s
	}

	// The schedule, in seconds from the POST.
	baseSamples := int(baselineFor / time.Second)
	deleteAt := ramp + holdFor
	end := deleteAt + ramp + tailFor
	start := time.Now().Add(baselineFor)
	accepted := func() map[string]float64 {
		out := map[string]float64{}
		for _, w := range workersAPI(t, srv) {
			out[w.Name] = float64(w.Accepted)
		}
		return out
	}
	acc0 := accepted()
	var samples []sample
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	posted, deleted := false, false
	var deletedAt time.Duration
	for {
		var prev *sample
		if len(samples) > 0 {
			prev = &samples[len(samples)-1]
		}
		samples = append(samples, take(start, prev))
		now := time.Since(start)
		if !posted && len(samples) > baseSamples {
			start = time.Now()
			curtailCall(t, srv, http.MethodPost, fmt.Sprintf(`{"fraction":%v,"ramp":"%v"}`, fraction, ramp), "")
			posted = true
			samples[len(samples)-1].at = 0
		} else if posted && !deleted && now >= deleteAt {
			curtailCall(t, srv, http.MethodDelete, "", "")
			deleted, deletedAt = true, time.Since(start)
		} else if deleted && now >= end {
			break
		}
		<-tick.C
	}
	acc1 := accepted()
	stopAll()
	foSettle(t, srv)

	// The commanded profile: fleet hashing power (kW) at d from the POST.
	commanded := func(d time.Duration) float64 {
		switch {
		case d <= 0:
			return baseKW
		case !deleted || d < deletedAt:
			return baseKW * (1 - fraction*min(d.Seconds()/ramp.Seconds(), 1))
		default:
			return baseKW * (1 - fraction + fraction*min((d-deletedAt).Seconds()/ramp.Seconds(), 1))
		}
	}

	// Power.
	var maxPowerDev, maxStepDev float64
	for _, s := range samples {
		if s.at < 0 {
			continue
		}
		b := s.st.BaselineKW
		if b == 0 {
			b = baseKW // everything restored: the curtailment ended
		} else if math.Abs(b-baseKW) > 1e-6 {
			t.Errorf("at %v: baseline %.3f kW; want %.3f", s.at, b, baseKW)
		}
		est := b - s.st.ShedKW
		dev := est - commanded(s.at)
		maxPowerDev = max(maxPowerDev, math.Abs(dev))
		if math.Abs(dev) > maxShedKW+cepPowerSlack*baseKW {
			t.Errorf("at %.1fs: estimated power %.2f kW, commanded %.2f kW: off by %.2f kW; want within %.2f",
				s.at.Seconds(), est, commanded(s.at), dev, maxShedKW+cepPowerSlack*baseKW)
		}
		// Against the ramp's own step target: off by less than one worker's shed (the
		// last one chosen overshoots by less than its own shed; a restore that would
		// undershoot waits), give or take cepStepSlack steps of a lagging tick.
		over := s.st.ShedKW - s.st.StepTargetKW
		maxStepDev = max(maxStepDev, math.Abs(over))
		if over < -cepStepSlack*stepKW-1e-9 || over >= maxShedKW+cepStepSlack*stepKW {
			t.Errorf("at %.1fs: shed %.2f kW against step target %.2f kW; want within -%.2f…+%.2f",
				s.at.Seconds(), s.st.ShedKW, s.st.StepTargetKW, cepStepSlack*stepKW, maxShedKW+cepStepSlack*stepKW)
		}
	}
	if got := samples[len(samples)-1]; got.nCurtailed != 0 || got.st.ShedKW != 0 {
		t.Errorf("at the end: %d workers curtailed, %.2f kW shed; want none", got.nCurtailed, got.st.ShedKW)
	}

	// Hashrate: per-model share rates fitted over the whole run (shares accepted by
	// the proxy per second hashing), then each window's expected shares from the
	// workers hashing in it, against the pool's count.
	var modelShares [3]float64
	for n, i := range modelOf {
		modelShares[i] += acc1[n] - acc0[n]
	}
	// hashingSec[k][i]: seconds model i's workers hashed between samples k-1 and k
	// (each worker's state averaged over the two ends).
	hashingSec := make([][3]float64, len(samples))
	var modelSec [3]float64
	for k := 1; k < len(samples); k++ {
		dt := (samples[k].at - samples[k-1].at).Seconds()
		if samples[k].at < samples[k-1].at { // the clock restarted at the POST
			dt = 1
		}
		for j, n := range names {
			h := 0.0
			if !samples[k-1].curtailed[j] {
				h += 0.5
			}
			if !samples[k].curtailed[j] {
				h += 0.5
			}
			hashingSec[k][modelOf[n]] += h * dt
		}
		for i := range modelSec {
			modelSec[i] += hashingSec[k][i]
		}
	}
	var rate [3]float64
	for i := range rate {
		rate[i] = modelShares[i] / modelSec[i]
	}
	var maxHashDev float64
	var holdRatio float64
	for k := cepWindow; k < len(samples); k++ {
		var want float64
		for j := k - cepWindow + 1; j <= k; j++ {
			for i := range rate {
				want += rate[i] * hashingSec[j][i]
			}
		}
		got := float64(samples[k].poolAcc - samples[k-cepWindow].poolAcc)
		dev := got/want - 1
		maxHashDev = max(maxHashDev, math.Abs(dev))
		if math.Abs(dev) > cepHashrateTol {
			t.Errorf("window ending %.0fs: pool accepted %.0f shares; want %.0f ± %.0f %%", samples[k].at.Seconds(), got, want, cepHashrateTol*100)
		}
		if samples[k].at >= ramp && samples[k].at < deletedAt && holdRatio == 0 {
			holdRatio = got / float64(samples[baseSamples].poolAcc-samples[baseSamples-cepWindow].poolAcc)
		}
	}

	// Bursts, exemption and order. A connection attempt comes from a curtailed
	// worker retrying, or from one let back lately, each at most once per retry
	// interval: attemptBound bounds the attempts between samples from and to by the
	// workers curtailed at any sample from two before from on, times the retries
	// that fit in the time between the samples (plus cepClockSkew, since each
	// sample reads 60 miners one after the other). The closes as curtailed (a
	// refused retry is one) are bounded alike.
	attemptBound := func(from, to int) (attempts int, closed float64, bound int) {
		involved := 0
		for j := range names {
			for k := max(from-2, 0); k <= to; k++ {
				if samples[k].curtailed[j] {
					involved++
					break
				}
			}
		}
		d := samples[to].at - samples[from].at
		bound = involved * (int((d+cepClockSkew)/retry) + 1)
		return int(samples[to].connects - samples[from].connects), samples[to].closedCurt - samples[from].closedCurt, bound
	}
	firstCurtailed := map[string]int{}
	var maxAttempts, maxNew, maxRestored, maxCurtailed int
	var maxClosedRate float64
	for k := 1; k < len(samples); k++ {
		s, p := &samples[k], &samples[k-1]
		dt := (s.at - p.at).Seconds()
		if s.at < p.at {
			dt = 1
		}
		steps := int(math.Floor(dt/stepInterval.Seconds())) + 1
		if s.newCurt > steps*maxStepWorkers || s.newRestored > steps*maxStepWorkers {
			t.Errorf("at %.1fs: %d curtailed and %d restored in %.2fs; want at most %d each (%d per step)",
				s.at.Seconds(), s.newCurt, s.newRestored, dt, steps*maxStepWorkers, maxStepWorkers)
		}
		attempts, closed := int(s.connects-p.connects), s.closedCurt-p.closedCurt
		for _, w := range []int{1, cepBurstWindow} {
			if k < w {
				continue
			}
			n, c, bound := attemptBound(k-w, k)
			if n > bound || c > float64(bound) {
				t.Errorf("at %.1fs: %d connection attempts and %.0f closes as curtailed in %.2fs; want at most %d each",
					s.at.Seconds(), n, c, (s.at - samples[k-w].at).Seconds(), bound)
			}
		}
		maxAttempts, maxNew, maxRestored = max(maxAttempts, attempts), max(maxNew, s.newCurt), max(maxRestored, s.newRestored)
		maxCurtailed, maxClosedRate = max(maxCurtailed, s.nCurtailed), max(maxClosedRate, closed/dt)
		for j, n := range names {
			if s.curtailed[j] {
				if _, ok := firstCurtailed[n]; !ok {
					firstCurtailed[n] = k
				}
			}
		}
	}
	if _, ok := firstCurtailed[exempt]; ok {
		t.Errorf("exempt worker %s was curtailed", exempt)
	}
	lastOld, firstMid := -1, len(samples)
	var nOld, nMid, nNew int
	for n, k := range firstCurtailed {
		switch modelOf[n] {
		case 0:
			lastOld, nOld = max(lastOld, k), nOld+1
		case 1:
			firstMid, nMid = min(firstMid, k), nMid+1
		case 2:
			nNew++
		}
	}
	if nOld != perModel-1 || nMid == 0 || nNew != 0 || lastOld > firstMid {
		t.Errorf("curtailed %d old (last at sample %d), %d mid (first at %d), %d new; want all %d non-exempt old first, then mid, no new",
			nOld, lastOld, nMid, firstMid, nNew, perModel-1)
	}

	// No accepted share lost.
	tot := foSum(t, srv)
	if tot.lost != 0 || tot.upRejected != 0 {
		t.Errorf("lost %d (%v), rejected upstream %d (%v); want 0", tot.lost, tot.lostBy, tot.upRejected, tot.upRejectedBy)
	}
	foCheckPoolsAgree(t, tot, pool)

	t.Logf("baseline %.1f kW; max power deviation %.2f kW (%.1f %% of baseline; bound %.2f kW), max shed−step %.2f kW",
		baseKW, maxPowerDev, 100*maxPowerDev/baseKW, maxShedKW+cepPowerSlack*baseKW, maxStepDev)
	t.Logf("max hashrate deviation %.1f %% over %d-s windows (bound %.0f %%); hashrate at the hold %.0f %% of baseline for %.0f %% of the power",
		100*maxHashDev, cepWindow, 100*cepHashrateTol, 100*holdRatio, 100*(1-fraction))
	t.Logf("per second at most: %d curtailed, %d restored, %d connection attempts, %.1f curtailed closes; at most %d curtailed at once",
		maxNew, maxRestored, maxAttempts, maxClosedRate, maxCurtailed)
	t.Logf("accepted %d, forwarded %d, pool accepted %d, lost %d; model rates %.2f/%.2f/%.2f shares/s",
		tot.accepted, tot.forwarded, pool.Stats().Accepted(), tot.lost, rate[0], rate[1], rate[2])
}

// getCurtailState fetches GET /api/v1/curtailment.
func getCurtailState(t testing.TB, srv *Server) CurtailState {
	t.Helper()
	code, body := e2eGet(t, srv, "/api/v1/curtailment")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/curtailment: status %d: %s", code, body)
	}
	var st CurtailState
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("GET /api/v1/curtailment: %v: %s", err, body)
	}
	return st
}

// curtailDo sends POST or DELETE /api/v1/curtailment with body and, when token is
// not empty, the bearer token, and returns the status and body. It fails t on a
// transport error only.
func curtailDo(t testing.TB, srv *Server, method, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+srv.HTTPAddr()+"/api/v1/curtailment", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e2eHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s /api/v1/curtailment: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// curtailCall is curtailDo that fails t unless the answer is 200.
func curtailCall(t testing.TB, srv *Server, method, body, token string) {
	t.Helper()
	if code, got := curtailDo(t, srv, method, body, token); code != http.StatusOK {
		t.Fatalf("%s /api/v1/curtailment %s: status %d: %s", method, body, code, got)
	}
}
