package proxy

import (
	"math"
	"testing"
	"time"
)

// vardiffClock is a fake clock for vardiff: the tests move it by hand.
type vardiffClock struct{ now time.Time }

func (c *vardiffClock) add(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

// newTestVardiff returns a vardiff aiming at a share every 10 s, retargeting at most
// once a minute, started (the miner's first job) at the clock's time.
func newTestVardiff(clk *vardiffClock) *vardiff {
	v := &vardiff{interval: 10 * time.Second, retarget: time.Minute}
	v.check(clk.now, 1)
	return v
}

// runShares feeds shares judged at d every `every` for `span` and returns the
// first non-zero suggestion, or 0.
func runShares(v *vardiff, clk *vardiffClock, d float64, every, span time.Duration) float64 {
	for t := every; t <= span; t += every {
		if next := v.observe(clk.add(every), d, d); next > 0 {
			return next
		}
	}
	return 0
}

func TestVardiffSteps(t *testing.T) {
	f := func(name string, d float64, every, span time.Duration, want float64) {
		t.Helper()
		clk := &vardiffClock{now: time.Unix(1_700_000_000, 0)}
		v := newTestVardiff(clk)
		if got := runShares(v, clk, d, every, span); math.Abs(got-want) > want*1e-9 && !(got == 0 && want == 0) {
			t.Errorf("%s: got %v; want %v", name, got, want)
		}
	}
	// A share a second at difficulty 1 is ten times the aim: raised, by at most 4.
	f("fast", 1, time.Second, 2*time.Minute, 4)
	// Twice the aim: raised to the estimate.
	f("2x", 1, 5*time.Second, 2*time.Minute, 2)
	// On target: unchanged, however long.
	f("steady", 1, 10*time.Second, 10*time.Minute, 0)
	// Within the 20% deadband: unchanged.
	f("deadband", 1, 9*time.Second, 10*time.Minute, 0)
	// A share every 20 s: lowered to half at the first retarget after a minute.
	f("half", 8, 20*time.Second, 2*time.Minute, 4)
	// A share every 80 s is an eighth of the aim: lowered by at most 4.
	f("slow", 8, 80*time.Second, 5*time.Minute, 2)
}

// TestVardiffNoShares: a miner that finds nothing is lowered at each job after a
// retarget period, a quarter at a time, never from a window shorter than that.
func TestVardiffNoShares(t *testing.T) {
	clk := &vardiffClock{now: time.Unix(1_700_000_000, 0)}
	v := newTestVardiff(clk)
	cur := 1.0
	if got := v.check(clk.add(59*time.Second), cur); got != 0 {
		t.Errorf("after 59s: got %v; want 0 (retarget is 60s)", got)
	}
	for i := range 3 {
		got := v.check(clk.add(time.Minute), cur)
		if got != cur/4 {
			t.Fatalf("step %d: got %v; want %v", i, got, cur/4)
		}
		cur = got
	}
}

// TestVardiffFirstCheckStartsWindow: the window starts at the first job, not at the
// first share, so the time a miner took to find its first share counts.
func TestVardiffFirstCheckStartsWindow(t *testing.T) {
	clk := &vardiffClock{now: time.Unix(1_700_000_000, 0)}
	var v vardiff
	v.interval, v.retarget = 10*time.Second, time.Minute
	if got := v.check(clk.now, 1); got != 0 {
		t.Fatalf("first check: got %v; want 0", got)
	}
	// One share after 4 minutes: a rate of 1/240 per second, 1/24 of the aim.
	if got := v.observe(clk.add(4*time.Minute), 1, 1); got != 0.25 {
		t.Errorf("got %v; want 0.25 (lowered by the 4x bound)", got)
	}
}

// TestVardiffConverges simulates miners of several hash rates for six hours, their
// work accumulating steadily (a share whenever it reaches the difficulty) and a job
// every 30 s: from a poor start each settles within 20% of the difficulty that gives
// a share per interval, and then stays there.
func TestVardiffConverges(t *testing.T) {
	for _, rate := range []float64{0.001, 0.1, 1, 37, 5000} { // difficulty-1 units per second
		clk := &vardiffClock{now: time.Unix(1_700_000_000, 0)}
		v := newTestVardiff(clk)
		d, acc := 1.0, 0.0
		want := rate * v.interval.Seconds()
		changes, settledAt := 0, 0
		for sec := 1; sec <= 6*3600; sec++ {
			now := clk.add(time.Second)
			for acc += rate; acc >= d; acc -= d {
				if next := v.observe(now, d, d); next > 0 {
					d, changes, settledAt = next, changes+1, sec
				}
			}
			if sec%30 == 0 {
				if next := v.check(now, d); next > 0 {
					d, changes, settledAt = next, changes+1, sec
				}
			}
		}
		if math.Abs(d-want) > 0.2*want {
			t.Errorf("rate %v: settled at %v; want %v ±20%%", rate, d, want)
		}
		if settledAt > 3600 || changes > 12 {
			t.Errorf("rate %v: %d changes, the last after %ds; want it settled within the hour", rate, changes, settledAt)
		}
	}
}

func TestVardiffClamp(t *testing.T) {
	inf := math.Inf(1)
	f := func(d, minD, maxD, up float64, pow2 bool, want float64) {
		t.Helper()
		if got := clampDifficulty(d, minD, maxD, up, pow2); got != want {
			t.Errorf("clampDifficulty(%v, min %v, max %v, upstream %v, pow2 %v) = %v; want %v", d, minD, maxD, up, pow2, got, want)
		}
	}
	f(5, 1, 0, 0, false, 5)
	f(0.5, 1, 0, 0, false, 1)   // floor
	f(50, 1, 10, 0, false, 10)  // MaxDifficulty
	f(50, 1, 0, 20, false, 20)  // the pool's difficulty
	f(50, 1, 10, 20, false, 10) // the lower ceiling
	f(5, 30, 0, 20, false, 20)  // a ceiling wins over the floor
	f(5, 30, 10, 20, false, 10) // so does MaxDifficulty
	f(inf, 1, 0, 8, false, 8)   // a huge suggestion
	f(1e-9, 1e-7, 0, 0, false, 1e-7)

	// Powers of two: 2^k, rounded down so the ceilings hold.
	f(5, 1, 0, 0, true, 4)
	f(8, 1, 0, 0, true, 8)
	f(1000, 1, 0, 1000, true, 512)
	f(1000, 1, 0, 0x1p40+1, true, 512)
	// Below 1: raised to 1, an integer, when the ceilings allow…
	f(0.3, 1e-4, 0, 64, true, 1)
	f(0.3, 1e-4, 0, 1, true, 1)
	f(1e-6, 1e-7, 0, 0, true, 1)
	// …else the largest fraction 2^-k under them.
	f(1, 1e-4, 0, 0.75, true, 0.5)
	f(0.3, 1e-4, 0, 0.75, true, 0.25)
	f(1e-6, 1e-7, 0, 1e-3, true, 0x1p-20)
	f(0.3, 1e-4, 0.1, 64, true, 0.0625)
	// A floor between powers of two: rounded up when the ceiling leaves room.
	f(100, 100, 0, 1024, true, 128)
	f(100, 100, 0, 150, true, 128)
	f(100, 100, 0, 100, true, 64)
	for k := -30; k <= 60; k++ {
		p := math.Ldexp(1, k)
		f(p, 0, 0, 0, true, max(p, 1))
		f(p, 0, 0, p, true, p)
		f(p*1.5, 0, 0, p*1.9, true, p)
	}
}
