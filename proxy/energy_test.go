package proxy

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParsePowerModel(t *testing.T) {
	ok := func(s string, want PowerModel) {
		t.Helper()
		got, err := ParsePowerModel(s)
		if err != nil {
			t.Errorf("ParsePowerModel(%q): %v", s, err)
			return
		}
		if got != want {
			t.Errorf("ParsePowerModel(%q) = %+v; want %+v", s, got, want)
		}
	}
	bad := func(s, wantInErr string) {
		t.Helper()
		_, err := ParsePowerModel(s)
		if err == nil || !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("ParsePowerModel(%q) error = %v; want one containing %q", s, err, wantInErr)
		}
	}
	ok("name=s19,agent=bmminer/2.*,watts=3250,idle=15,priority=1",
		PowerModel{Name: "s19", Agent: "bmminer/2.*", Watts: 3250, IdleWatts: 15, Priority: 1})
	ok("name=s21, worker=farm1.s21-*, jth=17.5", PowerModel{Name: "s21", Worker: "farm1.s21-*", JoulesPerTH: 17.5})
	ok("NAME=x,Agent=CGMiner*,watts=100,priority=-3", PowerModel{Name: "x", Agent: "cgminer*", Watts: 100, Priority: -3})
	bad("", "empty")
	bad("name=a,watts=1,colour=red", `unknown key "colour"`)
	bad("name=a,watts=abc", `key "watts"`)
	bad("name=a,watts=-5", `key "watts"`)
	bad("name=a,watts=NaN", `key "watts"`)
	bad("name=a,jth=+Inf", `key "jth"`)
	bad("name=a,watts=1,priority=1.5", `key "priority"`)
	bad("name=a,watts", "key=value")
	bad("watts=100", `"name" is required`)
	bad("name=a", "exactly one")
	bad("name=a,watts=100,jth=20", "exactly one")
	bad("name=a,watts=100,watts=200", "given twice")
	bad("name=a,watts=3250000", "kW given as W")
	bad("name=a,watts=100,idle=100", `key "idle"`)
	bad("name=a,jth=5000", `key "jth"`)
}

func TestPowerGlobMatch(t *testing.T) {
	f := func(pattern, s string, want bool) {
		t.Helper()
		if got := globMatch(pattern, s); got != want {
			t.Errorf("globMatch(%q, %q) = %v; want %v", pattern, s, got, want)
		}
	}
	f("", "", true)
	f("", "a", false)
	f("*", "", true)
	f("*", "bmminer/2.0.0", true)
	f("bmminer*", "bmminer/2.0.0", true) // '*' crosses '/', unlike path.Match
	f("bmminer/2.*", "bmminer/2.0.0", true)
	f("bmminer/2.*", "bmminer/1.0.0", false)
	f("*s19*", "farm.s19-01", true)
	f("a*b*c", "axxbyyc", true)
	f("a*b*c", "axxbyy", false)
	f("a*", "b", false)
	f("exact", "exact", true)
	f("exact", "exactly", false)
	f(strings.Repeat("*a", 30), strings.Repeat("a", 29)+"b", false) // must not blow up
}

func TestMatchPowerModel(t *testing.T) {
	models := []PowerModel{
		{Name: "s19", Agent: "bmminer/2.*", Watts: 3250},
		{Name: "lab", Worker: "lab.*", Agent: "cgminer*", JoulesPerTH: 40},
		{Name: "s21", Worker: "*.s21-*", JoulesPerTH: 17.5},
	}
	f := func(agent, worker, want string) {
		t.Helper()
		if got := matchPowerModel(models, 0, agent, worker).Name; got != want {
			t.Errorf("match(%q, %q) = %s; want %s", agent, worker, got, want)
		}
	}
	f("BMMiner/2.0.0", "farm.a", "s19") // agent case-insensitive
	f("bmminer/2.0.0", "farm.s21-1", "s19")
	f("cgminer/4.1", "lab.x", "lab") // both patterns must match
	f("cgminer/4.1", "farm.x", defaultPowerModelName)
	f("whatever", "farm.s21-7", "s21")
	f("whatever", "farm.S21-7", defaultPowerModelName) // worker names are case-sensitive
	if d := matchPowerModel(nil, 0, "", "x"); d.JoulesPerTH != DefaultJoulesPerTH {
		t.Errorf("default model J/TH = %v; want %v", d.JoulesPerTH, DefaultJoulesPerTH)
	}
	if d := matchPowerModel(nil, 30, "", "x"); d.JoulesPerTH != 30 {
		t.Errorf("configured default J/TH = %v; want 30", d.JoulesPerTH)
	}
}

