package proxy

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// fakeClock is a settable clock for the accounts, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// TestWorkerHashrate: a worker submitting shares at a steady rate is estimated at
// that rate from its first seconds (the average's zero start corrected), through
// the averaging window, and decays once its shares stop.
func TestWorkerHashrate(t *testing.T) {
	clk := newFakeClock()
	a := newAccounts(clk.now)
	w := a.connect("farm.rig1", "10.0.0.1:4000", "test", nil)
	const d = 0.5                // difficulty: 2^31 hashes a share
	rate := d * 4294967296 / 2.0 // a share every 2 s
	within := func(when string, want, tol float64) {
		t.Helper()
		got := a.list()[0].Hashrate
		if math.Abs(got-want) > tol*want {
			t.Errorf("%s: hashrate %.4g; want %.4g ±%.0f%%", when, got, want, 100*tol)
		}
	}
	share := func(n int) {
		for range n {
			w.addAccepted(clk.add(2*time.Second), d, false)
		}
	}
	share(5)
	within("after 10 s", rate, 0.01)
	share(150)
	within("after 5 min", rate, 0.01)
	share(600)
	within("after 25 min", rate, 0.01)
	clk.add(hashrateWindow)
	// The average has run long enough that its correction is ~1: it decays by 1/e.
	within("5 min after the last share", rate/math.E, 0.02)
	w.disconnected(nil)
	if st := a.list()[0]; st.Connections != 0 || st.Accepted != 755 || st.AcceptedWork != 755*d {
		t.Errorf("connections %d, accepted %d, work %v; want 0, 755, %v", st.Connections, st.Accepted, st.AcceptedWork, 755*d)
	}
}

// TestAccountsBounded: past maxWorkers names, the disconnected workers idle longest
// are forgotten; a connected one never is.
func TestAccountsBounded(t *testing.T) {
	clk := newFakeClock()
	a := newAccounts(clk.now)
	keep := a.connect("keep", "", "", nil)
	for i := range maxWorkers - 1 {
		clk.add(time.Millisecond)
		a.connect(fmt.Sprintf("w%d", i), "", "", nil).disconnected(nil)
	}
	if n := len(a.workers); n != maxWorkers {
		t.Fatalf("%d workers; want %d", n, maxWorkers)
	}
	a.connect("new", "", "", nil)
	if n := len(a.workers); n > maxWorkers*3/4+1 {
		t.Errorf("%d workers after the bound was passed; want at most %d", n, maxWorkers*3/4+1)
	}
	for _, name := range []string{"keep", "new", fmt.Sprintf("w%d", maxWorkers-2)} {
		if a.workers[name] == nil {
			t.Errorf("worker %s forgotten; want kept (connected, or idle least long)", name)
		}
	}
	if a.workers["w0"] != nil {
		t.Error("worker w0, idle longest, kept; want it forgotten")
	}
	if a.workers["keep"] != keep {
		t.Error("the connected worker's account was replaced")
	}
}

// testShare counts one share in m's batch, as handleSubmit does.
func testShare(m *session, now time.Time, v stratum.Verdict, d float64, rolled bool) {
	m.mu.Lock()
	if m.batch.count(now, v, d, false, rolled) {
		m.batch.flush(now)
	}
	m.mu.Unlock()
}

// TestWorkerHashrateWindows: at a steady rate every average reads that rate from
// the start; once shares stop, the 1-minute one falls by 1/e in a minute while the
// 24-hour one hardly moves.
func TestWorkerHashrateWindows(t *testing.T) {
	clk := newFakeClock()
	a := newAccounts(clk.now)
	w := a.connect("farm.rig1", "", "", nil)
	const d = 1.0
	rate := d * 4294967296 / 5.0 // a share every 5 s
	for range 720 {              // an hour
		w.addAccepted(clk.add(5*time.Second), d, false)
	}
	st := a.list()[0]
	for _, c := range []struct {
		name string
		got  float64
	}{{"1m", st.Hashrate1m}, {"5m", st.Hashrate5m}, {"1h", st.Hashrate1h}, {"24h", st.Hashrate24h}, {"hashrate", st.Hashrate}} {
		if math.Abs(c.got-rate) > 0.02*rate {
			t.Errorf("hashrate_%s = %.4g after an hour at %.4g; want within 2%%", c.name, c.got, rate)
		}
	}
	clk.add(time.Minute)
	st = a.list()[0]
	if r := st.Hashrate1m / rate; math.Abs(r-1/math.E) > 0.02 {
		t.Errorf("hashrate_1m a minute after the last share = %.3f of the rate; want 1/e", r)
	}
	// With an hour of history, a minute without shares is 1/61 of it.
	if r := st.Hashrate24h / rate; math.Abs(r-60.0/61) > 0.01 {
		t.Errorf("hashrate_24h a minute after the last share = %.3f of the rate; want 60/61", r)
	}
}

