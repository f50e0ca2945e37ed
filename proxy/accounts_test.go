package proxy

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// fakeClock is a settable clock for the accounts.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestWorkerHashrate: a worker submitting shares at a steady rate is estimated at
// that rate from its first seconds (the average's zero start corrected), through
// the averaging window, and decays once its shares stop.
func TestWorkerHashrate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a := newAccounts(clk.now)
	w := a.connect("farm.rig1", "10.0.0.1:4000", "test")
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
			clk.t = clk.t.Add(2 * time.Second)
			w.addAccepted(clk.t, d, false)
		}
	}
	share(5)
	within("after 10 s", rate, 0.01)
	share(150)
	within("after 5 min", rate, 0.01)
	share(600)
	within("after 25 min", rate, 0.01)
	clk.t = clk.t.Add(hashrateWindow)
	// The average has run long enough that its correction is ~1: it decays by 1/e.
	within("5 min after the last share", rate/math.E, 0.02)
	w.disconnected()
	if st := a.list()[0]; st.Connections != 0 || st.Accepted != 755 || st.AcceptedWork != 755*d {
		t.Errorf("connections %d, accepted %d, work %v; want 0, 755, %v", st.Connections, st.Accepted, st.AcceptedWork, 755*d)
	}
}

// TestAccountsBounded: past maxWorkers names, the disconnected workers idle longest
// are forgotten; a connected one never is.
func TestAccountsBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a := newAccounts(clk.now)
	keep := a.connect("keep", "", "")
	for i := range maxWorkers - 1 {
		clk.t = clk.t.Add(time.Millisecond)
		a.connect(fmt.Sprintf("w%d", i), "", "").disconnected()
	}
	if n := len(a.workers); n != maxWorkers {
		t.Fatalf("%d workers; want %d", n, maxWorkers)
	}
	a.connect("new", "", "")
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
