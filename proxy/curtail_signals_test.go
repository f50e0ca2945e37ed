package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the DST tests must not depend on the host's zoneinfo
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseScheduleWindow(t *testing.T) {
	ok := func(s, wantString string, want CurtailTarget) {
		t.Helper()
		w, err := ParseScheduleWindow(s)
		if err != nil {
			t.Errorf("ParseScheduleWindow(%q): %v", s, err)
			return
		}
		if got := w.String(); got != wantString {
			t.Errorf("ParseScheduleWindow(%q).String() = %q; want %q", s, got, wantString)
		}
		want.Cause = "schedule " + wantString
		if w.Target != want {
			t.Errorf("ParseScheduleWindow(%q).Target = %+v; want %+v", s, w.Target, want)
		}
	}
	bad := func(s, wantInErr string) {
		t.Helper()
		_, err := ParseScheduleWindow(s)
		if err == nil || !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("ParseScheduleWindow(%q) error = %v; want one containing %q", s, err, wantInErr)
		}
	}
	ok("tz=Europe/Berlin,days=mon-fri,from=17:00,to=21:00,fraction=0.5,ramp=5m",
		"mon+tue+wed+thu+fri 17:00-21:00 Europe/Berlin", CurtailTarget{Fraction: 0.5, Ramp: 5 * time.Minute})
	ok("tz=America/New_York,from=22:00,to=06:00,kw=250",
		"daily 22:00-06:00 America/New_York", CurtailTarget{KW: 250, Ramp: DefaultCurtailRamp})
	ok("tz=UTC,days=fri-mon,from=00:00,to=24:00,kw=1,ramp=0s",
		"sun+mon+fri+sat 00:00-24:00 UTC", CurtailTarget{KW: 1})
	ok("tz=UTC,days=sat+SUN+wed,from=9:05,to=10:00,kw=1",
		"sun+wed+sat 09:05-10:00 UTC", CurtailTarget{KW: 1, Ramp: DefaultCurtailRamp})
	ok("tz=Local,from=01:00,to=02:00,kw=1", "daily 01:00-02:00 Local", CurtailTarget{KW: 1, Ramp: DefaultCurtailRamp})
	bad("from=17:00,to=21:00,kw=1", `"tz" is required`)
	bad("tz=,from=17:00,to=21:00,kw=1", `"tz" is empty`)
	bad("tz=Mars/Olympus,from=17:00,to=21:00,kw=1", `key "tz"`)
	bad("tz=UTC,to=21:00,kw=1", `"from" and "to" are required`)
	bad("tz=UTC,from=25:00,to=21:00,kw=1", `key "from"`)
	bad("tz=UTC,from=17:60,to=21:00,kw=1", `key "from"`)
	bad("tz=UTC,from=:00,to=21:00,kw=1", `key "from"`)
	bad("tz=UTC,from=+1:00,to=21:00,kw=1", `key "from"`)
	bad("tz=UTC,from=17:00,to=-0:30,kw=1", `key "to"`)
	bad("tz=UTC,from=17:00,to=9pm,kw=1", `key "to"`)
	bad("tz=UTC,from=17:00,to=17:00,kw=1", "empty window")
	bad("tz=UTC,from=24:00,to=01:00,kw=1", "empty window")
	bad("tz=UTC,from=17:00,to=21:00", "exactly one")
	bad("tz=UTC,from=17:00,to=21:00,kw=1,fraction=0.5", "exactly one")
	bad("tz=UTC,from=17:00,to=21:00,fraction=1.5", `key "fraction"`)
	bad("tz=UTC,from=17:00,to=21:00,fraction=0", `key "fraction"`)
	bad("tz=UTC,from=17:00,to=21:00,kw=0", `key "kw"`)
	bad("tz=UTC,from=17:00,to=21:00,kw=1,ramp=25h", `key "ramp"`)
	bad("tz=UTC,from=17:00,to=21:00,kw=1,ramp=soon", `key "ramp"`)
	bad("tz=UTC,days=mon-funday,from=17:00,to=21:00,kw=1", `key "days"`)
	bad("tz=UTC,from=17:00,to=21:00,kw=1,when=now", `unknown key "when"`)
}

