package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
	"github.com/rs/zerolog"
)

// curtailFleet builds n synthetic workers of mixed models, with the config matching
// them. Every tenth worker is in the exempt account "vip".
func curtailFleet(n int) (CurtailConfig, []curtailWorkerLoad) {
	cfg := CurtailConfig{
		Models: []PowerModel{
			{Name: "s19", Agent: "bmminer/*", Watts: 3250, IdleWatts: 20, Priority: 1},
			{Name: "s21", Worker: "*.s21-*", JoulesPerTH: 17.5},
			{Name: "old", Agent: "cgminer/*", JoulesPerTH: 40, Priority: 2},
		},
		Exempt: []string{"vip"},
	}
	ws := make([]curtailWorkerLoad, n)
	for i := range ws {
		acct := "farm"
		if i%10 == 0 {
			acct = "vip"
		}
		switch i % 4 {
		case 0:
			ws[i] = curtailWorkerLoad{Name: fmt.Sprintf("%s.s19-%03d", acct, i), Agent: "bmminer/2.0.0", Hashrate: float64(90+i%20) * 1e12}
		case 1:
			ws[i] = curtailWorkerLoad{Name: fmt.Sprintf("%s.s21-%03d", acct, i), Agent: "bmminer/3.1", Hashrate: 200e12}
		case 2:
			ws[i] = curtailWorkerLoad{Name: fmt.Sprintf("%s.old-%03d", acct, i), Agent: "cgminer/4.9", Hashrate: 14e12}
		default:
			ws[i] = curtailWorkerLoad{Name: fmt.Sprintf("%s.other-%03d", acct, i), Agent: "whatsminer", Hashrate: 100e12}
		}
		ws[i].Online = true
	}
	return cfg, ws
}

// online marks the workers the curtailer has curtailed as offline, as the server's
// snapshot would show them once their connections are closed.
func online(c *curtailer, ws []curtailWorkerLoad) []curtailWorkerLoad {
	out := make([]curtailWorkerLoad, len(ws))
	for i, w := range ws {
		w.Online = !c.isCurtailed(w.Name)
		if !w.Online {
			w.Hashrate = 0
		}
		out[i] = w
	}
	return out
}

// stepCheck drives a curtailer with a fake clock every 250 ms for d, checking every
// step against the bounds, and returns the number of steps taken.
func stepCheck(t *testing.T, c *curtailer, clock *fakeClock, ws []curtailWorkerLoad, d time.Duration, maxStepShedW float64) int {
	t.Helper()
	var lastStep time.Time
	steps := 0
	for end := clock.now().Add(d); clock.now().Before(end); {
		now := clock.add(250 * time.Millisecond)
		cur, res := c.tick(now, online(c, ws))
		n := len(cur) + len(res)
		if n == 0 {
			continue
		}
		steps++
		if len(cur) > 0 && len(res) > 0 {
			t.Fatalf("at +%v: one step both curtails %v and restores %v", now.Sub(lastStep), cur, res)
		}
		if n > c.cfg.maxStepWorkers() {
			t.Fatalf("step of %d workers; bound %d", n, c.cfg.maxStepWorkers())
		}
		if !lastStep.IsZero() && now.Sub(lastStep) < MinCurtailStep {
			t.Fatalf("steps %v apart; minimum %v", now.Sub(lastStep), MinCurtailStep)
		}
		lastStep = now
		for _, name := range cur {
			if !c.isCurtailed(name) || strings.HasPrefix(name, "vip.") {
				t.Fatalf("%s: curtailed %v (exempt workers must never be)", name, c.isCurtailed(name))
			}
		}
		for _, name := range res {
			if c.isCurtailed(name) {
				t.Fatalf("%s restored but still refused", name)
			}
		}
		// The shed follows the ramp: never more than one worker beyond its step.
		st := c.state(now)
		if st.ShedKW > st.StepTargetKW+maxStepShedW/1e3+1e-9 && len(cur) > 0 {
			t.Fatalf("shed %v kW runs ahead of the ramp's %v kW", st.ShedKW, st.StepTargetKW)
		}
	}
	return steps
}