func TestPowerAndJoulesPerTH(t *testing.T) {
	fixed := PowerModel{Name: "s19", Watts: 3250, IdleWatts: 15}
	prop := PowerModel{Name: "s21", JoulesPerTH: 17.5}
	tests := []struct {
		name     string
		m        PowerModel
		hashrate float64
		hashing  bool
		want     float64
	}{
		{"fixed hashing", fixed, 95e12, true, 3250},
		{"fixed hashing no rate", fixed, 0, true, 3250},
		{"fixed idle", fixed, 95e12, false, 15},
		{"jth hashing", prop, 200e12, true, 3500},
		{"jth idle default fraction", prop, 200e12, false, 3500 * DefaultIdleFraction},
		{"jth no rate", prop, 0, true, 0},
		{"jth NaN rate", prop, math.NaN(), true, 0},
		{"jth Inf rate", prop, math.Inf(1), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.power(tt.hashrate, tt.hashing); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("power = %v; want %v", got, tt.want)
			}
		})
	}
	jf := func(w, h, want float64) {
		t.Helper()
		if got := joulesPerTH(w, h); math.Abs(got-want) > 1e-9 {
			t.Errorf("joulesPerTH(%v, %v) = %v; want %v", w, h, got, want)
		}
	}
	jf(3250, 100e12, 32.5)
	jf(3500, 200e12, 17.5)
	jf(3250, 0, 0)   // undefined: 0, never NaN
	jf(0, 100e12, 0) // no draw known
	jf(3250, -1, 0)
	jf(3250, 1e-300, 0) // would be +Inf
}

func TestEnergyMeter(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	m := newEnergyMeter()
	// Hash at 3000 W for one hour, curtailed (idle 300 W) for half an hour, observed
	// every minute; then a gap longer than maxEnergyGap that must not count, and an
	// observation running backwards that must not count either.
	at := t0
	for ; at.Before(t0.Add(time.Hour)); at = at.Add(time.Minute) {
		m.observe(at, "a", "s19", 3000, 300, 100e12, false)
	}
	for ; at.Before(t0.Add(90 * time.Minute)); at = at.Add(time.Minute) {
		m.observe(at, "a", "s19", 3000, 300, 0, true)
	}
	m.observe(at, "a", "s19", 3000, 300, 100e12, false)                               // t0+90m: closes the curtailed interval
	m.observe(at.Add(maxEnergyGap+time.Second), "a", "s19", 3000, 300, 100e12, false) // gap: skipped
	m.observe(at.Add(time.Minute), "a", "s19", 3000, 300, 100e12, false)              // backwards: skipped
	// A second worker for fleet sums: 1000 W for an hour.
	for at := t0; !at.After(t0.Add(time.Hour)); at = at.Add(5 * time.Minute) {
		m.observe(at, "b", "default", 1000, 100, 40e12, false)
	}

	a, ok := m.worker("a")
	if !ok {
		t.Fatal("worker a not metered")
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v; want %v", what, got, want)
		}
	}
	near("a energy kWh", a.EnergyKWh, 3.0+0.15) // 3 kWh hashing + 0.5 h × 0.3 kW
	near("a curtailed kWh", a.CurtailedKWh, 1.35)
	near("a curtailed seconds", a.CurtailedSeconds, 1800)
	near("a power kW", a.PowerKW, 3)
	near("a J/TH", a.JoulesPerTH, 30)
	if a.Curtailed || a.Model != "s19" {
		t.Errorf("a = %+v; want not curtailed, model s19", a)
	}
	f := m.fleet()
	near("fleet energy kWh", f.EnergyKWh, 4.15)
	near("fleet curtailed kWh", f.CurtailedKWh, 1.35)
	near("fleet power kW", f.PowerKW, 4)
	near("fleet J/TH", f.JoulesPerTH, 4000/140.0)
	if _, ok := m.worker("nobody"); ok {
		t.Error("unknown worker reported")
	}
	if _, err := json.Marshal(f); err != nil {
		t.Errorf("fleet status does not marshal: %v", err)
	}
}

func TestEnergyMeterIdleWorkerJSONHasNoNaN(t *testing.T) {
	m := newEnergyMeter()
	now := time.Unix(0, 0)
	m.observe(now, "a", "s19", 0, 0, 0, false)
	b, err := json.Marshal(m.fleet())
	if err != nil || strings.Contains(string(b), "NaN") {
		t.Errorf("fleet JSON %s, %v", b, err)
	}
}