// TestShareBatchFold: a session's shares reach its worker in batches (every
// foldShares shares or foldInterval), and a snapshot folds what is waiting, so it
// reads exact counts at once.
func TestShareBatchFold(t *testing.T) {
	clk := newFakeClock()
	a := newAccounts(clk.now)
	m := &session{}
	w := a.connect("farm.rig1", "", "", m)
	testShare(m, clk.now(), stratum.VerdictDuplicate, 2, false)
	for range foldShares - 2 {
		testShare(m, clk.now(), stratum.VerdictAccepted, 2, false)
	}
	w.mu.Lock()
	inWorker := w.accepted
	w.mu.Unlock()
	if inWorker != 0 {
		t.Errorf("worker counted %d shares before the batch was due; want 0", inWorker)
	}
	st, _ := a.get("farm.rig1")
	if st.Accepted != foldShares-2 || st.Duplicate != 1 || st.AcceptedWork != 2*(foldShares-2) {
		t.Errorf("snapshot: accepted %d, duplicate %d, work %v; want %d, 1, %d", st.Accepted, st.Duplicate, st.AcceptedWork, foldShares-2, 2*(foldShares-2))
	}
	// A share foldInterval after the batch began folds it.
	testShare(m, clk.now(), stratum.VerdictAccepted, 1, false)
	testShare(m, clk.add(foldInterval), stratum.VerdictAccepted, 1, false)
	w.mu.Lock()
	inWorker = w.accepted
	w.mu.Unlock()
	if inWorker != foldShares {
		t.Errorf("worker counted %d after a batch aged foldInterval; want %d", inWorker, foldShares)
	}
	// foldShares shares fold at once.
	for range foldShares {
		testShare(m, clk.now(), stratum.VerdictAccepted, 1, false)
	}
	w.mu.Lock()
	inWorker = w.accepted
	w.mu.Unlock()
	if inWorker != 2*foldShares {
		t.Errorf("worker counted %d after a full batch; want %d", inWorker, 2*foldShares)
	}
	// Disconnect folds the rest.
	testShare(m, clk.now(), stratum.VerdictUnknownJob, 1, false)
	w.disconnected(m)
	w.mu.Lock()
	stale := w.rejected[stratum.VerdictUnknownJob]
	w.mu.Unlock()
	if stale != 1 {
		t.Errorf("stale %d after disconnect; want 1 (folded)", stale)
	}
}

