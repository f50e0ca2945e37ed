package proxy

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func names(cs []*curtailCandidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

func cand(name string, watts, jth float64, prio int) curtailCandidate {
	return curtailCandidate{Name: name, HashingW: watts, IdleW: watts / 10, JoulesPerTH: jth, Priority: prio}
}

func TestChooseCurtail(t *testing.T) {
	base := []curtailCandidate{
		cand("eff", 3000, 17, 0),
		cand("mid", 3000, 25, 0),
		cand("old", 1000, 40, 0),
		cand("noshares", 3000, 0, 5), // draws power, no measured hashrate: first
		cand("tieB", 1000, 30, 2),
		cand("tieA", 1000, 30, 2),
		cand("tieLowPrio", 1000, 30, 1),
	}
	tests := []struct {
		name    string
		mutate  func([]curtailCandidate)
		shed    float64
		target  float64
		limit   int
		want    []string
		wantErr bool
	}{
		{name: "nothing to shed", target: 0, limit: 10, want: nil},
		{name: "order: no-hashrate, J/TH desc, priority asc, name", target: 1e9, limit: 10,
			want: []string{"noshares", "old", "tieLowPrio", "tieA", "tieB", "mid", "eff"}},
		{name: "stops once target reached, overshoot < one worker", target: 2700 + 900 + 1, limit: 10,
			want: []string{"noshares", "old", "tieLowPrio"}},
		{name: "exact target reached stops", target: 2700 + 900, limit: 10, want: []string{"noshares", "old"}},
		{name: "already shed counts", shed: 2700, target: 3000, limit: 10, want: []string{"noshares"}},
		{name: "limit bounds a step", target: 1e9, limit: 2, want: []string{"noshares", "old"}},
		{name: "zero limit", target: 1e9, limit: 0, want: nil},
		{name: "exempt and curtailed skipped", target: 1e9, limit: 10,
			mutate: func(cs []curtailCandidate) { cs[3].Exempt = true; cs[2].Curtailed = true },
			want:   []string{"tieLowPrio", "tieA", "tieB", "mid", "eff"}},
		{name: "nothing to shed skipped", target: 1e9, limit: 10,
			mutate: func(cs []curtailCandidate) { cs[3].HashingW, cs[3].IdleW = 0, 0 },
			want:   []string{"old", "tieLowPrio", "tieA", "tieB", "mid", "eff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := slices.Clone(base)
			if tt.mutate != nil {
				tt.mutate(cs)
			}
			// The choice must not depend on the snapshot's order.
			for i := range 5 {
				rand.New(rand.NewPCG(uint64(i), 7)).Shuffle(len(cs), func(a, b int) { cs[a], cs[b] = cs[b], cs[a] })
				if got := names(chooseCurtail(cs, tt.shed, tt.target, tt.limit)); !slices.Equal(got, tt.want) {
					t.Fatalf("chooseCurtail = %v; want %v", got, tt.want)
				}
			}
		})
	}
}

func TestCurtailChooseRestore(t *testing.T) {
	mk := func() []curtailCandidate {
		cs := []curtailCandidate{
			cand("eff", 3000, 17, 0),  // shed 2700
			cand("mid", 2000, 25, 0),  // shed 1800
			cand("old", 1000, 40, 0),  // shed 900
			cand("on", 3000, 10, 0),   // not curtailed: never restored
			cand("worst", 500, 90, 0), // shed 450
		}
		for i := range cs {
			cs[i].Curtailed = cs[i].Name != "on"
		}
		return cs
	}
	const total = 2700 + 1800 + 900 + 450
	tests := []struct {
		name   string
		target float64
		limit  int
		want   []string
	}{
		{"target zero restores all, most efficient first", 0, 10, []string{"eff", "mid", "old", "worst"}},
		{"limit bounds a step", 0, 2, []string{"eff", "mid"}},
		{"never undershoots: skips a worker that does not fit", total - 2000, 10, []string{"mid"}},
		{"keeps shed ≥ target", 900 + 450, 10, []string{"eff", "mid"}},
		{"shed at target: nothing", total, 10, nil},
		{"shed below target: nothing", total + 1, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := mk()
			got := chooseRestore(cs, total, tt.target, tt.limit)
			if !slices.Equal(names(got), tt.want) {
				t.Fatalf("chooseRestore = %v; want %v", names(got), tt.want)
			}
			left := float64(total)
			for _, c := range got {
				left -= c.shedW()
			}
			if tt.target > 0 && tt.target <= total && left < tt.target {
				t.Errorf("shed after restore %v < target %v", left, tt.target)
			}
		})
	}
}

func TestCurtailExemptList(t *testing.T) {
	e := exemptList{"treasury", "farm1.lab-*", "vip*"}
	f := func(worker string, want bool) {
		t.Helper()
		if got := e.exempt(worker); got != want {
			t.Errorf("exempt(%q) = %v; want %v", worker, got, want)
		}
	}
	f("treasury", true)
	f("treasury.rig1", true) // pattern without '.' matches the account
	f("treasury2.rig1", false)
	f("farm1.lab-3", true)
	f("farm1.prod-3", false)
	f("vip.rig", true)
	f("vipers", true)
	f("Treasury.rig1", false) // case-sensitive
	if (exemptList{}).exempt("x") {
		t.Error("empty list exempts")
	}
}

func TestCurtailFractionToKW(t *testing.T) {
	if got := fractionToKW(0.5, 300); got != 150 {
		t.Errorf("fractionToKW(0.5, 300) = %v; want 150", got)
	}
	tg := CurtailTarget{Fraction: 0.25}
	if got := tg.kw(400); got != 100 {
		t.Errorf("fraction target kw = %v; want 100", got)
	}
	tg = CurtailTarget{KW: 42}
	if got := tg.kw(400); got != 42 {
		t.Errorf("kw target kw = %v; want 42", got)
	}
}