// activeMinutes counts the minutes in [from, to) (UTC instants) a window is active.
func activeMinutes(w *ScheduleWindow, from, to time.Time) int {
	n := 0
	for at := from; at.Before(to); at = at.Add(time.Minute) {
		if w.active(at) {
			n++
		}
	}
	return n
}

func TestScheduleWindowActive(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	parse := func(s string) *ScheduleWindow {
		t.Helper()
		w, err := ParseScheduleWindow(s)
		if err != nil {
			t.Fatal(err)
		}
		return &w
	}
	utc := func(s string) time.Time {
		t.Helper()
		at, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	// US DST 2026: starts Sun 8 March 02:00 EST → 03:00 EDT; ends Sun 1 November
	// 02:00 EDT → 01:00 EST.
	weekday := parse("tz=America/New_York,days=mon-fri,from=17:00,to=21:00,kw=1")
	overnightFri := parse("tz=America/New_York,days=fri,from=22:00,to=02:00,kw=1")
	tests := []struct {
		w    *ScheduleWindow
		at   string // UTC
		want bool
	}{
		{weekday, "2026-03-06 21:59", false},      // Fri 16:59 EST
		{weekday, "2026-03-06 22:00", true},       // Fri 17:00 EST
		{weekday, "2026-03-07 01:59", true},       // Fri 20:59 EST
		{weekday, "2026-03-07 02:00", false},      // Fri 21:00 EST
		{weekday, "2026-03-07 22:00", false},      // Saturday
		{weekday, "2026-03-09 20:59", false},      // Mon 16:59 EDT: an hour earlier in UTC
		{weekday, "2026-03-09 21:00", true},       // Mon 17:00 EDT
		{weekday, "2026-03-10 00:59", true},       // Mon 20:59 EDT
		{weekday, "2026-03-10 01:00", false},      // Mon 21:00 EDT
		{overnightFri, "2026-03-14 01:59", false}, // Fri 21:59 EDT
		{overnightFri, "2026-03-14 02:00", true},  // Fri 22:00 EDT
		{overnightFri, "2026-03-14 05:59", true},  // Sat 01:59 EDT: Friday's night
		{overnightFri, "2026-03-14 06:00", false}, // Sat 02:00 EDT
		{overnightFri, "2026-03-13 05:00", false}, // Fri 01:00 EDT: Thursday's night, not scheduled
	}
	for _, tt := range tests {
		if got := tt.w.active(utc(tt.at)); got != tt.want {
			t.Errorf("%s active at %s UTC (%s) = %v; want %v", tt.w, tt.at, utc(tt.at).In(ny).Format("Mon 15:04 MST"), got, tt.want)
		}
	}

	// Windows follow the wall clock: across a DST change they last an hour more or
	// less in real time.
	minutes := []struct {
		spec     string
		from, to string
		want     int
	}{
		{"tz=America/New_York,from=23:00,to=03:00,kw=1", "2026-10-31 12:00", "2026-11-01 12:00", 5 * 60}, // fall back
		{"tz=America/New_York,from=23:00,to=03:00,kw=1", "2026-03-07 12:00", "2026-03-08 12:00", 3 * 60}, // spring forward
		{"tz=America/New_York,from=01:30,to=03:30,kw=1", "2026-03-08 00:00", "2026-03-09 00:00", 60},     // skipped hour
		{"tz=America/New_York,from=02:00,to=02:30,kw=1", "2026-03-08 00:00", "2026-03-09 00:00", 0},      // wholly skipped
		{"tz=America/New_York,from=01:00,to=02:00,kw=1", "2026-11-01 00:00", "2026-11-02 00:00", 120},    // repeated hour
		{"tz=America/New_York,from=17:00,to=21:00,kw=1", "2026-03-08 12:00", "2026-03-09 12:00", 240},    // ordinary
		{"tz=Europe/Berlin,from=17:00,to=21:00,kw=1", "2026-03-08 00:00", "2026-03-09 00:00", 240},
	}
	for _, tt := range minutes {
		w := parse(tt.spec)
		if got := activeMinutes(w, utc(tt.from), utc(tt.to)); got != tt.want {
			t.Errorf("%s: %d active minutes from %s to %s UTC; want %d", w, got, tt.from, tt.to, tt.want)
		}
	}
}

func TestCurtailCombineTargets(t *testing.T) {
	ts := []CurtailTarget{
		{KW: 100, Cause: "api"},
		{Fraction: 0.5, Cause: "schedule"},
		{KW: 150, Cause: "price"},
	}
	f := func(baseline, wantKW float64, wantCause string) {
		t.Helper()
		kw, best := combineTargets(ts, baseline)
		if kw != wantKW || best == nil || best.Cause != wantCause {
			t.Errorf("combine at baseline %v = %v, %v; want %v, %s", baseline, kw, best, wantKW, wantCause)
		}
	}
	f(200, 150, "price")
	f(400, 200, "schedule")
	f(300, 150, "schedule") // tie: the earlier target keeps the cause
	if kw, best := combineTargets(nil, 100); kw != 0 || best != nil {
		t.Errorf("combine(nil) = %v, %v; want 0, nil", kw, best)
	}
}

func TestParsePrice(t *testing.T) {
	ok := func(body, field string, want float64) {
		t.Helper()
		got, err := parsePrice([]byte(body), field)
		if err != nil || got != want {
			t.Errorf("parsePrice(%q, %q) = %v, %v; want %v", body, field, got, err, want)
		}
	}
	bad := func(body, field, wantInErr string) {
		t.Helper()
		_, err := parsePrice([]byte(body), field)
		if err == nil || !errors.Is(err, errPriceBody) || !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("parsePrice(%q, %q) error = %v; want errPriceBody containing %q", body, field, err, wantInErr)
		}
	}
	ok("123.4", "", 123.4)
	ok(" -5\n", "", -5)
	ok(`{"price": 123.4}`, "price", 123.4)
	ok(`{"price": "77"}`, "price", 77)
	ok(`{"data": {"eur_mwh": 88.5, "x": [1]}}`, "data.eur_mwh", 88.5)
	bad("", "", "not a finite number")
	bad("abc", "", "not a finite number")
	bad("NaN", "", "not a finite number")
	bad("1e999", "", "not a finite number")
	bad(`{"price": 1}`, "", "not a finite number")
	bad(`{"price": 1`, "price", "not JSON")
	bad(`{"cost": 1}`, "price", "missing")
	bad(`{"price": {"v": 1}}`, "price", "not a number")
	bad(`{"price": null}`, "price", "not a number")
	bad(`{"price": true}`, "price", "not a number")
	bad(`{"price": "cheap"}`, "price", "not a finite number")
	bad(`[1,2]`, "price", "no object")
	bad(`{"data": 5}`, "data.eur", "no object")
	bad(strings.Repeat("9", 100)+"x", "", "…") // long garbage is cut in the message
}