func TestCurtailRampFleet(t *testing.T) {
	cfg, ws := curtailFleet(100)
	var logBuf bytes.Buffer
	c, err := newCurtailer(cfg, zerolog.New(&logBuf), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	// The fleet's hashing power and largest single shed, from the same models.
	var fleetW, maxShedW float64
	for _, w := range ws {
		m := matchPowerModel(cfg.Models, 0, w.Agent, w.Name)
		hw := m.hashingWatts(w.Hashrate)
		fleetW += hw
		maxShedW = max(maxShedW, hw-m.idleWatts(hw))
	}
	c.tick(clock.now(), ws) // before any target: nothing happens
	if st := c.state(clock.now()); st.Active || st.CurtailedWorkers != 0 {
		t.Fatalf("idle state = %+v", st)
	}

	c.setAPITarget(CurtailTarget{Fraction: 0.5, Ramp: 60 * time.Second})
	start := clock.now().Add(250 * time.Millisecond) // the first tick that sees the target
	steps := stepCheck(t, c, clock, ws, 90*time.Second, maxShedW)
	st := c.state(clock.now())
	targetKW := fleetW / 2 / 1e3
	if math.Abs(st.BaselineKW-fleetW/1e3) > 1e-6 || math.Abs(st.TargetKW-targetKW) > 1e-6 {
		t.Fatalf("baseline, target = %v, %v kW; want %v, %v", st.BaselineKW, st.TargetKW, fleetW/1e3, targetKW)
	}
	if st.ShedKW < targetKW || st.ShedKW >= targetKW+maxShedW/1e3 {
		t.Errorf("shed %v kW; want within one worker (%v kW) above the target %v kW", st.ShedKW, maxShedW/1e3, targetKW)
	}
	if steps < 10 {
		t.Errorf("%d steps over a 60 s ramp; want it spread out, not a cliff", steps)
	}
	if st.RampProgress != 1 || st.Cause != "api" || !st.Active || !st.Since.Equal(start) {
		t.Errorf("state = %+v", st)
	}
	// Least efficient first: every curtailed worker is at least as inefficient as every
	// eligible worker left hashing.
	snap := c.candidatesLocked(online(c, ws))
	worstLeft, bestCurtailed := 0.0, math.Inf(1)
	for _, cd := range snap {
		m := matchPowerModel(cfg.Models, 0, cd.Agent, cd.Name)
		jth := joulesPerTH(cd.HashingW, cd.Hashrate)
		if cd.Curtailed {
			var hr float64
			for _, w := range ws {
				if w.Name == cd.Name {
					hr = w.Hashrate
				}
			}
			bestCurtailed = min(bestCurtailed, joulesPerTH(m.hashingWatts(hr), hr))
		} else if !cd.Exempt {
			worstLeft = max(worstLeft, jth)
		}
	}
	if worstLeft > bestCurtailed {
		t.Errorf("a worker at %v J/TH still hashes while one at %v J/TH is curtailed", worstLeft, bestCurtailed)
	}

	// Restore, ramped the same way.
	c.clearAPITarget()
	stepCheck(t, c, clock, ws, 10*time.Second, maxShedW)
	if mid := c.state(clock.now()); mid.CurtailedWorkers == 0 || mid.ShedKW < mid.StepTargetKW {
		t.Errorf("10 s into a 60 s restore: %+v; want some still curtailed, shed ≥ the ramp's step", mid)
	}
	stepCheck(t, c, clock, ws, 60*time.Second, maxShedW)
	st = c.state(clock.now())
	if st.CurtailedWorkers != 0 || st.ShedKW != 0 || st.Active || st.BaselineKW != 0 || !st.Since.IsZero() {
		t.Errorf("after restore: %+v; want nothing curtailed, no baseline", st)
	}
	for _, w := range ws {
		if c.isCurtailed(w.Name) {
			t.Errorf("%s still refused after restore", w.Name)
		}
	}
	// Energy: the fleet curtailed something for a while.
	if st.Energy.CurtailedKWh <= 0 || st.Energy.CurtailedSeconds <= 0 || st.Energy.EnergyKWh <= 0 {
		t.Errorf("energy = %+v; want energy and curtailed energy counted", st.Energy)
	}
	logs := logBuf.String()
	for _, want := range []string{`"cause":"api"`, `"cause":"none"`, `"ended":"api"`, "curtailment ended"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestCurtailStepBound(t *testing.T) {
	cfg, ws := curtailFleet(60)
	cfg.MaxStepWorkers = 3
	cfg.StepInterval = 2 * time.Second
	c, err := newCurtailer(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	c.setAPITarget(CurtailTarget{Fraction: 1, Ramp: 0}) // a cliff asked for: still bounded
	var last time.Time
	for range 200 {
		now := clock.add(500 * time.Millisecond)
		cur, res := c.tick(now, online(c, ws))
		if n := len(cur) + len(res); n > 0 {
			if n > 3 {
				t.Fatalf("step of %d; bound 3", n)
			}
			if !last.IsZero() && now.Sub(last) < 2*time.Second {
				t.Fatalf("steps %v apart; configured 2s", now.Sub(last))
			}
			last = now
		}
	}
	want := 0
	for _, w := range ws {
		if !strings.HasPrefix(w.Name, "vip.") {
			want++
		}
	}
	if st := c.state(clock.now()); st.CurtailedWorkers != want {
		t.Errorf("fraction 1: %d curtailed; want every non-exempt worker (%d)", st.CurtailedWorkers, want)
	}
}

func TestCurtailBaselineFixed(t *testing.T) {
	cfg := CurtailConfig{Models: []PowerModel{{Name: "m", Watts: 1000, IdleWatts: 100}}}
	c, err := newCurtailer(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ws []curtailWorkerLoad
	for i := range 10 {
		ws = append(ws, curtailWorkerLoad{Name: fmt.Sprintf("w%d", i), Hashrate: 100e12, Online: true})
	}
	clock := newFakeClock()
	c.setAPITarget(CurtailTarget{Fraction: 0.3, Ramp: 0})
	// Asked before any miner has connected: the baseline waits for a fleet to measure.
	c.tick(clock.add(time.Second), nil)
	if st := c.state(clock.now()); st.BaselineKW != 0 || st.TargetKW != 0 {
		t.Fatalf("empty fleet: state %+v", st)
	}
	for range 20 {
		c.tick(clock.add(time.Second), online(c, ws))
	}
	st := c.state(clock.now())
	// Baseline 10 kW; 30 % = 3 kW; each curtailment sheds 0.9 kW → 4 workers (3.6 kW).
	if st.BaselineKW != 10 || st.TargetKW != 3 || st.CurtailedWorkers != 4 {
		t.Fatalf("state = %+v; want baseline 10, target 3, 4 curtailed", st)
	}
	// Live fleet power is now lower; the target must not chase it.
	for range 20 {
		c.tick(clock.add(time.Second), online(c, ws))
	}
	if st := c.state(clock.now()); st.TargetKW != 3 || st.CurtailedWorkers != 4 {
		t.Errorf("later state = %+v; want target 3 kW, 4 curtailed still", st)
	}
}

func TestCurtailSignalsCombine(t *testing.T) {
	feed := newPriceFeed(t)
	feed.set(http.StatusOK, `{"price": 50}`)
	sched, err := ParseScheduleWindow("tz=America/New_York,from=17:00,to=21:00,kw=2,ramp=0s")
	if err != nil {
		t.Fatal(err)
	}
	price, err := ParsePriceConfig("url=" + feed.srv.URL + ",field=price,above=120,below=100,fraction=0.5,ramp=0s")
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	cfg := CurtailConfig{Models: []PowerModel{{Name: "m", Watts: 1000, IdleWatts: 100}}, Schedule: []ScheduleWindow{sched}, Price: price}
	c, err := newCurtailer(cfg, zerolog.New(&logBuf), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ws []curtailWorkerLoad
	for i := range 10 {
		ws = append(ws, curtailWorkerLoad{Name: fmt.Sprintf("w%d", i), Hashrate: 100e12, Online: true})
	}
	clock := &fakeClock{t: time.Date(2026, 3, 9, 20, 0, 0, 0, time.UTC)} // Mon 16:00 EDT
	run := func(d time.Duration) CurtailState {
		t.Helper()
		for end := clock.now().Add(d); clock.now().Before(end); {
			c.tick(clock.add(time.Second), online(c, ws))
		}
		return c.state(clock.now())
	}
	poll := func(body string) {
		t.Helper()
		feed.set(http.StatusOK, body)
		if err := c.price.poll(t.Context(), clock.now()); err != nil {
			t.Fatal(err)
		}
	}
	check := func(st CurtailState, wantKW float64, wantCause string, wantCauses int) {
		t.Helper()
		if st.TargetKW != wantKW || st.Cause != wantCause || len(st.Causes) != wantCauses {
			t.Errorf("at %s: target %v kW by %q (%v); want %v kW by %q, %d causes", clock.now().Format(time.TimeOnly),
				st.TargetKW, st.Cause, st.Causes, wantKW, wantCause, wantCauses)
		}
	}
	poll(`{"price": 50}`)
	check(run(30*time.Second), 0, "", 0)
	check(run(time.Hour), 2, sched.Target.Cause, 1) // 17:00 EDT: the schedule
	poll(`{"price": 130}`)
	st := run(30 * time.Second)
	check(st, 5, "price 130 ≥ 120", 2) // half the 10 kW baseline taken when the schedule began
	if st.Price == nil || !st.Price.Curtail || st.Price.Price != 130 {
		t.Errorf("price status %+v", st.Price)
	}
	poll(`{"price": 110}`)
	check(run(30*time.Second), 5, "price 130 ≥ 120", 2) // hysteresis: still curtailed
	c.setAPITarget(CurtailTarget{KW: 1})
	check(run(5*time.Second), 5, "price 130 ≥ 120", 3) // the largest wins
	poll(`{"price": 95}`)
	check(run(5*time.Second), 2, sched.Target.Cause, 2)
	check(run(4*time.Hour), 1, "api", 1) // 21:00 EDT: the window closes
	c.clearAPITarget()
	st = run(2 * time.Minute)
	check(st, 0, "", 0)
	if st.CurtailedWorkers != 0 {
		t.Errorf("%d workers still curtailed", st.CurtailedWorkers)
	}
	logs := logBuf.String()
	for _, want := range []string{`"cause":"schedule daily 17:00-21:00 America/New_York"`, `"cause":"price 130 ≥ 120"`,
		`"cause":"api"`, `"target_kw":5`, `"previous_kw":2`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if n := strings.Count(logs, "curtailment target changed"); n != 5 {
		t.Errorf("%d target changes logged; want 5:\n%s", n, logs)
	}
}

func TestCurtailMissingWorkerRestored(t *testing.T) {
	c, err := newCurtailer(CurtailConfig{Models: []PowerModel{{Name: "m", Watts: 1000}}}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	ws := []curtailWorkerLoad{{Name: "a", Online: true, Hashrate: 1e14}, {Name: "b", Online: true, Hashrate: 1e14}}
	c.setAPITarget(CurtailTarget{KW: 0.5})
	cur, _ := c.tick(clock.now(), ws)
	if len(cur) != 1 || cur[0] != "a" {
		t.Fatalf("curtailed %v; want [a] (tie broken by name)", cur)
	}
	c.clearAPITarget()
	// "a" has left the snapshot altogether; it must still come back.
	_, res := c.tick(clock.add(time.Second), ws[1:])
	if len(res) != 1 || res[0] != "a" || c.isCurtailed("a") {
		t.Errorf("restored %v; want [a]", res)
	}
}

func TestCurtailStateJSON(t *testing.T) {
	cfg, ws := curtailFleet(20)
	ws[3].Hashrate = math.NaN() // a broken measurement must not reach the JSON
	ws[5].Hashrate = 0
	c, err := newCurtailer(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	c.setAPITarget(CurtailTarget{Fraction: 0.5, Ramp: time.Minute})
	for range 10 {
		c.tick(clock.add(time.Second), online(c, ws))
	}
	b, err := json.Marshal(c.state(clock.now()))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"active", "cause", "causes", "target_kw", "step_target_kw", "shed_kw", "baseline_kw",
		"curtailed_workers", "ramp_progress", "ramp_ends", "since", "energy"} {
		if _, ok := m[k]; !ok {
			t.Errorf("state JSON lacks %q: %s", k, b)
		}
	}
	for _, w := range ws {
		e, ok := c.workerEnergy(w.Name)
		if !ok {
			t.Errorf("%s not metered", w.Name)
		}
		if _, err := json.Marshal(e); err != nil {
			t.Errorf("%s: %v", w.Name, err)
		}
	}
}

func TestCurtailConcurrentIsCurtailed(t *testing.T) {
	cfg, ws := curtailFleet(50)
	c, err := newCurtailer(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	c.setAPITarget(CurtailTarget{Fraction: 0.8, Ramp: 5 * time.Second})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, w := range ws {
					c.isCurtailed(w.Name)
				}
				c.state(clock.now())
			}
		})
	}
	for i := range 40 {
		if i == 20 {
			c.clearAPITarget()
		}
		c.tick(clock.add(time.Second), online(c, ws))
	}
	close(stop)
	wg.Wait()
}

func TestNewCurtailerRejects(t *testing.T) {
	bad := []CurtailConfig{
		{Models: []PowerModel{{Name: "x"}}},
		{DefaultJoulesPerTH: -1},
		{Schedule: []ScheduleWindow{{From: 1, To: 2}}},
		{Price: PriceConfig{URL: "http://x", CurtailAbove: 1, RestoreBelow: 2}},
	}
	for i, cfg := range bad {
		if _, err := newCurtailer(cfg, zerolog.Nop(), nil); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	if _, err := newCurtailer(CurtailConfig{}, zerolog.Nop(), nil); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

func TestCurtailRunPrice(t *testing.T) {
	feed := newPriceFeed(t)
	feed.set(http.StatusOK, "oops")
	price, err := ParsePriceConfig("url=" + feed.srv.URL + ",above=120,below=100,kw=1")
	if err != nil {
		t.Fatal(err)
	}
	var logBuf stratumtest.SyncBuffer
	c, err := newCurtailer(CurtailConfig{Price: price}, zerolog.New(&logBuf), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	tick := make(chan time.Time)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { defer close(done); c.runPrice(ctx, tick, clock.now) }()
	<-feed.hit
	feed.set(http.StatusOK, "150")
	tick <- clock.add(time.Minute) // accepted once the first poll's error is logged
	<-feed.hit
	tick <- clock.add(time.Minute) // and once the second poll is applied
	<-feed.hit
	cancel()
	<-done
	c.tick(clock.now(), nil)
	if st := c.state(clock.now()); st.TargetKW != 1 || st.Price == nil || st.Price.Errors != 1 {
		t.Errorf("state = %+v, price %+v; want 1 kW from the price, 1 fetch error", st, st.Price)
	}
	if !strings.Contains(logBuf.String(), "curtailment price feed") {
		t.Errorf("fetch error not logged: %s", logBuf.String())
	}
	// Without a price URL runPrice returns at once.
	c2, _ := newCurtailer(CurtailConfig{}, zerolog.Nop(), nil)
	c2.runPrice(t.Context(), nil, clock.now)
}

// TestRedactURL: a price feed's URL is logged without what may hold a secret.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@prices.example.com/v1/now?api_key=SECRET#x": "https://prices.example.com/v1/now",
		"http://127.0.0.1:8000/price":                                "http://127.0.0.1:8000/price",
		"://bad":                                                     "(unparsable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q; want %q", in, got, want)
		}
	}
}