// TestWorkerStates drives each state with a fake clock, and their precedence:
// offline > idle > rejected > not_rolling > degraded > ok.
func TestWorkerStates(t *testing.T) {
	type step struct {
		what string
		do   func(env *stateEnv)
		want string
	}
	share := func(env *stateEnv) { testShare(env.m, env.clk.now(), stratum.VerdictAccepted, 1, false) }
	rolled := func(env *stateEnv) { testShare(env.m, env.clk.now(), stratum.VerdictAccepted, 1, true) }
	wait := func(d time.Duration) func(env *stateEnv) { return func(env *stateEnv) { env.clk.add(d) } }
	answers := func(acc, rej int) func(env *stateEnv) {
		return func(env *stateEnv) {
			for range acc {
				env.w.addUpstreamResult(env.clk.now(), true, true, "")
			}
			for range rej {
				env.w.addUpstreamResult(env.clk.now(), false, true, "Low difficulty share")
			}
		}
	}
	// minutes of shares every 10 s at difficulty d.
	mine := func(minutes int, d float64) func(env *stateEnv) {
		return func(env *stateEnv) {
			for range minutes * 6 {
				testShare(env.m, env.clk.add(10*time.Second), stratum.VerdictAccepted, d, env.m.rolling)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		rolling bool
		steps   []step
	}{
		{"idle then ok then offline", false, []step{
			{"connected", nil, StateOK},
			{"4m59s without a share", wait(5*time.Minute - time.Second), StateOK},
			{"5m without a share", wait(time.Second), StateIdle},
			{"a share", share, StateOK},
			{"5m after it", wait(5 * time.Minute), StateIdle},
			{"disconnected", func(env *stateEnv) { env.w.disconnected(env.m) }, StateOffline},
		}},
		{"rejected", false, []step{
			{"19 answers, all rejects", answers(0, 19), StateOK}, // too few to judge
			{"20 answers, 2 rejects", answers(1, 0), StateRejected},
			{"an hour later", func(env *stateEnv) { wait(61 * time.Minute)(env); share(env) }, StateOK},
			{"20 answers, 1 reject (5%, not above)", answers(19, 1), StateOK},
			{"21 answers, 2 rejects", answers(0, 1), StateRejected},
			{"idle wins over rejected", wait(5 * time.Minute), StateIdle},
		}},
		{"not rolling", true, []step{
			{"connected, rolling", nil, StateOK},
			{"9 minutes of unrolled shares", mineUnrolled(9), StateOK},
			{"10 minutes of unrolled shares", mineUnrolled(1), StateNotRolling},
			{"a rolled share", rolled, StateOK},
			{"rejected wins over not_rolling", func(env *stateEnv) { mineUnrolled(10)(env); answers(0, 20)(env) }, StateRejected},
		}},
		{"degraded", false, []step{
			{"two hours at difficulty 4", mine(120, 4), StateOK},
			{"an hour at difficulty 0.5", mine(60, 0.5), StateOK}, // 1h average still has the tail of 4
			{"another hour at difficulty 0.5", mine(60, 0.5), StateDegraded},
			{"two hours back at difficulty 4", mine(120, 4), StateOK},
		}},
		{"degraded needs 2h of history", false, []step{
			{"1h below half the 24h, 1h59m of history", func(env *stateEnv) {
				share(env)
				env.a.get("farm.rig1") // folds the share
				env.w.mu.Lock()
				env.w.rates = hashrates{rate: [numRates]float64{1e12, 1e12, 1e12, 1e13}, at: env.clk.now(), start: env.clk.now().Add(-2*time.Hour + time.Minute)}
				env.w.mu.Unlock()
			}, StateOK},
			{"a minute later: 2h of history", wait(time.Minute), StateDegraded},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newStateEnv(tc.rolling)
			for _, s := range tc.steps {
				if s.do != nil {
					s.do(env)
				}
				st, ok := env.a.get("farm.rig1")
				if !ok {
					t.Fatal("worker not found")
				}
				if st.State != s.want {
					t.Errorf("%s: state %q; want %q (1h %.3g, 24h %.3g, reject rate %.3f, rolling %v active %v)",
						s.what, st.State, s.want, st.Hashrate1h, st.Hashrate24h, st.UpstreamRejectRate1h, st.Rolling, st.RollingActive)
				}
			}
		})
	}
}

// mineUnrolled is minutes of shares without version bits, one every 10 s.
func mineUnrolled(minutes int) func(env *stateEnv) {
	return func(env *stateEnv) {
		for range minutes * 6 {
			testShare(env.m, env.clk.add(10*time.Second), stratum.VerdictAccepted, 1, false)
		}
	}
}

type stateEnv struct {
	clk *fakeClock
	a   *accounts
	m   *session
	w   *worker
}

func newStateEnv(rolling bool) *stateEnv {
	env := &stateEnv{clk: newFakeClock(), m: &session{}}
	env.a = newAccounts(env.clk.now)
	if rolling {
		env.m.rolling, env.m.mask = true, 0x1fffe000
	}
	env.m.sentDiff = 1
	env.w = env.a.connect("farm.rig1", "10.0.0.1:4000", "test", env.m)
	return env
}

// TestWorkerRollingFields: the mask is shown as 8 hex digits while rolling, "" without.
func TestWorkerRollingFields(t *testing.T) {
	env := newStateEnv(true)
	env.m.sentDiff = 512
	testShare(env.m, env.clk.now(), stratum.VerdictAccepted, 1, true)
	st, _ := env.a.get("farm.rig1")
	if st.VersionMask != "1fffe000" || !st.Rolling || !st.RollingActive || st.Difficulty != 512 {
		t.Errorf("version_mask %q rolling %v active %v difficulty %v; want 1fffe000 true true 512", st.VersionMask, st.Rolling, st.RollingActive, st.Difficulty)
	}
	env2 := newStateEnv(false)
	st, _ = env2.a.get("farm.rig1")
	if st.VersionMask != "" || st.Rolling || st.RollingActive {
		t.Errorf("without rolling: version_mask %q rolling %v active %v; want \"\" false false", st.VersionMask, st.Rolling, st.RollingActive)
	}
}

// TestHistoryRing: one point a minute, at most 1440 (24 h), oldest first, the
// current minute's last; minutes with no point are left out.
func TestHistoryRing(t *testing.T) {
	var h historyRing
	start := time.Unix(1_700_000_000, 0).Truncate(time.Minute)
	now := start
	for i := range 2000 {
		now = start.Add(time.Duration(i) * time.Minute)
		h.set(now, float64(i))
	}
	h.set(now.Add(30*time.Second), 1999.5) // the current minute's point replaced
	pts := h.points(now.Add(30 * time.Second))
	if len(pts) != historyPoints {
		t.Fatalf("%d points; want %d", len(pts), historyPoints)
	}
	if first := pts[0]; first[1] != 2000-historyPoints || first[0] != float64(now.Add(-(historyPoints-1)*time.Minute).Unix()) {
		t.Errorf("first point %v; want the one of 1439 minutes ago (%d)", first, 2000-historyPoints)
	}
	if last := pts[len(pts)-1]; last[1] != 1999.5 || last[0] != float64(now.Unix()) {
		t.Errorf("last point %v; want [%d 1999.5]", last, now.Unix())
	}
	for i := 1; i < len(pts); i++ {
		if pts[i][0]-pts[i-1][0] != 60 {
			t.Fatalf("points %d and %d are %v s apart; want 60", i-1, i, pts[i][0]-pts[i-1][0])
		}
	}
	// Two hours later, 120 minutes have no point.
	if n := len(h.points(now.Add(2 * time.Hour))); n != historyPoints-120 {
		t.Errorf("%d points two hours on; want %d", n, historyPoints-120)
	}
}

// TestAccountsMarshalRestore: the durable counters and the history survive a
// marshal and restore; the fleet blob of a full day stays well under the store's
// 64 KiB bound.
func TestAccountsMarshalRestore(t *testing.T) {
	clk := newFakeClock()
	a := newAccounts(clk.now)
	m := &session{}
	w := a.connect("farm.rig1", "10.0.0.1:4000", "agent/1", m)
	testShare(m, clk.now(), stratum.VerdictAccepted, 4, false)
	testShare(m, clk.now(), stratum.VerdictUnknownJob, 4, false)
	w.addUpstreamResult(clk.now(), false, true, "Stale")
	w.disconnected(m)
	for i := range 2000 {
		if i != 1990 { // one minute without a point
			a.histMu.Lock()
			a.history.set(clk.now(), 1.2345678901234567e18+float64(i))
			a.histMu.Unlock()
		}
		clk.add(time.Minute)
	}
	workers, fleetBlob, err := a.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(fleetBlob) > 48<<10 {
		t.Errorf("fleet blob of a full day: %d bytes; want well under 64 KiB", len(fleetBlob))
	}
	b := newAccounts(clk.now)
	n, err := b.restore(workers, fleetBlob)
	if err != nil || n != 1 {
		t.Fatalf("restored %d workers, %v; want 1, nil", n, err)
	}
	got, _ := b.get("farm.rig1")
	want, _ := a.get("farm.rig1")
	if got.Accepted != 1 || got.Stale != 1 || got.AcceptedWork != 4 || got.UpstreamRejected["Stale"] != 1 || got.State != StateOffline ||
		got.Hashrate24h != want.Hashrate24h || !got.LastShare.Equal(want.LastShare) {
		t.Errorf("restored %+v\nwant %+v", got, want)
	}
	hp, wp := b.historyPoints(), a.historyPoints()
	if len(hp) != len(wp) || len(hp) != historyPoints-2 { // the current minute and one more have none
		t.Fatalf("restored history: %d points; want %d", len(hp), len(wp))
	}
	for i := range hp {
		if hp[i][0] != wp[i][0] || math.Abs(hp[i][1]-wp[i][1]) > 1 {
			t.Fatalf("history point %d: %v; want %v", i, hp[i], wp[i])
		}
	}
	if _, err := b.restore(map[string][]byte{"bad": []byte("{")}, nil); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("restore of a broken document: %v; want an error naming it", err)
	}
}