func TestParsePriceConfig(t *testing.T) {
	p, err := ParsePriceConfig("url=http://127.0.0.1:9000/price,field=data.price,above=120,below=100,fraction=1,ramp=5m,every=30s,hold=10m,stale=20m")
	if err != nil {
		t.Fatal(err)
	}
	want := PriceConfig{URL: "http://127.0.0.1:9000/price", Field: "data.price", CurtailAbove: 120, RestoreBelow: 100,
		Target: CurtailTarget{Fraction: 1, Ramp: 5 * time.Minute}, Interval: 30 * time.Second, MinHold: 10 * time.Minute, Stale: 20 * time.Minute}
	if p != want {
		t.Errorf("ParsePriceConfig = %+v; want %+v", p, want)
	}
	p, err = ParsePriceConfig("url=https://x/p,above=-5,below=-10,kw=300")
	if err != nil || p.interval() != DefaultPriceInterval || p.stale() != DefaultPriceStale || p.Target.Ramp != DefaultCurtailRamp {
		t.Errorf("defaults: %+v, %v", p, err)
	}
	bad := func(s, wantInErr string) {
		t.Helper()
		_, err := ParsePriceConfig(s)
		if err == nil || !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("ParsePriceConfig(%q) error = %v; want one containing %q", s, err, wantInErr)
		}
	}
	bad("above=120,below=100,kw=1", `"url" is required`)
	bad("url=ftp://x,above=120,below=100,kw=1", `key "url"`)
	bad("url=http://x,below=100,kw=1", `"above" and "below" are required`)
	bad("url=http://x,above=100,below=100,kw=1", "hysteresis")
	bad("url=http://x,above=100,below=120,kw=1", "hysteresis")
	bad("url=http://x,above=120,below=100", "exactly one")
	bad("url=http://x,above=120,below=100,kw=1,every=10ms", `key "every"`)
	bad("url=http://x,above=120,below=100,kw=1,stale=forever", `key "stale"`)
	bad("url=http://x,above=cheap,below=100,kw=1", `key "above"`)
	bad("url=http://x,above=120,below=100,kw=1,currency=eur", `unknown key "currency"`)
}

// priceFeed is a loopback price endpoint serving a scripted sequence of responses,
// repeating the last one.
type priceFeed struct {
	mu       sync.Mutex
	bodies   []string
	status   int
	requests int
	srv      *httptest.Server
	hit      chan struct{}
}

func newPriceFeed(t *testing.T) *priceFeed {
	f := &priceFeed{status: http.StatusOK, hit: make(chan struct{}, 100)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body, status := "", f.status
		if len(f.bodies) > 0 {
			body = f.bodies[0]
			if len(f.bodies) > 1 {
				f.bodies = f.bodies[1:]
			}
		}
		f.requests++
		f.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprint(w, body)
		select {
		case f.hit <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *priceFeed) set(status int, bodies ...string) {
	f.mu.Lock()
	f.status, f.bodies = status, bodies
	f.mu.Unlock()
}

func TestPriceSignalHysteresis(t *testing.T) {
	feed := newPriceFeed(t)
	cfg := PriceConfig{URL: feed.srv.URL, CurtailAbove: 120, RestoreBelow: 100, Target: CurtailTarget{Fraction: 0.5, Ramp: time.Minute}}
	p := newPriceSignal(cfg, nil)
	clock := newFakeClock()
	steps := []struct {
		price string
		want  bool
	}{
		{"50", false},
		{"119.99", false},
		{"120", true}, // at the threshold: curtail
		{"110", true}, // between the thresholds: stays curtailed
		{"101", true},
		{"119", true},
		{"100", false}, // at restore-below: restore
		{"110", false},
		{"119", false},
		{"130", true},
		{"99", false},
	}
	var was bool
	var trigger string
	for i, s := range steps {
		feed.set(http.StatusOK, s.price)
		now := clock.add(time.Minute)
		if err := p.poll(context.Background(), now); err != nil {
			t.Fatalf("step %d: poll: %v", i, err)
		}
		tg, on := p.target(now)
		if on != s.want {
			t.Fatalf("step %d: price %s: curtail = %v; want %v", i, s.price, on, s.want)
		}
		if on && !was {
			trigger = s.price
		}
		was = on
		// The cause names the price that started the curtailment, not the latest.
		if on && (tg.Fraction != 0.5 || tg.Ramp != time.Minute || tg.Cause != "price "+trigger+" ≥ 120") {
			t.Errorf("step %d: target %+v", i, tg)
		}
	}
}

func TestPriceSignalNoFlap(t *testing.T) {
	feed := newPriceFeed(t)
	p := newPriceSignal(PriceConfig{URL: feed.srv.URL, CurtailAbove: 120, RestoreBelow: 100, Target: CurtailTarget{KW: 1}}, nil)
	clock := newFakeClock()
	for _, start := range []string{"130", "90"} {
		feed.set(http.StatusOK, start)
		if err := p.poll(context.Background(), clock.add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		_, was := p.target(clock.now())
		changes := 0
		for i := range 200 {
			// Oscillate anywhere strictly between the thresholds.
			feed.set(http.StatusOK, fmt.Sprint(100.5+float64(i%20)))
			now := clock.add(10 * time.Second)
			if err := p.poll(context.Background(), now); err != nil {
				t.Fatal(err)
			}
			if _, on := p.target(now); on != was {
				changes++
				was = on
			}
		}
		if changes != 0 {
			t.Errorf("starting at %s: %d changes for prices between the thresholds; want 0", start, changes)
		}
	}
}

func TestPriceSignalMinHold(t *testing.T) {
	feed := newPriceFeed(t)
	p := newPriceSignal(PriceConfig{URL: feed.srv.URL, CurtailAbove: 120, RestoreBelow: 100, MinHold: 10 * time.Minute,
		Target: CurtailTarget{KW: 1}}, nil)
	clock := newFakeClock()
	at := func(d time.Duration, price string, want bool) {
		t.Helper()
		feed.set(http.StatusOK, price)
		now := clock.add(d)
		if err := p.poll(context.Background(), now); err != nil {
			t.Fatal(err)
		}
		if _, on := p.target(now); on != want {
			t.Errorf("price %s: curtail = %v; want %v", price, on, want)
		}
	}
	at(0, "130", true)
	at(5*time.Minute, "90", true)  // held: not yet 10 minutes
	at(5*time.Minute, "90", false) // 10 minutes: restore
	at(time.Minute, "130", false)  // held again after the restore
	at(9*time.Minute, "130", true) // 10 minutes since the restore
}

func TestPriceSignalStaleAndErrors(t *testing.T) {
	feed := newPriceFeed(t)
	p := newPriceSignal(PriceConfig{URL: feed.srv.URL, CurtailAbove: 120, RestoreBelow: 100, Stale: 15 * time.Minute,
		Target: CurtailTarget{KW: 1}}, nil)
	clock := newFakeClock()
	feed.set(http.StatusOK, "130")
	if err := p.poll(context.Background(), clock.now()); err != nil {
		t.Fatal(err)
	}
	start := clock.now()
	bad := []struct {
		status int
		body   string
		errHas string
	}{
		{http.StatusInternalServerError, "oops", "HTTP 500"},
		{http.StatusOK, "", "not a finite number"},
		{http.StatusOK, "twelve", "not a finite number"},
		{http.StatusOK, "NaN", "not a finite number"},
		{http.StatusOK, strings.Repeat("1", maxPriceBody+1), "longer than"},
	}
	for i, b := range bad {
		feed.set(b.status, b.body)
		now := clock.add(time.Minute)
		err := p.poll(context.Background(), now)
		if err == nil || !strings.Contains(err.Error(), b.errHas) {
			t.Errorf("bad response %d: error %v; want one containing %q", i, err, b.errHas)
		}
		if _, on := p.target(now); !on {
			t.Errorf("bad response %d: a fetch error ended the curtailment early", i)
		}
	}
	if st := p.status(); st.Errors != uint64(len(bad)) || st.LastError == "" || st.Price != 130 {
		t.Errorf("status = %+v; want %d errors, last error set, price 130", st, len(bad))
	}
	feed.set(http.StatusInternalServerError, "")
	now := start.Add(15 * time.Minute)
	if _, on := p.target(now); !on {
		t.Error("curtailment ended before the staleness bound")
	}
	now = now.Add(time.Second)
	if _, on := p.target(now); on {
		t.Error("stale price still curtails")
	}
	if st := p.status(); !st.Expired || st.Curtail {
		t.Errorf("status after staleness = %+v; want expired, not curtailing", st)
	}
	// Recovery with a price between the thresholds must not curtail again (no flap)…
	feed.set(http.StatusOK, "110")
	now = now.Add(time.Minute)
	if err := p.poll(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	if _, on := p.target(now); on {
		t.Error("a price between the thresholds re-curtailed after expiry")
	}
	// …but one at the threshold does.
	feed.set(http.StatusOK, `125`)
	now = now.Add(time.Minute)
	if err := p.poll(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	if _, on := p.target(now); !on {
		t.Error("a fresh high price did not curtail")
	}
}

func TestPriceSignalUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	p := newPriceSignal(PriceConfig{URL: url, CurtailAbove: 2, RestoreBelow: 1, Target: CurtailTarget{KW: 1}}, nil)
	if err := p.poll(context.Background(), time.Unix(0, 0)); err == nil {
		t.Fatal("poll of a closed port succeeded")
	}
	if st := p.status(); st.Errors != 1 || st.Curtail {
		t.Errorf("status = %+v; want 1 error, not curtailing", st)
	}
}

func TestPriceSignalRun(t *testing.T) {
	feed := newPriceFeed(t)
	feed.set(http.StatusOK, "130")
	p := newPriceSignal(PriceConfig{URL: feed.srv.URL, CurtailAbove: 120, RestoreBelow: 100, Target: CurtailTarget{KW: 1}}, nil)
	clock := newFakeClock()
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var errs []error
	go func() {
		defer close(done)
		p.run(ctx, tick, clock.now, func(err error) { errs = append(errs, err) })
	}()
	wait := func() {
		t.Helper()
		select {
		case <-feed.hit:
		case <-time.After(5 * time.Second):
			t.Fatal("no poll")
		}
	}
	wait() // polls at once
	feed.set(http.StatusOK, "garbage")
	tick <- clock.add(time.Minute)
	wait()
	feed.set(http.StatusOK, "125")
	tick <- clock.add(time.Minute) // blocks until run is back in its select: the error is recorded
	wait()
	cancel()
	<-done
	if len(errs) != 1 || !errors.Is(errs[0], errPriceBody) {
		t.Errorf("errors = %v; want 1 bad-body error", errs)
	}
	if _, on := p.target(clock.now()); !on {
		t.Error("first price did not curtail")
	}
}

func TestDecodeCurtailTarget(t *testing.T) {
	ok := func(body string, want CurtailTarget) {
		t.Helper()
		got, err := decodeCurtailTarget(strings.NewReader(body))
		if err != nil || got != want {
			t.Errorf("decode(%s) = %+v, %v; want %+v", body, got, err, want)
		}
	}
	bad := func(body, wantInErr string) {
		t.Helper()
		_, err := decodeCurtailTarget(strings.NewReader(body))
		if err == nil || !errors.Is(err, errCurtailRequest) || !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("decode(%.60s) error = %v; want errCurtailRequest containing %q", body, err, wantInErr)
		}
	}
	ok(`{"fraction": 0.5, "ramp": "60s"}`, CurtailTarget{Fraction: 0.5, Ramp: time.Minute, Cause: "api"})
	ok(`{"kw": 250, "ramp": "1h30m"}`, CurtailTarget{KW: 250, Ramp: 90 * time.Minute, Cause: "api"})
	ok(`{"fraction": 1}`, CurtailTarget{Fraction: 1, Ramp: DefaultCurtailRamp, Cause: "api"})
	ok(`{"kw": 0.5, "ramp": "0s"}`, CurtailTarget{KW: 0.5, Cause: "api"})
	ok(" {\"kw\": 1}\n", CurtailTarget{KW: 1, Ramp: DefaultCurtailRamp, Cause: "api"})
	bad(`{}`, "exactly one")
	bad(`{"ramp": "60s"}`, "exactly one")
	bad(`{"fraction": 0.5, "kw": 100}`, "exactly one")
	bad(`{"fraction": 0}`, "outside 0 < fraction ≤ 1")
	bad(`{"fraction": 1.01}`, "outside 0 < fraction ≤ 1")
	bad(`{"fraction": -0.5}`, "outside 0 < fraction ≤ 1")
	bad(`{"kw": -1}`, "must be above 0")
	bad(`{"kw": 0}`, "must be above 0")
	bad(`{"kw": 1e300}`, "below 1e9")
	bad(`{"kw": "250"}`, "cannot unmarshal")
	bad(`{"kw": 1, "ramp": "soon"}`, `ramp "soon"`)
	bad(`{"kw": 1, "ramp": 60}`, "cannot unmarshal")
	bad(`{"kw": 1, "ramp": "25h"}`, "outside 0…24h0m0s")
	bad(`{"kw": 1, "ramp": "-1s"}`, "outside")
	bad(`{"kw": 1, "force": true}`, "unknown field")
	bad(`{"kw": 1} {"kw": 2}`, "data after")
	bad(`{"kw": 1`, "unexpected EOF")
	bad(``, "EOF")
	bad(`null`, "exactly one")
	bad(`{"kw": 1, "ramp": "`+strings.Repeat("1", maxCurtailBody)+`s"}`, "body over")
}
